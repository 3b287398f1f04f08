"""`trueup mapping show|check|suggest`."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from orchestration.cli import main
from orchestration.sandbox_runtime import embedded_sandbox
from tests.conftest import Warehouse


def test_show_says_where_each_value_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text('[mapping]\nad_attribution = "campaign_name"\n')
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("RULES__SETTLE_WINDOW_DAYS", "10")
    assert main(["mapping", "show"]) == 0
    out = capsys.readouterr().out
    assert 'ad_attribution = "campaign_name"  # config.toml [mapping]' in out
    assert "settle_window_days = 10  # RULES__SETTLE_WINDOW_DAYS" in out
    assert 'utm_campaign = "hs_analytics_source_data_2"  # default' in out
    monkeypatch.setenv("RULES__SETTLE_WINDOW_DAYS", "ten")
    assert main(["mapping", "show"]) == 1
    assert "rules.settle_window_days (RULES__SETTLE_WINDOW_DAYS): expected a whole number" in (
        capsys.readouterr().err
    )


def test_check_reads_the_crm_properties(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path))
    with embedded_sandbox(contacts=100, seed=3) as sandbox:
        assert main(["mapping", "check", "--sandbox", sandbox.url]) == 0
        assert "mapping: ok" in capsys.readouterr().out
        monkeypatch.setenv("MAPPING__CRM_CONTACT_PROPERTIES__NEXT_APPOINTMENT", "next_meeting")
        assert main(["mapping", "check", "--sandbox", sandbox.url]) == 1
    err = capsys.readouterr().err
    assert "names the property 'next_meeting', which contacts do not have" in err


def test_suggest_proposes_the_default_worlds_mapping_with_evidence_and_writes_it(
    loaded_warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    """The default world keeps its UTM campaign (the campaign's id) in hs_analytics_source_data_2
    and the CRM ids in Stripe metadata; suggest says so, with evidence, and --write sets it in
    .dlt/config.toml without touching the rest of the file."""
    project = tmp_path / ".dlt"
    project.mkdir()
    original = '# our sources\n[sources.crm]\nbase_url = "https://api.hubapi.com"  # kept\n'
    (project / "config.toml").write_text(original)
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path))
    assert main(["mapping", "suggest", "--database", str(loaded_warehouse.file), "--write"]) == 0
    out = capsys.readouterr().out
    assert "values of hs_analytics_source_data_2 are ad campaign ids" in out
    assert "name an existing CRM contact" in out and "name an existing CRM deal" in out
    assert "typed as NN/NN/YYYY" in out
    written = (project / "config.toml").read_text()
    assert written.startswith(original)  # comments and other tables kept
    config = tomllib.loads(written)
    mapping = config["mapping"]
    assert mapping["ad_attribution"] == "campaign_id"
    assert mapping["billing_contact_metadata_key"] == "hubspot_contact_id"
    assert mapping["billing_deal_metadata_key"] == "hubspot_deal_id"
    assert mapping["scheduling_company_question"] == "Company name"
    assert mapping["crm_contact_properties"]["utm_campaign"] == "hs_analytics_source_data_2"
    assert mapping["crm_contact_properties"]["free_text_dates"] == ["trial_start_date"]
    assert "next_appointment" not in mapping["crm_contact_properties"]  # no evidence: the default stands
    assert config["sources"]["crm"]["base_url"] == "https://api.hubapi.com"
