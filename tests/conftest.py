"""Session fixtures shared by the model, check and report tests: one sandbox world
loaded once into a warehouse, and a fully built copy of it."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingestion.warehouse import Paths
from sandbox.store import World

WORLD_SEED = 7
WORLD_CONTACTS = 2000


@dataclass
class Warehouse:
    """A TRUEUP_HOME with a loaded warehouse, and the world (with its truth) behind it."""

    home: Path
    world: World

    @property
    def paths(self) -> Paths:
        return Paths(home=self.home)

    @property
    def file(self) -> Path:
        return self.home / "warehouse.duckdb"

    def copy_to(self, home: Path) -> Warehouse:
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.file, home / "warehouse.duckdb")
        return Warehouse(home=home, world=self.world)


def load_world(
    home: Path,
    systems: Sequence[str] | None = None,
    contacts: int = WORLD_CONTACTS,
    seed: int = WORLD_SEED,
    **generate: Any,
) -> Warehouse:
    """Serve a world (the default one, or of `contacts` and `seed`; `generate`: further world
    arguments, e.g. noise or variety), ingest `systems` (default: all) from it into `home`,
    and load the seeds."""
    from ingestion.pipeline import SYSTEMS, run_systems
    from orchestration.dbt import run_dbt
    from orchestration.sandbox_runtime import embedded_sandbox

    with embedded_sandbox(contacts=contacts, seed=seed, **generate) as sandbox:
        run_systems(systems or SYSTEMS, where=Paths(home=home))
    run_dbt(["seed"], where=Paths(home=home))
    return Warehouse(home=home, world=sandbox.world)


@pytest.fixture(scope="session")
def loaded_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The default-scale sandbox world ingested into a warehouse (raw schemas + seeds)."""
    return load_world(tmp_path_factory.mktemp("loaded"))


@pytest.fixture(scope="session")
def built_warehouse(loaded_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """A copy of the loaded warehouse after a full `dbt build` (read it, do not write it)."""
    from orchestration.dbt import run_dbt

    built = loaded_warehouse.copy_to(tmp_path_factory.mktemp("built"))
    run_dbt(["build"], where=built.paths)
    return built


@pytest.fixture
def scratch_warehouse(loaded_warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    """A private copy of the loaded (raw) warehouse a test may break and rebuild."""
    return loaded_warehouse.copy_to(tmp_path / "scratch")


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    """One throwaway PostgreSQL server for the session (sandbox/postgres.py); skips, saying
    why, where none can start (`make test` installs Debian's postgresql as root)."""
    from sandbox.postgres import PostgresServer, unavailable

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with PostgresServer.start() as server:  # in the system's temp dir: the server's user reads it
        yield server


@pytest.fixture
def postgres_database(postgres_server: Any, request: pytest.FixtureRequest) -> str:
    """A fresh database on the session's server, for one test: its URL (with the password)."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    postgres_server.psql(f"drop database if exists {name} with (force)", database="postgres")
    postgres_server.psql(f"create database {name}", database="postgres")
    return str(postgres_server.url).rsplit("/", 1)[0] + "/" + name
