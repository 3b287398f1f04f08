"""A stage for reverse-ETL tests: a private copy of the built warehouse and a sandbox serving
a fresh copy of the world it was loaded from (pushes change the world, so each test gets its own)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from reverse_etl.config import TARGETS, Settings, TargetSettings
from sandbox.config import DEFAULT_TOKENS
from sandbox.server import Sandbox
from tests.conftest import WORLD_CONTACTS, WORLD_SEED, Warehouse

PREFIX = {"crm": "hubspot", "billing": "stripe"}


@dataclass
class Stage:
    warehouse: Warehouse
    sandbox: Sandbox

    def settings(self, push: bool = True, **overrides: Any) -> Settings:
        targets = {
            system: TargetSettings(
                system=system,
                base_url=self.sandbox.base_urls[PREFIX[system]],
                token=DEFAULT_TOKENS[PREFIX[system]],
                push=push,
            )
            for system in TARGETS
        }
        per_target = {k: overrides.pop(k) for k in ("rate", "batch_size") if k in overrides}
        backoff = overrides.pop("backoff_base", 0.01)  # quick retries: the tests count them, not time them
        targets = {s: replace(t, backoff_base=backoff, **per_target) for s, t in targets.items()}
        return Settings(targets=targets, backoff_base=backoff, **overrides)

    def run(self, push: bool = True, settings: Settings | None = None, **kwargs: Any) -> dict[str, Any]:
        from reverse_etl.run import run

        outcomes = run(self.warehouse.paths, settings=settings or self.settings(push), **kwargs)
        return {o.target: o for o in outcomes}

    def writes(self, system: str | None = None) -> list[dict[str, Any]]:
        query = f"?system={system}" if system else ""
        return list(httpx.get(f"{self.sandbox.url}/_admin/writes{query}").json()["writes"])

    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with duckdb.connect(str(self.warehouse.file), read_only=True) as con:
            result = con.execute(sql, params or [])
            names = [d[0] for d in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        with duckdb.connect(str(self.warehouse.file)) as con:
            con.execute(sql, params or [])

    def outbox(self) -> list[dict[str, Any]]:
        return self.query(
            "select * from (select * from reverse_etl.outbox_crm union all by name "
            "select * from reverse_etl.outbox_billing) order by target_system, object_type, record_id, field"
        )


def fresh_world() -> Any:
    from orchestration.sandbox_runtime import today_anchor
    from sandbox import world as world_module

    return world_module.generate(seed=WORLD_SEED, contacts=WORLD_CONTACTS, anchor=today_anchor())


@pytest.fixture
def stage(built_warehouse: Warehouse, tmp_path: Path) -> Iterator[Stage]:
    copy = built_warehouse.copy_to(tmp_path / "home")
    with Sandbox(fresh_world()) as sandbox:
        yield Stage(copy, sandbox)
