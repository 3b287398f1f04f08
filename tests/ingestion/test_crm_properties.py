"""Which CRM properties a run reads: the mapped ones (checked against the account's properties API
at the start), declared raw columns, and every property on request, in requests under the URL limit."""

from __future__ import annotations

from typing import Any

import pytest

from ingestion.crm.properties import split_for_url
from ingestion.mapping import MappingError
from ingestion.pipeline import run_system
from ingestion.warehouse import Paths
from sandbox import crm_schema
from sandbox.accounts import CUSTOM_NEXT_APPOINTMENT, CUSTOM_UTM_CAMPAIGN, AccountSetup
from sandbox.faults import FaultPlan, Scripted
from sandbox.server import Sandbox
from sandbox.store import World
from tests.ingestion.helpers import fetch

FAST = {"search_rate": 100.0}
CUSTOM = {"setup": AccountSetup(custom_properties=True)}


def _columns(paths: Paths, table: str) -> set[str]:
    sql = (
        "select column_name from information_schema.columns "
        f"where table_schema = 'raw_crm' and table_name = '{table}'"
    )
    return {row[0] for row in fetch(paths, sql)}


def test_properties_fit_the_url_budget_in_order():
    names = ("email", "firstname", "a_very_long_custom_property_name", "zip")
    fitted, rest = split_for_url(names, len("&properties=") + len("email%2Cfirstname"))
    assert (fitted, rest) == (["email", "firstname"], ["a_very_long_custom_property_name", "zip"])
    assert split_for_url(names, 10_000) == (list(names), [])


def test_a_mapped_property_the_account_lacks_stops_the_run_by_name(
    sandbox: Sandbox, warehouse_paths: Paths, source_env, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MAPPING__CRM_CONTACT_PROPERTIES__UTM_CAMPAIGN", "utm_campaing")
    monkeypatch.setenv("MAPPING__CRM_DEAL_PROPERTIES__INVOICE_REFERENCE", "invoice_number")
    with pytest.raises(MappingError) as raised:
        run_system("crm", where=warehouse_paths, source_kwargs=FAST)
    problems = "\n".join(raised.value.problems)
    assert (
        "mapping.crm_contact_properties.utm_campaign names the property 'utm_campaing', which contacts do "
        "not have in this HubSpot account"
    ) in problems
    assert "close: utm_campaign" not in problems  # the default account has no custom utm_campaign
    assert "'invoice_number', which deals do not have" in problems
    assert sandbox.stats["hubspot:200"] <= 2  # it stopped at the start: the properties reads only
    assert not warehouse_paths.warehouse.exists() or not _columns(warehouse_paths, "contacts")


def test_a_refused_properties_read_names_the_scope(
    sandbox: Sandbox, warehouse_paths: Paths, source_env, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MAPPING__CRM_CONTACT_PROPERTIES__NEXT_APPOINTMENT", "notes_next_activity_date")
    sandbox.faults.set(FaultPlan(scripted=[Scripted("crm", "/crm/v3/properties/", "error", 403)]))
    with pytest.raises(MappingError, match=r"grant the private app the `crm\.schemas\.contacts\.read` scope"):
        run_system("crm", where=warehouse_paths, source_kwargs=FAST)


@pytest.mark.parametrize("sandbox_world", [CUSTOM], indirect=True)
def test_mapped_custom_properties_are_read_and_declared(
    sandbox_world: World, warehouse_paths: Paths, source_env, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MAPPING__CRM_CONTACT_PROPERTIES__UTM_CAMPAIGN", CUSTOM_UTM_CAMPAIGN)
    monkeypatch.setenv("MAPPING__CRM_CONTACT_PROPERTIES__NEXT_APPOINTMENT", CUSTOM_NEXT_APPOINTMENT)
    dates = '["trial_start_date", "hs_persona"]'
    monkeypatch.setenv("MAPPING__CRM_CONTACT_PROPERTIES__FREE_TEXT_DATES", dates)
    run_system("crm", where=warehouse_paths, source_kwargs=FAST)
    columns = _columns(warehouse_paths, "contacts")
    # hs_persona has no value in any record: still a column, typed
    assert {f"properties__{CUSTOM_UTM_CAMPAIGN}", f"properties__{CUSTOM_NEXT_APPOINTMENT}"} <= columns
    assert "properties__hs_persona" in columns
    sql = f"select id, properties__{CUSTOM_UTM_CAMPAIGN} from raw_crm.contacts"
    loaded = dict(fetch(warehouse_paths, sql))
    world = {c["id"]: c["properties"].get(CUSTOM_UTM_CAMPAIGN) for c in sandbox_world.crm.contacts}
    assert loaded == world and any(world.values())


@pytest.mark.parametrize("sandbox_world", [CUSTOM], indirect=True)
def test_every_property_on_request_under_the_url_limit(
    sandbox: Sandbox, sandbox_world: World, warehouse_paths: Paths, source_env
):
    """`properties = {contacts = "all"}`: every property the account lists is asked for (its
    names run past the sandbox's 8 KB URL limit, which answers 414), the list page carries what
    fits and a batch read of the page's ids the rest; every value lands in raw, and a later
    incremental run (search, properties in the body) keeps them."""
    listed = crm_schema.names("contacts", sandbox_world.setup)
    assert len(",".join(listed)) > 8192
    run_system("crm", where=warehouse_paths, source_kwargs={**FAST, "properties": {"contacts": "all"}})
    assert sandbox.stats["hubspot:414"] == 0
    valued = {
        name
        for c in sandbox_world.crm.contacts
        for name, value in c["properties"].items()
        if value not in (None, "")
    }
    columns = _columns(warehouse_paths, "contacts")
    assert {f"properties__{name}" for name in valued} <= columns
    # custom properties come last in the account's list: past the URL budget, so from batch reads
    sample = next(c for c in sandbox_world.crm.contacts if c["properties"].get(CUSTOM_NEXT_APPOINTMENT))
    row = fetch(
        warehouse_paths,
        f"select properties__{CUSTOM_NEXT_APPOINTMENT}, properties__{CUSTOM_UTM_CAMPAIGN} "
        f"from raw_crm.contacts where id = '{sample['id']}'",
    )
    props: dict[str, Any] = sample["properties"]
    assert row == [(props[CUSTOM_NEXT_APPOINTMENT], props.get(CUSTOM_UTM_CAMPAIGN))]


def test_a_list_url_past_the_limit_is_refused(sandbox: Sandbox, source_env):
    """The sandbox answers 414 as HubSpot does: a connector that put every property in the URL
    would fail here (dlt's and Airbyte's did)."""
    import httpx

    from sandbox.config import DEFAULT_TOKENS

    names = ",".join(sorted(crm_schema.names("contacts", AccountSetup.every_switch())))
    response = httpx.get(
        f"{sandbox.base_urls['hubspot']}/crm/v3/objects/contacts",
        params={"properties": names},
        headers={"Authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"},
    )
    assert response.status_code == 414
