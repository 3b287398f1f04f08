"""The ads source (Google Ads + Meta) against the sandbox: full load, look-back, faults, drift."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ingestion.ads import helpers, settings
from ingestion.pipeline import SystemResult, run_system
from ingestion.warehouse import Paths
from sandbox.faults import Drift, FaultPlan, Scripted
from sandbox.ratelimit import Limits
from sandbox.server import Sandbox
from sandbox.store import World
from sandbox.world import advance
from tests.ingestion.helpers import fetch

GOOGLE_KEY = "customer__id, campaign__id, segments__date"
META_KEY = "account_id, campaign_id, date_start"


# -- helpers ---------------------------------------------------------------------------------


def _run(home: Path, now: datetime, **kwargs: Any) -> SystemResult:
    return run_system("ads", where=Paths(home), source_kwargs={"now": now, **kwargs})


def _first_day(now: datetime, start: str | None) -> date:
    return date.fromisoformat(start) if start else now.date() - timedelta(days=settings.START_DAYS_BACK)


def _google_days(world: World, now: datetime, start: str | None) -> dict[str, tuple[date, date]]:
    """Per customer, the days loaded: from the start (default history) up to the local yesterday."""
    return {
        str(c["id"]): (_first_day(now, start), helpers.local_yesterday(now, c["timeZone"]))
        for c in world.ads.google_customers
    }


def _meta_days(world: World, now: datetime, start: str | None) -> dict[str, tuple[date, date]]:
    return {
        helpers.meta_digits(a["account_id"]): (
            _first_day(now, start),
            helpers.local_yesterday(now, a["timezone_name"]),
        )
        for a in world.ads.meta_accounts
    }


def _in(days: tuple[date, date], day: str) -> bool:
    return days[0].isoformat() <= day <= days[1].isoformat()


def _google_expected(
    world: World, now: datetime, start: str | None = None
) -> dict[tuple[str, str, str], tuple[int, int, int, float]]:
    days = _google_days(world, now, start)
    return {
        (str(r["customer_id"]), str(r["campaign_id"]), r["date"]): (
            r["impressions"],
            r["clicks"],
            r["cost_micros"],
            round(float(r["conversions"]), 6),
        )
        for r in world.ads.google_rows
        if _in(days[str(r["customer_id"])], r["date"])
    }


def _googleloaded_counts(home: Path) -> dict[tuple[str, str, str], tuple[int, int, int, float]]:
    rows = fetch(
        home,
        f"select {GOOGLE_KEY}, metrics__impressions, metrics__clicks, metrics__cost_micros, "
        "metrics__conversions from raw_ads.google_campaign_metrics",
    )
    return {r[:3]: (r[3], r[4], r[5], round(r[6], 6)) for r in rows}


def _meta_expected(
    world: World, now: datetime, start: str | None = None
) -> dict[tuple[str, str, str], tuple[int, int, Decimal, int]]:
    days = _meta_days(world, now, start)
    expected = {}
    for r in world.ads.meta_rows:
        account = helpers.meta_digits(r["account_id"])
        if _in(days[account], r["date"]):
            key = (account, str(r["campaign_id"]), r["date"])
            expected[key] = (r["impressions"], r["clicks"], Decimal(r["spend"]), r["leads"])
    return expected


def _metaloaded_counts(home: Path) -> dict[tuple[str, str, str], tuple[int, int, Decimal, int]]:
    rows = fetch(
        home,
        f"""
        select {META_KEY}, i.impressions, i.clicks, i.spend,
               coalesce(sum(cast(a.value as bigint)) filter (where a.action_type = 'lead'), 0)
        from raw_ads.meta_campaign_insights i
        left join raw_ads.meta_campaign_insights__actions a on a._dlt_parent_id = i._dlt_id
        group by all
        """,
    )
    return {r[:3]: (int(r[3]), int(r[4]), Decimal(r[5]), int(r[6])) for r in rows}


def _duplicates(home: Path) -> list[tuple[Any, ...]]:
    return fetch(
        home,
        f"select {GOOGLE_KEY} from raw_ads.google_campaign_metrics group by all having count(*) > 1 "
        f"union all select {META_KEY} from raw_ads.meta_campaign_insights group by all having count(*) > 1",
    )


def _since(
    rows: dict[tuple[str, str, str], Any], now: datetime, days: int
) -> dict[tuple[str, str, str], Any]:
    """The rows of the last `days` days: what a run's look-back re-reads."""
    first = (now - timedelta(days=days)).date().isoformat()
    return {key: values for key, values in rows.items() if key[2] >= first}


