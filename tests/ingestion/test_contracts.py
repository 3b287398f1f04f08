"""Record contracts: good records pass untouched, bad ones become quarantine rows."""

from __future__ import annotations

from ingestion.contracts import Contract, Field

CONTACTS = Contract(
    resource="contacts",
    key="id",
    fields=(Field("properties", "dict", required=True), Field("createdAt", "str")),
    string_map="properties",
)
INVOICES = Contract(resource="invoices", key="id", fields=(Field("amount_due", "int", required=True),))


def _rows(items):
    good, bad = [], []
    for item in items:
        (bad if hasattr(item, "meta") else good).append(item)
    return good, bad


def test_good_records_pass_unchanged():
    record = {"id": "1", "properties": {"email": "a@x.io", "phone": None}, "createdAt": "2026-01-01"}
    good, bad = _rows(CONTACTS.split("crm", [record]))
    assert good == [record]
    assert bad == []


def test_each_kind_of_break_is_quarantined_with_its_reason():
    records = [
        {"properties": {}},  # no key
        {"id": "2", "properties": {"email": {"value": "x"}}},  # changed type inside the string map
        {"id": "3", "properties": "oops"},  # wrong container type
        "not even an object",
        {"id": "4", "properties": {"email": "ok"}},
    ]
    good, bad = _rows(CONTACTS.split("crm", records))
    assert [g["id"] for g in good] == ["4"]
    reasons = [b.data["reason"] for b in bad]
    assert reasons == [
        "missing key field 'id'",
        "properties.email is dict, expected a string",
        "properties is str, expected dict",
        "record is str, not an object",
    ]
    assert {b.data["system"] for b in bad} == {"crm"}
    assert bad[1].data["record_key"] == "2"
    assert '"email"' in bad[1].data["payload"]


def test_type_checks_reject_bools_and_strings_for_ints():
    _, bad = _rows(
        INVOICES.split(
            "billing",
            [{"id": "in_1", "amount_due": "1000"}, {"id": "in_2", "amount_due": True}, {"id": "in_3"}],
        )
    )
    assert [b.data["reason"] for b in bad] == [
        "amount_due is str, expected int",
        "amount_due is bool, expected int",
        "missing required field 'amount_due'",
    ]


def test_quarantine_ids_are_stable_so_reruns_do_not_double():
    record = {"id": "9", "properties": {"email": 5}}
    first = next(iter(CONTACTS.split("crm", [record])))
    second = next(iter(CONTACTS.split("crm", [record])))
    assert first.data["quarantine_id"] == second.data["quarantine_id"]


def test_decimal_strings():
    contract = Contract(resource="deals", key="id", fields=(Field("amount", "numstr"),))
    _, bad = _rows(contract.split("crm", [{"id": "1", "amount": "12.50"}, {"id": "2", "amount": "twelve"}]))
    assert [b.data["record_key"] for b in bad] == ["2"]
