"""Ad platforms (Google Ads, Meta): accounts, campaigns, daily rows and conversion mismatches."""

from __future__ import annotations

import math
import random
from datetime import date

from sandbox import names
from sandbox.store import Record
from sandbox.world.common import DAY, HOUR, LocalDays, meta_time, to_cents, to_dollars, to_ms
from sandbox.world.people import PeopleGen
from sandbox.world.state import Campaign
from sandbox.world.truth import Anomaly


def set_conversions(platform: str, row: Record, value: int) -> None:
    if platform == "google":
        row["conversions"] = float(value)
        row["conversions_value"] = round(value * 120.0, 2)
    else:
        row["leads"] = value


class AdsGen(PeopleGen):
    """Ad accounts, campaigns and their daily metric rows."""

    def ads_setup(self) -> None:
        rng = self.r_ads
        for platform in ("google", "meta"):
            accounts = [self._ad_account(rng, platform, a) for a in range(self.n_accounts)]
            cal = self.cal[platform]
            seen: set[str] = set()
            camps: list[Campaign] = []
            for k in range(self.n_campaigns):
                cid = ""
                while not cid or cid in seen:
                    if platform == "google":
                        cid = str(rng.randint(10**10, 10**11 - 1))
                    else:
                        cid = f"1202{rng.randint(10**13, 10**14 - 1)}"
                seen.add(cid)
                account = accounts[k % len(accounts)]
                start = (
                    self.start - 30 * DAY
                    if k == 0
                    else rng.randint(self.start - 60 * DAY, self.now - 20 * DAY)
                )
                end = 0
                if k and rng.random() < 0.25 and start + 30 * DAY < self.now - DAY:
                    end = rng.randint(start + 30 * DAY, self.now - DAY)
                theme, region = rng.choice(names.CAMPAIGN_THEMES), rng.choice(names.CAMPAIGN_REGIONS)
                name = f"{theme} | {region} | {k + 1:03d}"
                camps.append(self._campaign(rng, platform, cid, account, name, start, end, cal))
            camps.sort(key=lambda c: c.id)
            self.campaigns[platform] = camps
            self.day_active[platform] = {}
            for o in range(cal.ordinal(self.start) - 1, cal.ordinal(self.now) + 1):
                self.day_active[platform][o] = [
                    k for k, c in enumerate(camps) if c.start_ord <= o <= c.end_ord
                ]
            if platform == "google":
                self.ads.google_campaigns = [c.record for c in camps]
            else:
                self.ads.meta_campaigns = [c.record for c in camps]

    def _ad_account(self, rng: random.Random, platform: str, a: int) -> str:
        label = "" if a == 0 else f" {a + 1}"
        if platform == "google":
            cid = str(rng.randint(10**9, 10**10 - 1))
            self.ads.google_customers.append(
                {
                    "id": cid,
                    "descriptiveName": f"Ledgerline Search{label}",
                    "currencyCode": "USD",
                    "timeZone": "America/New_York",
                }
            )
            return cid
        digits = str(rng.randint(10**14, 10**15 - 1))
        self.ads.meta_accounts.append(
            {
                "id": f"act_{digits}",
                "account_id": digits,
                "name": f"Ledgerline Ads{label}",
                "currency": "USD",
                "timezone_name": "America/Los_Angeles",
            }
        )
        return digits

    def _campaign(
        self,
        rng: random.Random,
        platform: str,
        cid: str,
        account: str,
        name: str,
        start: int,
        end: int,
        cal: LocalDays,
    ) -> Campaign:
        paused = bool(end)
        if platform == "google":
            record: Record = {
                "id": cid,
                "customer_id": account,
                "name": name,
                "status": "PAUSED" if paused else "ENABLED",
                "advertisingChannelType": "SEARCH",
            }
            cpc = rng.randint(80, 450) * 10_000
        else:
            status = "PAUSED" if paused else "ACTIVE"
            record = {
                "id": cid,
                "account_id": account,
                "name": name,
                "status": status,
                "effective_status": status,
                "objective": "OUTCOME_LEADS",
                "daily_budget": str(rng.randint(20, 400) * 100),
                "created_time": meta_time(start),
                "updated_time": meta_time(end or start + rng.randint(HOUR, 30 * DAY)),
            }
            cpc = rng.randint(40, 200)
        end_ord = cal.ordinal(end) if end else 10**9
        base_clicks = rng.randint(15, 120)
        return Campaign(platform, cid, account, cal.ordinal(start), end_ord, base_clicks, cpc, record)

    def _ad_row(self, platform: str, c: Campaign, day: str, conversions: int) -> Record:
        rng = self.r_ads
        clicks = int(c.base_clicks * (0.6 + 0.8 * rng.random())) + conversions * rng.randint(3, 12)
        impressions = clicks * rng.randint(15, 60)
        if platform == "google":
            row: Record = {
                "customer_id": c.account_id,
                "campaign_id": c.id,
                "date": day,
                "impressions": impressions,
                "clicks": clicks,
                "cost_micros": clicks * c.cpc,
                "conversions": float(conversions),
                "conversions_value": round(conversions * 120.0, 2),
            }
        else:
            row = {
                "account_id": c.account_id,
                "campaign_id": c.id,
                "date": day,
                "impressions": impressions,
                "clicks": clicks,
                "spend": to_dollars(clicks * c.cpc),
                "leads": conversions,
            }
        self.row_index[(platform, c.id, day)] = row
        return row

    def ad_rows(self) -> None:
        """Daily rows up to the last complete day in each account's time zone (the day before
        its local today); leads of today wait in `leads` for the row `advance` adds."""
        for platform in ("google", "meta"):
            cal = self.cal[platform]
            camps = self.campaigns[platform]
            counts = self.leads[platform]
            rows: list[Record] = []
            last = cal.ordinal(self.now) - 1
            for o in range(cal.ordinal(self.start), last + 1):
                day = cal.name(o)
                for k in self.day_active[platform][o]:
                    rows.append(self._ad_row(platform, camps[k], day, counts.get((k, o), 0)))
            self.rows_until[platform] = last
            self.leads[platform] = {key: n for key, n in counts.items() if key[1] > last}
            if platform == "google":
                self.ads.google_rows = rows
            else:
                self.ads.meta_rows = rows
        self._ad_mismatches()

    def _ad_mismatches(self) -> None:
        rng = self.r_anom
        pool: list[tuple[str, Record]] = []
        for platform, rows in (("google", self.ads.google_rows), ("meta", self.ads.meta_rows)):
            cutoff = self.cal[platform].name(self.rows_until[platform] - 2)
            pool += [(platform, r) for r in rows if r["date"] <= cutoff]
        for platform, row in self._pick(rng, pool, self._k(len(pool), 0.002)):
            self._make_ad_mismatch(platform, row, to_ms(row["date"] + "T12:00:00+00:00"))

    def _make_ad_mismatch(self, platform: str, row: Record, t: int) -> Anomaly:
        counted = int(row["conversions"] if platform == "google" else row["leads"])
        reported = counted + max(5, math.ceil(counted * 0.5))
        set_conversions(platform, row, reported)
        keys = {"platform": platform, "campaign_id": row["campaign_id"], "date": row["date"]}
        return self._anomaly("ad_conversion_mismatch", keys, {"reported": reported, "crm_leads": counted}, t)

    def _extend_ad_rows(self, until: int) -> None:
        """Rows for the local days before the one `until` falls on, with their waiting leads."""
        for platform in ("google", "meta"):
            cal = self.cal[platform]
            camps = self.campaigns[platform]
            active_on = self.day_active[platform]
            counts = self.leads[platform]
            rows = self.ads.google_rows if platform == "google" else self.ads.meta_rows
            today = cal.ordinal(until)
            for o in range(self.rows_until[platform] + 1, today + 1):
                if o not in active_on:
                    active_on[o] = [k for k, c in enumerate(camps) if c.start_ord <= o <= c.end_ord]
            waiting = self.waiting[platform]
            for o in range(self.rows_until[platform] + 1, today):
                day = cal.name(o)
                for k in active_on[o]:
                    row = self._ad_row(platform, camps[k], day, counts.pop((k, o), 0))
                    for bump in waiting.pop((k, o), []):
                        self._bump_row(platform, row, bump)
                    rows.append(row)
                self.rows_until[platform] = o

    def _bump_draws(self) -> tuple[int, int]:
        """A new paid lead's extra clicks and impressions per click."""
        clicks = self.r_adv.randint(3, 12)
        return clicks, self.r_adv.randint(15, 60)

    def _bump_row(self, platform: str, row: Record, bump: tuple[int, int]) -> None:
        clicks, per_click = bump
        if platform == "google":
            cpc = row["cost_micros"] // max(1, row["clicks"])
            row["cost_micros"] += clicks * cpc
            set_conversions(platform, row, int(row["conversions"]) + 1)
        else:
            cents = to_cents(row["spend"])
            row["spend"] = to_dollars(cents + clicks * (cents // max(1, row["clicks"])))
            row["leads"] += 1
        row["impressions"] += clicks * per_click
        row["clicks"] += clicks

    def _campaign_for(self, rng: random.Random, platform: str, t: int) -> Campaign | None:
        ordinal = self.cal[platform].ordinal(t)
        active = self.day_active[platform].get(ordinal)
        if not active:
            return None
        index = active[int(rng.random() * len(active))]
        campaign = self.campaigns[platform][index]
        if self.live:
            row = self.row_index.get((platform, campaign.id, self.cal[platform].name(ordinal)))
            bump = self._bump_draws()
            if row is not None:
                self._bump_row(platform, row, bump)
            else:  # the account's today: the lead lands on the day's row once the day is complete
                self.waiting[platform].setdefault((index, ordinal), []).append(bump)
        else:
            counts = self.leads[platform]
            counts[(index, ordinal)] = counts.get((index, ordinal), 0) + 1
        return campaign

    def _ad_day_open(self, platform: str, day: str) -> bool:
        """May `advance` change this ad day: one of the AD_RESTATE_DAYS local days before `now`?"""
        ordinal = date.fromisoformat(day).toordinal()
        return self.ad_open_from.get(platform, 0) <= ordinal <= self.rows_until[platform]
