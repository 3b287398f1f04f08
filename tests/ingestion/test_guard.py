"""The pure parts of keeping a read honest: one copy per id, cursors that must advance, stamps
past the server's clock, skip reasons, the re-fetch set, and dlt working files checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestion import guard, local_state, mend
from ingestion.http import ApiError
from ingestion.warehouse import Paths


def test_the_newest_copy_of_an_id_wins_and_a_tie_goes_to_the_later_one():
    rows = [
        {"id": "1", "v": 2, "n": "a"},
        {"id": "1", "v": 1, "n": "b"},
        {"id": "2", "v": 5},
        {"id": "2", "v": 5, "n": "c"},
    ]
    kept = guard.newest_first_wins(rows, lambda r: r["id"], lambda r: r["v"])
    assert kept == [{"id": "1", "v": 2, "n": "a"}, {"id": "2", "v": 5, "n": "c"}]
    assert guard.newest_first_wins([{"x": 1}], lambda r: r.get("id"), lambda r: None) == [{"x": 1}]


def test_a_cursor_read_twice_stops_the_scan():
    advancing = guard.Advancing("crm: /list")
    advancing.check("a")
    advancing.check("b")
    with pytest.raises(guard.StalledCursor, match="did not advance"):
        advancing.check("a")


def test_stamps_past_the_servers_clock_never_make_the_cursor():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    stamps = [now - timedelta(hours=1), now + timedelta(days=1000), None, now]
    assert guard.capped(stamps, now) == now
    assert guard.is_future(now + guard.FUTURE_SLACK + timedelta(seconds=1), now)
    assert not guard.is_future(now + timedelta(seconds=30), now)  # the Date header's whole seconds


def test_403_404_and_unknown_object_types_are_skips_other_errors_are_failures():
    hubspot_403 = ApiError(
        "crm",
        "GET",
        "/crm/v3/owners",
        403,
        "x",
        {
            "category": "MISSING_SCOPES",
            "errors": [{"context": {"requiredGranularScopes": ["crm.objects.owners.read"]}}],
        },
    )
    assert guard.skip_reason(hubspot_403)[1] == "crm.objects.owners.read"
    stripe_403 = ApiError(
        "billing",
        "GET",
        "/v1/invoices",
        403,
        "x",
        {
            "error": {
                "message": "Having the 'rak_invoice_read' permission would allow this request to continue."
            }
        },
    )
    assert guard.skip_reason(stripe_403)[1] == "rak_invoice_read"
    unknown = ApiError(
        "crm", "GET", "/x", 400, "x", {"message": "Unable to infer object type from: meetings"}
    )
    assert guard.skip_reason(unknown) is not None
    assert guard.skip_reason(ApiError("crm", "GET", "/x", 400, "x", {"message": "bad filter"})) is None
    assert guard.skip_reason(ApiError("crm", "GET", "/x", 500, "x")) is None


def test_the_refetch_set_settles_what_passed_and_resolves_only_quarantines(tmp_path: Path):
    state: dict = {}
    pending = mend.Mend("crm", "contacts", state)
    pending.add("1", mend.QUARANTINED)
    pending.add("2", mend.FUTURE)
    pending.add("3", mend.QUARANTINED)
    rows = list(pending.settle(["1", "2"], gone=["3"]))
    assert [r.data["record_key"] for r in rows] == ["1", "3"]  # the future stamp needs no resolution
    assert [r.data["resolution"] for r in rows] == ["passed", "gone"]
    assert state[mend.PENDING_KEY] == {}
    where = Paths(tmp_path)
    assert mend.accept("crm", "contacts", ["7", "8"], "known bad import", where) == 2
    assert mend.accepted("crm", "contacts", where) == {"7", "8"}
    assert mend.accepted("crm", "deals", where) == set()


def test_a_corrupt_state_file_is_named_with_the_command_that_resets_it(tmp_path: Path):
    where = Paths(tmp_path)
    folder = local_state.pipeline_dir("crm", where)
    (folder / "schemas").mkdir(parents=True)
    (folder / "state.json").write_text("{}")
    local_state.check("crm", where)
    (folder / "schemas" / "crm.schema.json").write_text('{"truncated": ')
    with pytest.raises(local_state.CorruptStateError) as raised:
        local_state.check("crm", where)
    assert "crm.schema.json" in str(raised.value) and "trueup ingest --system crm --reset-state" in str(
        raised.value
    )