def _sums_per_campaign(rows: dict[tuple[str, str, str], tuple[Any, ...]], field: int) -> dict[str, Any]:
    sums: dict[str, Any] = defaultdict(int)
    for key, values in rows.items():
        sums[key[1]] += values[field]
    return dict(sums)


# -- pure functions --------------------------------------------------------------------------


def test_pull_range_re_pulls_the_look_back():
    start, until = date(2026, 1, 1), date(2026, 3, 31)
    assert helpers.pull_range(None, start, 7, until) == (start, until)
    assert helpers.pull_range("2026-03-30", start, 7, until) == (date(2026, 3, 23), until)
    assert helpers.pull_range("2026-01-03", start, 30, until) == (start, until)
    assert helpers.pull_range("2026-04-20", start, 7, until) is None


def test_windows_cover_the_range_without_overlap():
    spans = list(helpers.windows(date(2026, 1, 1), date(2026, 3, 1), 30))
    assert spans == [
        (date(2026, 1, 1), date(2026, 1, 30)),
        (date(2026, 1, 31), date(2026, 3, 1)),
    ]


def test_int64_metrics_accept_digit_strings_only():
    assert (
        helpers.int64_violation({"metrics": {"costMicros": "9500000", "clicks": 3}}, ["costMicros"]) is None
    )
    reason = helpers.int64_violation({"metrics": {"costMicros": "9.5"}}, ["costMicros"])
    assert reason == "metrics.costMicros is '9.5', expected an int64"


def test_cursor_never_passes_the_last_requested_day():
    assert (
        helpers.newest("2026-01-05", ["2026-01-04", "2026-01-07", "garbage"], date(2026, 1, 6))
        == "2026-01-05"
    )
    assert helpers.newest(None, ["2026-01-04", "2026-01-06"], date(2026, 1, 6)) == "2026-01-06"


# -- against the sandbox ---------------------------------------------------------------------


def test_full_load_equals_the_world(sandbox: Sandbox, sandbox_world: World, trueup_home: Path, source_env):
    now = sandbox_world.clock()
    result = _run(trueup_home, now)
    assert result.quarantined == 0
    world = sandbox_world.ads

    customers = fetch(trueup_home, "select customer__id, customer__time_zone from raw_ads.google_customers")
    assert sorted(customers) == sorted((str(c["id"]), c["timeZone"]) for c in world.google_customers)
    campaigns = fetch(
        trueup_home, "select customer__id, campaign__id, campaign__name from raw_ads.google_campaigns"
    )
    assert sorted(campaigns) == sorted(
        (str(c["customer_id"]), str(c["id"]), c["name"]) for c in world.google_campaigns
    )
    google = _googleloaded_counts(trueup_home)
    expected = _google_expected(sandbox_world, now)
    assert len(google) == len(expected)
    assert _sums_per_campaign(google, 2) == _sums_per_campaign(expected, 2)  # costMicros
    assert google == expected

    accounts = fetch(trueup_home, "select id, account_id from raw_ads.meta_accounts")
    assert sorted(accounts) == sorted((a["id"], a["account_id"]) for a in world.meta_accounts)
    meta_campaigns = fetch(trueup_home, "select id, name from raw_ads.meta_campaigns")
    assert sorted(meta_campaigns) == sorted((str(c["id"]), c["name"]) for c in world.meta_campaigns)
    meta = _metaloaded_counts(trueup_home)
    expected_meta = _meta_expected(sandbox_world, now)
    assert _sums_per_campaign(meta, 2) == _sums_per_campaign(expected_meta, 2)  # spend
    assert meta == expected_meta


