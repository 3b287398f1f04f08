"""The business mapping and rules settings: defaults, where values come from, every problem named,
and the one `--vars` every dbt command gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from ingestion.mapping import MappingError, load_mapping
from orchestration.dbt import PROJECT_DIR, run_dbt, with_vars
from sandbox.accounts import AccountSetup, config_env

DBT_VARS = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def _problems(environ: dict[str, str], files: list[Path] | None = None) -> list[str]:
    with pytest.raises(MappingError) as raised:
        load_mapping(environ=environ, files=files or [])
    return raised.value.problems


def test_the_defaults_are_dbt_project_yml_vars():
    """The Python defaults and dbt_project.yml's `vars:` (the contract staging reads) agree."""
    assert load_mapping(environ={}, files=[]).dbt_vars() == DBT_VARS


def test_environment_over_secrets_over_config_over_defaults(tmp_path: Path):
    config = _toml(
        tmp_path,
        """
[mapping]
ad_attribution = "campaign_name"
billing_deal_metadata_key = ""          # TOML has no null: empty means none
invoice_billed_statuses = ["open", "paid", "uncollectible"]

[mapping.crm_contact_properties]
utm_campaign = "utm_campaign"
next_appointment = "next_appointment_date"

[rules]
settle_window_days = 10
now = 2026-05-01T00:00:00Z
""",
    )
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("[rules]\nsettle_window_days = 12\n")
    environ = {
        "MAPPING__CRM_CONTACT_PROPERTIES__UTM_CAMPAIGN": "campaign_utm",
        "RULES__AMOUNT_TOLERANCE_PCT": "2.5",
        "MAPPING__INVOICE_COLLECTED_STATUSES": '["paid"]',
        "SOURCES__CRM__BASE_URL": "not ours",
    }
    mapping = load_mapping(environ=environ, files=[secrets, config])
    values = mapping.dbt_vars()
    contacts = values["crm_contact_properties"]
    assert contacts["utm_campaign"] == "campaign_utm"  # the variable wins over the file
    assert contacts["next_appointment"] == "next_appointment_date"
    assert contacts["email"] == "email"  # a concept left alone keeps its default
    assert values["ad_attribution"] == "campaign_name"
    assert values["billing_deal_metadata_key"] is None
    assert values["invoice_billed_statuses"] == ["open", "paid", "uncollectible"]
    assert values["settle_window_days"] == 12  # secrets.toml over config.toml
    assert values["amount_tolerance_pct"] == 2.5
    assert values["run_started_at"] == "2026-05-01T00:00:00+00:00"  # rules.now is the clock
    origins = mapping.origins
    variable = "MAPPING__CRM_CONTACT_PROPERTIES__UTM_CAMPAIGN"
    assert origins["mapping.crm_contact_properties.utm_campaign"] == variable
    assert origins["rules.settle_window_days"] == "secrets.toml [rules]"
    assert origins["mapping.scheduling_phone_question"] == "default"
    assert mapping.crm_properties("contacts")["next_appointment_date"] == (
        "mapping.crm_contact_properties.next_appointment"
    )


def test_a_whole_table_in_one_variable():
    table = {"utm_campaign": "utm_campaign", "free_text_dates": ["trial_start_date", "renewal_date"]}
    mapping = load_mapping(environ={"MAPPING__CRM_CONTACT_PROPERTIES": json.dumps(table)}, files=[])
    contacts = mapping.dbt_vars()["crm_contact_properties"]
    assert contacts["utm_campaign"] == "utm_campaign"
    assert contacts["free_text_dates"] == ["trial_start_date", "renewal_date"]
    assert contacts["phone"] == "phone"


