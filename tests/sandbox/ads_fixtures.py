"""A small hand-built ads world: two Google customers, two Meta accounts, 60 days of rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sandbox.store import Record, World

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
FIRST_DAY = date(2026, 9, 2)
DAYS = 60  # 2026-09-02 .. 2026-10-31
GOOGLE = {"1234567890": ["111000111", "111000222", "111000333"], "9876543210": ["222000111", "222000222"]}
BIG_CUSTOMER = "5555555555"  # 170 campaigns x 60 days: more than one 10,000-row page
BIG_CAMPAIGNS = 170
META = {"1000000001": ["120200000000001", "120200000000002"], "1000000002": ["120200000000003"]}


def days() -> list[str]:
    return [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(DAYS)]


def google_row(customer_id: str, campaign_id: str, day: int, seed: int) -> Record:
    impressions = 1000 + (seed * 37 + day * 11) % 5000
    clicks = impressions // (20 + seed % 7)
    return {
        "customer_id": customer_id,
        "campaign_id": campaign_id,
        "date": (FIRST_DAY + timedelta(days=day)).isoformat(),
        "impressions": impressions,
        "clicks": clicks,
        "cost_micros": clicks * 1_250_000 + seed,
        "conversions": float((clicks + day) % 5),
        "conversions_value": float((clicks + day) % 5) * 120.5,
    }


def meta_row(account_id: str, campaign_id: str, day: int, seed: int) -> Record:
    impressions = 2000 + (seed * 53 + day * 17) % 9000
    cents = impressions * 3 + day
    return {
        "account_id": account_id,
        "campaign_id": campaign_id,
        "date": (FIRST_DAY + timedelta(days=day)).isoformat(),
        "impressions": impressions,
        "clicks": impressions // 40,
        "spend": f"{cents // 100}.{cents % 100:02d}",
        "leads": (day + seed) % 4,  # zero on some days: `lead` then leaves `actions`
    }


def add_google(world: World) -> None:
    ads = world.ads
    customers = {**GOOGLE, BIG_CUSTOMER: [str(300000000 + i) for i in range(BIG_CAMPAIGNS)]}
    zones = {"1234567890": "America/New_York", "9876543210": "Europe/Berlin", BIG_CUSTOMER: "UTC"}
    rows = []
    for n, (customer_id, campaigns) in enumerate(customers.items()):
        ads.google_customers.append(
            {
                "id": customer_id,
                "descriptiveName": f"Trueup Ads {n + 1}",
                "currencyCode": "USD" if n != 1 else "EUR",
                "timeZone": zones[customer_id],
            }
        )
        for k, campaign_id in enumerate(campaigns):
            ads.google_campaigns.append(
                {
                    "id": campaign_id,
                    "customer_id": customer_id,
                    "name": f"Search {customer_id[-3:]}-{k}",
                    "status": "PAUSED" if k == 1 else "ENABLED",
                    "advertisingChannelType": "SEARCH",
                }
            )
            rows.extend(google_row(customer_id, campaign_id, d, k + n) for d in range(DAYS))
    ads.google_rows = sorted(rows, key=lambda r: (r["date"], r["campaign_id"]))


def add_meta(world: World) -> None:
    ads = world.ads
    rows = []
    for n, (account_id, campaigns) in enumerate(META.items()):
        ads.meta_accounts.append(
            {
                "id": f"act_{account_id}",
                "account_id": account_id,
                "name": f"Trueup Social {n + 1}",
                "currency": "USD",
                "timezone_name": "America/Los_Angeles",
            }
        )
        for k, campaign_id in enumerate(campaigns):
            ads.meta_campaigns.append(
                {
                    "id": campaign_id,
                    "account_id": account_id,
                    "name": f"Leads {k + 1} ({account_id[-1]})",
                    "status": "ACTIVE" if k == 0 else "PAUSED",
                    "effective_status": "ACTIVE" if k == 0 else "PAUSED",
                    "objective": "OUTCOME_LEADS",
                    "daily_budget": "5000",
                    "created_time": "2026-01-05T10:00:00-0800",
                    "updated_time": "2026-06-01T10:00:00-0700",
                }
            )
            rows.extend(meta_row(account_id, campaign_id, d, k + 3 * n) for d in range(DAYS))
    ads.meta_rows = sorted(rows, key=lambda r: (r["date"], r["campaign_id"]))


def build_world() -> World:
    world = World(seed=2, contacts_target=0, now=NOW)
    add_google(world)
    add_meta(world)
    return world
