"""The thin thread end to end: sandbox -> dlt -> DuckDB -> dbt -> Dagster, in-process."""

from __future__ import annotations

import duckdb
import pytest

from orchestration.cli import run_job
from orchestration.sandbox_runtime import embedded_sandbox

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path / "home"


def test_nightly_job_loads_the_sandbox_and_builds_staging(home):
    with embedded_sandbox(contacts=300, seed=11) as sandbox:
        run_job("nightly")
        world_contacts = {c["id"]: c for c in sandbox.world.crm.contacts}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        raw = dict(con.execute("select id, properties__email from raw_crm.contacts").fetchall())
        staged = dict(con.execute("select contact_id, email from staging.stg_crm__contacts").fetchall())
    assert set(raw) == set(world_contacts)
    assert set(staged) == set(world_contacts)
    for contact_id, email in staged.items():
        source = world_contacts[contact_id]["properties"]["email"]
        assert email == (source.strip().lower() or None if source else None)