def test_every_problem_is_named_with_where_it_came_from(tmp_path: Path):
    config = _toml(tmp_path, '[mapping]\ncrm_contact_propertes = {utm_campaign = "x"}\n[rules]\nwindow = 3\n')
    problems = _problems(
        {
            "MAPPING__CRM_CONTACT_PROPERTIES__UTM_CAMPAGN": "x",
            "MAPPING__CRM_DEAL_PROPERTIES__AMOUNT": "Deal Amount",
            "MAPPING__CRM_CONTACT_PROPERTIES__UTM_SOURCE": "utm_source__c",
            "MAPPING__INVOICE_BILLED_STATUSES": "open,pending",
            "MAPPING__INVOICE_COLLECTED_STATUSES": "paid,void",
            "MAPPING__AD_ATTRIBUTION": "name",
            "MAPPING__BILLING_CONTACT_METADATA_KEY": "crm[id]",
            "RULES__AMOUNT_TOLERANCE_PCT": "one",
            "RULES__SETTLE_WINDOW_DAYS": "-1",
            "RULES__INVOICE_MATCH_DAYS": "4.5",
            "RULES__IDENTITY_CONFIDENCE_THRESHOLD": "1.5",
            "RULES__NOW": "2026-05-01 00:00",
        },
        [config],
    )
    text = "\n".join(problems)
    expected = [
        "mapping.crm_contact_properties.utm_campagn (MAPPING__CRM_CONTACT_PROPERTIES__UTM_CAMPAGN): "
        "unknown concept (did you mean utm_campaign?)",
        "mapping.crm_contact_propertes (config.toml [mapping]): unknown setting "
        "(did you mean crm_contact_properties?)",
        "rules.window (config.toml [rules]): unknown setting",
        "'Deal Amount' is not a property name",
        "'utm_source__c' is not a property name",  # dlt would name its column properties__utm_source_c
        "'pending' is not a Stripe invoice status",
        "void must also count as billed",
        "mapping.ad_attribution (MAPPING__AD_ATTRIBUTION): 'name' is not one of campaign_id, campaign_name",
        "'crm[id]' is not a Stripe metadata key",
        "rules.amount_tolerance_pct (RULES__AMOUNT_TOLERANCE_PCT): expected a number, got 'one'",
        "rules.settle_window_days (RULES__SETTLE_WINDOW_DAYS): must be 0 or more, got -1",
        "rules.invoice_match_days (RULES__INVOICE_MATCH_DAYS): expected a whole number, got '4.5'",
        "rules.identity_confidence_threshold (RULES__IDENTITY_CONFIDENCE_THRESHOLD): must be between 0 and 1",
        "rules.now (RULES__NOW): 2026-05-01T00:00:00 needs a UTC offset",
    ]
    for fragment in expected:
        assert fragment in text
    assert len(problems) == len(expected)


def test_the_mapping_of_every_sandbox_setup_is_valid():
    for setup in (AccountSetup(), AccountSetup.every_switch(), AccountSetup.parse("no_crm_meetings")):
        env = {k: v for k, v in config_env(setup).items() if k.startswith("MAPPING__")}
        load_mapping(environ=env, files=[])


def test_dbt_commands_get_the_vars_and_a_callers_vars_win(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RULES__SETTLE_WINDOW_DAYS", "9")
    monkeypatch.setenv("DLT_PROJECT_DIR", "/nonexistent")
    args = with_vars(["build", "--select", "staging", "--vars", '{"run_started_at": "2026-01-01"}'])
    assert args[:3] == ["build", "--select", "staging"] and args[3] == "--vars" and len(args) == 5
    passed = json.loads(args[4])
    assert passed["settle_window_days"] == 9
    assert passed["run_started_at"] == "2026-01-01"
    assert passed["crm_contact_properties"] == DBT_VARS["crm_contact_properties"]
    assert with_vars(["parse"]) == ["parse"]  # the manifest is built before any business is configured
    monkeypatch.setenv("RULES__SETTLE_WINDOW_DAYS", "soon")
    with pytest.raises(MappingError, match="RULES__SETTLE_WINDOW_DAYS"):
        with_vars(["build"])


def test_a_rule_setting_reaches_the_compiled_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Real dbt: the settle window set in the environment is the one the rule's SQL uses."""
    monkeypatch.setenv("RULES__SETTLE_WINDOW_DAYS", "23")
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path))
    from ingestion.warehouse import Paths

    where = Paths(home=tmp_path / "home")
    run_dbt(["compile", "--select", "rec_deal_won_no_invoice"], where=where)
    compiled = next((where.home / "dbt" / "target" / "compiled").rglob("rec_deal_won_no_invoice.sql"))
    assert "to_days(23)" in compiled.read_text()
