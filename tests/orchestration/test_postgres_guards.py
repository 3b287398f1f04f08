"""Steps that run on a DuckDB warehouse only say so on a PostgreSQL one, before anything opens
(or creates) a DuckDB file; in the nightly job the reverse-ETL steps materialize, saying why."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from ingestion.engine import DuckDBOnlyError
from ingestion.warehouse import Paths
from orchestration.cli import main
from orchestration.findings import decide
from orchestration.resources import WarehouseWriter
from orchestration.reverse_etl import PLAN_KEY, PUSH_KEY, build_reverse_etl_assets
from reverse_etl.approve import approve
from reverse_etl.run import run

# nothing listens there: a step that tried to connect would fail on the connection instead
SERVER = "postgresql://trueup@127.0.0.1:9/trueup"
MESSAGE = "reverse ETL runs on a DuckDB warehouse only; see docs/scaling.md"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRUEUP_WAREHOUSE", SERVER)
    return tmp_path / "home"


def no_duckdb_file(home: Path) -> bool:
    return not list(home.rglob("*.duckdb")) if home.exists() else True


def test_the_reverse_etl_cli_refuses_with_the_reason(home: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["reverse-etl", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert MESSAGE in err and "traceback" not in err
    assert no_duckdb_file(home)


def test_every_duckdb_only_step_refuses_before_opening_a_file(home: Path):
    where = Paths(home=home)
    with pytest.raises(DuckDBOnlyError, match="reverse ETL runs on a DuckDB warehouse only"):
        run(where, dry_run=True)
    with pytest.raises(DuckDBOnlyError, match="reverse ETL runs on a DuckDB warehouse only"):
        approve(findings=["f1"], where=where, lock=False)
    with pytest.raises(DuckDBOnlyError, match="decision on findings runs on a DuckDB warehouse only"):
        decide("accept", ["f1"], "known", where=where, hold_lock=False)
    assert main(["mapping", "suggest"]) == 1
    assert no_duckdb_file(home)


def test_the_nightly_reverse_etl_steps_materialize_saying_why(
    home: Path, postgres_database: str, monkeypatch: pytest.MonkeyPatch
):
    # the run's writer resource takes the server's advisory lock: a real server here
    monkeypatch.setenv("TRUEUP_WAREHOUSE", postgres_database)
    result = dg.materialize(build_reverse_etl_assets(), resources={"warehouse_writer": WarehouseWriter()})
    assert result.success
    shown = Paths(home=home).engine.display
    assert "trueup-local" not in shown
    for key in (PLAN_KEY, PUSH_KEY):
        metadata = result.asset_materializations_for_node(_node(key))[0].metadata
        assert metadata["skipped"].value == MESSAGE
        assert metadata["warehouse"].value == shown
    assert no_duckdb_file(home)


def _node(key: dg.AssetKey) -> str:
    return "__".join(key.path)


def test_the_webhook_sensor_launches_no_drain_that_could_only_fail(home: Path):
    from orchestration import webhooks as intake

    skipped = intake.evaluate(dg.DagsterInstance.ephemeral())
    assert isinstance(skipped, dg.SkipReason)
    assert "the webhook inbox drain runs on a DuckDB warehouse only" in str(skipped.skip_message)
