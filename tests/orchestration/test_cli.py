"""The command line: help on every option, a version, clear exits when nothing is built."""

from __future__ import annotations

import argparse
import threading

from orchestration.cli import build_parser, main, version


def all_actions(parser: argparse.ArgumentParser, path: str = "trueup"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_and_argument_has_help():
    missing = [
        f"{path} {a.option_strings or a.dest}" for path, a in all_actions(build_parser()) if not a.help
    ]
    assert missing == []


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as done:
        assert done.code == 0
    assert capsys.readouterr().out.strip() == f"trueup {version()}"


def test_report_check_and_findings_exit_non_zero_when_nothing_is_built(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    assert main(["report"]) == 1
    assert "nothing is built yet" in capsys.readouterr().err
    assert main(["findings", "list"]) == 1
    assert "nothing is built yet" in capsys.readouterr().err
    assert main(["check"]) == 1  # no warehouse file at all
    import duckdb

    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()  # a warehouse with nothing built
    assert main(["check", "--no-store"]) == 1
    assert "nothing is built" in capsys.readouterr().out
    for thread in threading.enumerate():  # the checks' background import of GX: let it finish here
        if thread.name == "checks-judge-warm-up":
            thread.join(timeout=120)


def test_a_missing_setting_names_its_variable_and_file_in_a_few_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path))  # no .dlt files
    for key in [k for k in __import__("os").environ if k.startswith("SOURCES__")]:
        monkeypatch.delenv(key)
    assert main(["run", "nightly"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) < 20
    assert "sources.crm.base_url is missing: set SOURCES__CRM__BASE_URL" in err
    assert "access_token under [sources.crm] in .dlt/secrets.toml" in err
    assert "Traceback" not in err


def test_status_counts_an_ingest_run_from_the_cli(tmp_path, monkeypatch, capsys):
    from datetime import UTC, datetime

    from ingestion.pipeline import SystemResult
    from ingestion.warehouse import Paths
    from orchestration.health import record_ingest

    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    record_ingest(["crm"], datetime.now(UTC), [SystemResult("crm", 3.0)], {}, Paths(tmp_path), origin="cli")
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "crm fresh" in out and "billing STALE" in out
    assert "crm ok" in out and "billing FAILING last_success" in out
    assert f"instance {tmp_path / 'dagster'}" in out