def test_look_back_overwrites_restated_days(
    sandbox: Sandbox, sandbox_world: World, trueup_home: Path, source_env
):
    now = sandbox_world.clock()
    start = (now - timedelta(days=730)).date().isoformat()
    _run(trueup_home, now - timedelta(days=5), start_date=start)  # the cursor ends five days short
    world = sandbox_world.ads
    nine_days_ago = (now - timedelta(days=9)).date().isoformat()
    restated = next(r for r in reversed(world.google_rows) if r["date"] < nine_days_ago)
    restated["conversions"] = float(restated["conversions"]) + 7.5
    old = next(
        r for r in world.google_rows if start <= r["date"] < (now - timedelta(days=90)).date().isoformat()
    )
    old["conversions"] = float(old["conversions"]) + 1.0  # outside the look-back: never read again
    meta_row = next(r for r in reversed(world.meta_rows) if r["date"] < nine_days_ago)
    meta_row["leads"] += 3

    _run(trueup_home, now, start_date=start)
    second = _run(trueup_home, now, start_date=start)
    loaded = {t.table: t for t in second.tables}
    assert loaded["google_campaign_metrics"].new == 0 and loaded["meta_campaign_insights"].new == 0

    google, expected = _googleloaded_counts(trueup_home), _google_expected(sandbox_world, now, start)
    key = (str(restated["customer_id"]), str(restated["campaign_id"]), restated["date"])
    assert google[key][3] == round(float(restated["conversions"]), 6)
    stale = (str(old["customer_id"]), str(old["campaign_id"]), old["date"])
    assert google.pop(stale)[3] == round(float(old["conversions"]) - 1.0, 6)
    expected.pop(stale)
    assert google == expected
    assert _metaloaded_counts(trueup_home) == _meta_expected(sandbox_world, now, start)
    assert _duplicates(trueup_home) == []

    with sandbox_world.lock:
        advance(sandbox_world, 1)  # a new day; the world may also restate days long past
    now = sandbox_world.clock()
    _run(trueup_home, now, start_date=start)
    google, expected = _googleloaded_counts(trueup_home), _google_expected(sandbox_world, now, start)
    assert google.keys() == expected.keys()
    assert _since(google, now, 30) == _since(expected, now, 30)
    meta, expected_meta = _metaloaded_counts(trueup_home), _meta_expected(sandbox_world, now, start)
    assert meta.keys() == expected_meta.keys()
    assert _since(meta, now, 7) == _since(expected_meta, now, 7)
    assert _duplicates(trueup_home) == []


@pytest.fixture
def reference(sandbox: Sandbox, sandbox_world: World, tmp_path: Path, source_env) -> Path:
    home = tmp_path / "reference"
    _run(home, sandbox_world.now)
    return home


def test_throttling_and_fault_storms_give_identical_results(
    sandbox: Sandbox, sandbox_world: World, reference: Path, trueup_home: Path, source_env
):
    # Google's quota window is a minute; a one-second window gives real 429s with a short retryDelay.
    sandbox.apps["google-ads"].limits = Limits({"google-ads": (4, 1.0)})
    each_kind = [  # at least one of each, whatever the timing
        Scripted(system="ads", path=path, kind=kind, status=status)
        for path, kind, status in (
            ("insights", "error", 500),
            ("searchStream", "drop", 0),
            ("campaigns", "malformed", 0),
        )
    ]
    sandbox.faults.set(
        FaultPlan(seed=3, error_rate=0.2, drop_rate=0.05, malformed_rate=0.05, scripted=each_kind)
    )
    result = _run(trueup_home, sandbox_world.now)
    assert sandbox.stats["google-ads:429"] > 0
    assert set(sandbox.faults.injected) >= {"error", "drop", "malformed"}
    assert result.quarantined == 0
    assert _googleloaded_counts(trueup_home) == _googleloaded_counts(reference)
    assert _metaloaded_counts(trueup_home) == _metaloaded_counts(reference)


def test_drifted_insights_are_quarantined_and_the_rest_loads(
    sandbox: Sandbox, sandbox_world: World, trueup_home: Path, source_env
):
    sandbox.faults.set(
        FaultPlan(drift={"ads/meta_insights": Drift(kind="changed_type", field="spend", fraction=0.2)})
    )
    now = sandbox_world.now
    result = _run(trueup_home, now)
    quarantined = fetch(trueup_home, "select resource, reason, payload from raw_ads._quarantine")
    assert quarantined and result.quarantined == len(quarantined)
    assert {(r[0], r[1]) for r in quarantined} == {
        ("meta_campaign_insights", "spend is dict, expected numstr")
    }
    loaded = _metaloaded_counts(trueup_home)
    expected = _meta_expected(sandbox_world, now)
    assert len(loaded) + len(quarantined) == len(expected)
    assert all(expected[key] == values for key, values in loaded.items())
    assert _googleloaded_counts(trueup_home) == _google_expected(sandbox_world, now)


def test_a_rejected_token_never_reaches_the_error_or_the_log(
    sandbox: Sandbox,
    sandbox_world: World,
    trueup_home: Path,
    source_env,
    monkeypatch: pytest.MonkeyPatch,
    caplog,
):
    secret = "meta-token-that-must-stay-secret"
    monkeypatch.setenv("SOURCES__ADS__META_ACCESS_TOKEN", secret)  # Meta takes it in the query string
    with pytest.raises(Exception) as failed:
        _run(trueup_home, sandbox_world.now)
    assert "400" in str(failed.value)
    assert secret not in str(failed.value) and secret not in caplog.text
