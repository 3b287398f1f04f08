"""Meta Marketing API imitation: ad-account insights, campaigns and usage headers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import math
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sandbox.config import RateLimitConfig, SandboxConfig
from sandbox.faults import Faults, apply_drift
from sandbox.http import Request, Response, Router, json_response
from sandbox.ratelimit import Decision, Limits
from sandbox.store import Record, World

DEFAULT_LIMIT = 25
BUSINESS_ID = "100000000000001"
TIER = "standard_access"
DEFAULT_INSIGHT_FIELDS = ["impressions", "spend"]
INSIGHT_FIELDS = {
    "account_id",
    "account_name",
    "account_currency",
    "campaign_id",
    "campaign_name",
    "date_start",
    "date_stop",
    "impressions",
    "clicks",
    "spend",
    "actions",
    "cpc",
    "ctr",
    "cpm",
}
# valid Graph fields the sandbox holds no data for: Meta omits a field without a value
UNAVAILABLE_FIELDS = {
    "action_values",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "conversions",
    "conversion_values",
    "cost_per_action_type",
    "frequency",
    "objective",
    "reach",
}
CAMPAIGN_FIELDS = [
    "id",
    "account_id",
    "name",
    "status",
    "effective_status",
    "objective",
    "daily_budget",
    "created_time",
    "updated_time",
]
ACCOUNT_FIELDS = ["id", "account_id", "name", "currency", "timezone_name"]
CAMPAIGN_LEVEL_ONLY = {"campaign_id", "campaign_name"}
# Graph error codes an injected fault may carry: message, error_subcode, is_transient
FAULT_ERRORS: dict[int, tuple[str | None, int | None, bool]] = {
    1: ("An unknown error occurred", 99, True),
    2: ("An unexpected error has occurred. Please retry your request later.", None, True),
    4: ("(#4) Application request limit reached", 1504022, True),
    17: ("(#17) User request limit reached", 2446079, True),
    613: ("(#613) Calls to this api have exceeded the rate limit.", 1487742, True),
    80000: (
        "(#80000) There have been too many calls from this ad-account. Wait a bit and try again.",
        2446079,
        True,
    ),
    80004: (
        "(#80004) There have been too many calls to this ad-account. Wait a bit and try again.",
        2446079,
        True,
    ),
}


class GraphError(Exception):
    """An error in the Graph API's `{"error": {message, type, code, ...}}` shape."""

    def __init__(
        self,
        message: str,
        code: int = 100,
        kind: str = "OAuthException",
        subcode: int | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind
        self.subcode = subcode
        self.status = status


def param_error(message: str) -> GraphError:
    return GraphError(f"(#100) {message}")


def encode_cursor(index: int) -> str:
    """Meta's cursors: base64 of the row position with `=` padding written as `ZD`."""
    return base64.b64encode(str(index).encode()).decode().replace("=", "ZD")


def decode_cursor(cursor: str) -> int:
    try:
        return int(base64.b64decode(cursor.replace("ZD", "=")).decode())
    except (binascii.Error, ValueError):
        raise param_error("The after/before cursor is invalid.") from None


def decimal_string(value: Decimal) -> str:
    """A money amount as Meta writes it: at most two decimals, no trailing zeros."""
    text = f"{value.quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def ratio_string(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def parse_fields(request: Request, default: list[str]) -> list[str]:
    raw = request.arg("fields")
    if not raw:
        return list(default)
    return [f.strip() for f in raw.split(",") if f.strip()]


def parse_limit(request: Request) -> int:
    raw = request.arg("limit") or str(DEFAULT_LIMIT)
    try:
        limit = int(raw)
    except ValueError:
        raise param_error("Param limit must be an integer") from None
    if limit < 1:
        raise param_error("Param limit must be a positive integer")
    return limit


def parse_day(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise param_error(f"Param time_range[{name}] must be a date in the format YYYY-MM-DD") from None


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """A `date_preset` as its [since, until], relative to the account's local today."""
    yesterday = today - timedelta(days=1)
    first_of_month = today.replace(day=1)
    last_month_end = first_of_month - timedelta(days=1)
    fixed = {
        "today": (today, today),
        "yesterday": (yesterday, yesterday),
        "this_month": (first_of_month, today),
        "last_month": (last_month_end.replace(day=1), last_month_end),
        "maximum": (today - timedelta(days=37 * 31), today),
    }
    if preset in fixed:
        return fixed[preset]
    if preset.startswith("last_") and preset.endswith("d") and preset[5:-1].isdigit():
        return today - timedelta(days=int(preset[5:-1])), yesterday
    raise param_error(f"date_preset must be one of the supported presets, not {preset}")


class MetaApp:
    """Serves `world.ads` Meta accounts, campaigns and insights as the Graph API under /meta."""

    system = "ads"
    prefix = "meta"

    def __init__(self, world: World, config: SandboxConfig, faults: Faults) -> None:
        self.world = world
        self.config = config
        self.faults = faults
        self.limits = Limits()
        self.window = config.limits.meta_window_s
        self._last: Decision | None = None
        self.set_limits(config.limits)
        self._traces = itertools.count(1)
        self.router = Router()
        version = r"/v(?P<version>\d+\.\d+)"
        self.router.add("GET", version + "/me/adaccounts", self.list_accounts)
        self.router.add("GET", version + "/act_{account}", self.get_account)
        self.router.add("GET", version + "/act_{account}/campaigns", self.list_campaigns)
        self.router.add("GET", version + "/act_{account}/insights", self.insights)

    # -- the App protocol --------------------------------------------------------------

    def set_limits(self, limits: RateLimitConfig) -> None:
        per_window = limits.meta_per_hour
        self.window = limits.meta_window_s
        self.limits = Limits({"meta": (per_window, self.window)} if per_window else {})
        self._last = None

    def error(self, status: int, message: str, code: int | None = None) -> Response:
        """An injected fault: Graph error code 2, or the scripted fault's own `code`."""
        text, subcode, transient = FAULT_ERRORS.get(code or 2, (None, None, status >= 500))
        if text is None:
            text = f"(#{code}) An error occurred while processing this request."
        exc = GraphError(text, code=code or 2, subcode=subcode, status=status)
        return self._error(exc, self._usage_headers(self._last), transient=transient)

    def handle(self, request: Request) -> Response:
        decision = self.limits.hit("meta")
        self._last = decision
        headers = self._usage_headers(decision)
        token = request.arg("access_token") or request.bearer()
        if token != self.config.tokens.get("meta"):
            message = "Invalid OAuth access token - Cannot parse access token"
            return self._error(GraphError(message, code=190), headers)
        if decision is not None and not decision.allowed:
            exc = GraphError("(#17) User request limit reached", code=17, subcode=2446079)
            return self._error(exc, headers, transient=True)
        handler = self.router.match(request)
        resource = _resource_of(request.path)
        if handler is None or self.config.account.is_unused(self.system, resource):
            return self._error(self._unsupported(request.path.lstrip("/")), headers)
        if self.config.account.is_forbidden(self.system, resource):
            exc = GraphError("(#200) Requires ads_read permission to manage the object", code=200, status=403)
            return self._error(exc, headers)
        try:
            response = handler(request)
        except GraphError as exc:
            return self._error(exc, headers)
        response.headers.update(headers)
        return response

    def _error(self, exc: GraphError, headers: dict[str, str], transient: bool = False) -> Response:
        body: dict[str, Any] = {"message": exc.message, "type": exc.kind}
        if transient:
            body["is_transient"] = True
        body["code"] = exc.code
        if exc.subcode is not None:
            body["error_subcode"] = exc.subcode
        body["fbtrace_id"] = self._trace_id()
        return json_response({"error": body}, exc.status, headers)

    def _trace_id(self) -> str:
        digest = hashlib.sha1(f"meta-{next(self._traces)}".encode()).digest()
        return base64.b64encode(digest).decode()[:23].replace("+", "A").replace("/", "B")

    def _usage_headers(self, decision: Decision | None) -> dict[str, str]:
        """The JSON-in-header usage reports: percentages of the rate window, minutes to regain.

        `estimated_time_to_regain_access` is the time left until the window lets a call
        through, in whole minutes rounded up; a window shorter than a minute reports 0
        (its `reset_time_duration`, in seconds, is then the wait).
        """
        if decision is None:
            pct, reset, regain = 0.0, 0, 0
        else:
            used = decision.limit if not decision.allowed else decision.limit - decision.remaining
            pct = round(100.0 * used / decision.limit, 2)
            reset = math.ceil(decision.reset_seconds)
            if decision.allowed or self.window < 60:
                regain = 0
            else:
                regain = max(1, math.ceil(decision.reset_seconds / 60))
        business = {
            BUSINESS_ID: [
                {
                    "type": "ads_insights",
                    "call_count": pct,
                    "total_cputime": round(pct / 2, 2),
                    "total_time": round(pct / 2, 2),
                    "estimated_time_to_regain_access": regain,
                    "ads_api_access_tier": TIER,
                }
            ]
        }
        return {
            "X-Business-Use-Case-Usage": json.dumps(business, separators=(",", ":")),
            "X-Ad-Account-Usage": json.dumps(
                {"acc_id_util_pct": pct, "reset_time_duration": reset, "ads_api_access_tier": TIER},
                separators=(",", ":"),
            ),
            "x-fb-ads-insights-throttle": json.dumps(
                {"app_id_util_pct": pct, "acc_id_util_pct": pct, "ads_api_access_tier": TIER},
                separators=(",", ":"),
            ),
            "X-App-Usage": json.dumps(
                {"call_count": pct, "total_cputime": round(pct / 2, 2), "total_time": round(pct / 2, 2)},
                separators=(",", ":"),
            ),
        }

    @staticmethod
    def _unsupported(object_id: str) -> GraphError:
        message = (
            f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due "
            "to missing permissions, or does not support this operation. Please read the Graph API "
            "documentation at https://developers.facebook.com/docs/graph-api"
        )
        return GraphError(message, code=100, kind="GraphMethodException", subcode=33)

    def _account(self, request: Request) -> Record:
        digits = request.params["account"]
        for account in self.world.ads.meta_accounts:
            if str(account["account_id"]) == digits:
                return account
        raise self._unsupported(f"act_{digits}")

    def _today(self, account: Record) -> date:
        return self.world.local_today(account.get("timezone_name"))

    # -- accounts and campaigns ----------------------------------------------------------

    def list_accounts(self, request: Request) -> Response:
        fields = parse_fields(request, ["account_id", "id"])
        rows = [{f: a[f] for f in fields if f in a} for a in self.world.ads.meta_accounts]
        if self.config.account.duplicate_accounts:
            rows = [*rows, *rows]  # discovery that lists an account twice
        return json_response(self._page(request, rows))

    def get_account(self, request: Request) -> Response:
        account = self._account(request)
        fields = parse_fields(request, ["id"])
        return json_response({f: account[f] for f in [*fields, "id"] if f in account})

    def list_campaigns(self, request: Request) -> Response:
        account = self._account(request)
        fields = parse_fields(request, ["id"])
        unknown = [f for f in fields if f not in CAMPAIGN_FIELDS]
        if unknown:
            raise param_error(f"Tried accessing nonexisting field ({unknown[0]}) on node type (Campaign)")
        statuses = self._status_filter(request)
        digits = str(account["account_id"])
        campaigns = [
            c
            for c in self.world.ads.meta_campaigns
            if str(c["account_id"]).removeprefix("act_") == digits
            and (statuses is None or c.get("effective_status") in statuses)
        ]
        campaigns.sort(key=lambda c: int(c["id"]) if str(c["id"]).isdigit() else 0)
        if self.config.account.is_empty(self.system, "meta_campaigns"):
            campaigns = []
        drift = self.faults.drift_for(self.system, "meta_campaigns")
        rows = []
        for campaign in campaigns:
            row = {f: self._campaign_value(campaign, f) for f in [*fields, "id"]}
            rows.append(apply_drift(row, drift, str(campaign["id"])) if drift else row)
        return json_response(self._page(request, rows))

    @staticmethod
    def _campaign_value(campaign: Record, name: str) -> Any:
        if name == "account_id":
            return str(campaign["account_id"]).removeprefix("act_")
        return campaign.get(name)

    @staticmethod
    def _status_filter(request: Request) -> set[str] | None:
        raw = request.arg("effective_status")
        if not raw:
            return None
        try:
            values = json.loads(raw)
        except ValueError:
            values = raw.split(",")
        if not isinstance(values, list):
            raise param_error("Param effective_status must be an array")
        return {str(v) for v in values}

    # -- insights ------------------------------------------------------------------------

    def insights(self, request: Request) -> Response:
        account = self._account(request)
        level = request.arg("level") or "account"
        if level not in ("account", "campaign"):
            raise param_error(f"level {level} is not supported for this ad account's data")
        fields = parse_fields(request, DEFAULT_INSIGHT_FIELDS)
        for name in fields:
            if name not in INSIGHT_FIELDS and name not in UNAVAILABLE_FIELDS:
                raise param_error(
                    f"{name} is not valid for fields param. please check "
                    "https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ "
                    "for all valid values"
                )
        since, until = self._time_range(request, account)
        bucket = self._bucketing(request, since, until)
        rows = self._insight_rows(account, level, since, until, bucket)
        if self.config.account.is_empty(self.system, "meta_campaign_insights"):
            rows = []
        drift = self.faults.drift_for(self.system, "meta_insights")
        names = {str(c["id"]): str(c.get("name", "")) for c in self.world.ads.meta_campaigns}

        def render(row: dict[str, Any]) -> dict[str, Any]:
            out = self._render_insight(row, fields, level, account, names)
            key = f"{account['account_id']}/{row.get('campaign_id', '')}/{row['date_start']}"
            return apply_drift(out, drift, key) if drift else out

        return json_response(self._page(request, rows, render))

    def _time_range(self, request: Request, account: Record) -> tuple[date, date]:
        raw = request.arg("time_range")
        if raw:
            try:
                spec = json.loads(raw)
            except ValueError:
                raise param_error("Param time_range must be a JSON object with since and until") from None
            if not isinstance(spec, dict) or "since" not in spec or "until" not in spec:
                raise param_error("Param time_range must be a JSON object with since and until")
            since, until = parse_day(spec["since"], "since"), parse_day(spec["until"], "until")
            if since > until:
                raise param_error("Param time_range: since must be on or before until")
            return since, until
        return preset_range(request.arg("date_preset") or "last_30d", self._today(account))

    @staticmethod
    def _bucketing(request: Request, since: date, until: date) -> Callable[[date], tuple[date, date]]:
        """A function mapping a day to its reporting bucket [start, stop] for `time_increment`."""
        raw = request.arg("time_increment") or "all_days"
        if raw == "all_days":
            return lambda day: (since, until)
        if raw == "monthly":

            def month(day: date) -> tuple[date, date]:
                first = day.replace(day=1)
                following = (first + timedelta(days=32)).replace(day=1)
                return max(first, since), min(following - timedelta(days=1), until)

            return month
        if not raw.isdigit() or not 1 <= int(raw) <= 90:
            raise param_error("Param time_increment must be all_days, monthly or an integer from 1 to 90")
        step = int(raw)

        def fixed(day: date) -> tuple[date, date]:
            start = since + timedelta(days=(day - since).days // step * step)
            return start, min(start + timedelta(days=step - 1), until)

        return fixed

    def _insight_rows(
        self,
        account: Record,
        level: str,
        since: date,
        until: date,
        bucket: Callable[[date], tuple[date, date]],
    ) -> list[dict[str, Any]]:
        """Sum the stored daily rows into (bucket, campaign) groups, sorted by (date, campaign_id)."""
        digits = str(account["account_id"])
        low, high = since.isoformat(), until.isoformat()
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for stored in self.world.ads.meta_rows:
            if not low <= stored["date"] <= high:
                continue
            if str(stored["account_id"]).removeprefix("act_") != digits:
                continue
            start, stop = bucket(date.fromisoformat(stored["date"]))
            campaign_id = str(stored["campaign_id"]) if level == "campaign" else ""
            key = (start.isoformat(), campaign_id)
            group = groups.get(key)
            if group is None:
                group = {"date_start": key[0], "date_stop": stop.isoformat(), "impressions": 0, "clicks": 0}
                group.update({"spend": Decimal(0), "leads": 0})
                if level == "campaign":
                    group["campaign_id"] = campaign_id
                groups[key] = group
            group["impressions"] += int(stored.get("impressions") or 0)
            group["clicks"] += int(stored.get("clicks") or 0)
            group["spend"] += Decimal(str(stored.get("spend") or "0"))
            group["leads"] += int(stored.get("leads") or 0)
        return [groups[k] for k in sorted(groups)]

    def _render_insight(
        self, row: dict[str, Any], fields: list[str], level: str, account: Record, names: dict[str, str]
    ) -> dict[str, Any]:
        values = self._insight_values(row, account, names)
        out: dict[str, Any] = {}
        for name in fields:
            if name in CAMPAIGN_LEVEL_ONLY and level != "campaign":
                continue
            if name in values:
                out[name] = values[name]
        out.setdefault("date_start", row["date_start"])
        out.setdefault("date_stop", row["date_stop"])
        return out

    def _insight_values(self, row: dict[str, Any], account: Record, names: dict[str, str]) -> dict[str, Any]:
        impressions, clicks, spend = row["impressions"], row["clicks"], row["spend"]
        values: dict[str, Any] = {
            "account_id": str(account["account_id"]),
            "account_name": account.get("name", ""),
            "account_currency": account.get("currency", "USD"),
            "date_start": row["date_start"],
            "date_stop": row["date_stop"],
            "impressions": str(impressions),
            "clicks": str(clicks),
            "spend": decimal_string(spend),
        }
        if "campaign_id" in row:
            values["campaign_id"] = row["campaign_id"]
            values["campaign_name"] = names.get(row["campaign_id"], "")
        actions = []
        if row["leads"]:
            actions.append({"action_type": "lead", "value": str(row["leads"])})
        if clicks:
            actions.append({"action_type": "link_click", "value": str(clicks)})
        if actions:
            values["actions"] = actions
        if clicks:
            values["cpc"] = ratio_string(float(spend) / clicks)
        if impressions:
            values["ctr"] = ratio_string(100.0 * clicks / impressions)
            values["cpm"] = ratio_string(1000.0 * float(spend) / impressions)
        return values

    # -- paging --------------------------------------------------------------------------

    def _page(
        self,
        request: Request,
        rows: list[dict[str, Any]],
        render: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Cursor paging: `after`/`before` are row positions; `next` is absent on the last page.
        `render` turns the rows of the page (only those) into what the API returns."""
        limit = parse_limit(request)
        after, before = request.arg("after"), request.arg("before")
        if after:
            start = decode_cursor(after) + 1
            end = start + limit
        elif before:
            end = decode_cursor(before)
            start = max(0, end - limit)
        else:
            start, end = 0, limit
        end = min(end, len(rows))
        page = rows[start:end]
        if not page:
            return {"data": []}
        paging: dict[str, Any] = {
            "cursors": {"before": encode_cursor(start), "after": encode_cursor(end - 1)}
        }
        if end < len(rows):
            paging["next"] = self._link(request, "after", paging["cursors"]["after"])
        if start > 0:
            paging["previous"] = self._link(request, "before", paging["cursors"]["before"])
        return {"data": [render(row) for row in page] if render else page, "paging": paging}

    @staticmethod
    def _link(request: Request, name: str, cursor: str) -> str:
        query = [
            (k, v) for k, values in request.query.items() if k not in ("after", "before") for v in values
        ]
        query.append((name, cursor))
        return f"{request.base_url}{request.path}?{urlencode(query)}"


def _resource_of(path: str) -> str:
    """The trueup resource a Graph path reads."""
    if path.endswith("/insights"):
        return "meta_campaign_insights"
    if path.endswith("/campaigns"):
        return "meta_campaigns"
    return "meta_accounts"
