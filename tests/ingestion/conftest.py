"""Shared fixtures of the ingestion tests: a sandbox serving a generated world, a private
TRUEUP_HOME, and the source settings that point every connector at the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ingestion.warehouse import Paths
from orchestration.sandbox_runtime import source_env as source_env_for
from orchestration.sandbox_runtime import today_anchor
from sandbox.server import Sandbox
from sandbox.store import World

DEFAULT_CONTACTS = 300
DEFAULT_SEED = 7


@pytest.fixture(scope="session")
def anchor() -> datetime:
    return today_anchor()


@pytest.fixture
def make_world(anchor: datetime) -> Callable[..., World]:
    """A factory: `make_world(contacts=..., seed=..., **generate_kwargs)` -> a fresh World."""

    def make(contacts: int = DEFAULT_CONTACTS, seed: int = DEFAULT_SEED, **kwargs: Any) -> World:
        from sandbox import world as world_module

        kwargs.setdefault("anchor", anchor)
        return world_module.generate(seed=seed, contacts=contacts, **kwargs)

    return make


@pytest.fixture
def sandbox_world(request: pytest.FixtureRequest, make_world: Callable[..., World]) -> World:
    """The world `sandbox` serves (generated per test). Parametrize it indirectly with `generate`
    keyword arguments: `@pytest.mark.parametrize("sandbox_world", [{"contacts": 800}], indirect=True)`."""
    return make_world(**dict(getattr(request, "param", None) or {}))


@pytest.fixture
def sandbox(sandbox_world: World) -> Iterator[Sandbox]:
    """A started Sandbox serving `sandbox_world` on a free loopback port."""
    running = Sandbox(sandbox_world).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def trueup_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private TRUEUP_HOME (warehouse file and dlt state under tmp)."""
    home = tmp_path / "trueup"
    monkeypatch.setenv("TRUEUP_HOME", str(home))
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    return home


@pytest.fixture
def warehouse_paths(trueup_home: Path) -> Paths:
    return Paths(home=trueup_home)


def sandbox_env(base_urls: dict[str, str]) -> dict[str, str]:
    """The dlt settings (as environment variables) that point all four sources at a sandbox."""
    return source_env_for(base_urls)


@pytest.fixture
def source_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Sets (for this test) and returns the environment that points the sources at `sandbox`."""
    env = sandbox_env(sandbox.base_urls)
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
