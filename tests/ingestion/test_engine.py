"""TRUEUP_WAREHOUSE picks the engine; a password never shows in what is printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.engine import WarehouseUrlError, parse
from ingestion.warehouse import Paths


def test_unset_or_a_path_is_duckdb(tmp_path: Path) -> None:
    assert parse(None, tmp_path / "w.duckdb").path == tmp_path / "w.duckdb"
    engine = parse(str(tmp_path / "other.duckdb"), tmp_path / "w.duckdb")
    assert engine.kind == "duckdb" and engine.path == tmp_path / "other.duckdb"
    expected = {"TRUEUP_DBT_TARGET": "local", "TRUEUP_WAREHOUSE": str(tmp_path / "other.duckdb")}
    assert engine.dbt_env() == expected


def test_a_postgres_url_names_the_server_and_hides_its_password(tmp_path: Path) -> None:
    engine = parse("postgresql://ana:s%40cret@db.example:6543/trueup", tmp_path / "w.duckdb")
    assert engine.is_postgres
    assert (engine.host, engine.port, engine.user, engine.password, engine.database) == (
        "db.example", 6543, "ana", "s@cret", "trueup",
    )  # fmt: skip
    assert "s@cret" not in engine.display and "cret" not in repr(engine.display)
    assert engine.url() == "postgresql://ana:s%40cret@db.example:6543/trueup"
    env = engine.dbt_env()
    assert env["TRUEUP_DBT_TARGET"] == "postgres" and env["TRUEUP_PG_PASSWORD"] == "s@cret"


def test_the_password_can_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUEUP_WAREHOUSE_PASSWORD", "from-env")
    assert parse("postgres://ana@db/trueup", tmp_path).password == "from-env"


@pytest.mark.parametrize(
    ("setting", "says"),
    [("mysql://a@b/c", "unknown engine 'mysql'"), ("postgresql://db.example/trueup", "needs a user")],
)
def test_an_unusable_url_says_why(tmp_path: Path, setting: str, says: str) -> None:
    with pytest.raises(WarehouseUrlError, match=says):
        parse(setting, tmp_path)


def test_paths_keep_the_duckdb_file_when_the_warehouse_is_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUEUP_WAREHOUSE", "postgresql://ana@db/trueup")
    where = Paths(home=tmp_path)
    assert where.warehouse == tmp_path / "warehouse.duckdb"
    assert where.engine.is_postgres
