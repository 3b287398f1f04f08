"""Webhook intake settings: signing secrets per provider, windows, limits, the inbox, thresholds.

Read dlt-style, without importing dlt (the Dagster sensor reads them at every tick):
environment variables first (`WEBHOOKS__STRIPE__SECRETS`, `WEBHOOKS__PUBLIC_BASE_URL`, ...),
then the `[webhooks]` tables of `.dlt/secrets.toml` and `.dlt/config.toml`. A secret setting
holds one secret or several (a TOML list, a JSON list or a comma-separated string in an
environment variable): during a rotation the old and the new secret are both accepted.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion.warehouse import Paths, paths

log = logging.getLogger(__name__)

SECTION = "webhooks"
PROVIDERS = ("stripe", "hubspot", "calendly")
# The trueup system whose incremental sync follows an event of each provider.
SYSTEM_OF = {"stripe": "billing", "hubspot": "crm", "calendly": "scheduling"}
# Replay windows: Stripe's SDK default, HubSpot's SDK (MAX_ALLOWED_TIMESTAMP), Calendly's sample.
DEFAULT_TOLERANCE = {"stripe": 300.0, "hubspot": 300.0, "calendly": 180.0}
DEFAULT_PORT = 8780
DEFAULT_MAX_BODY = 1_048_576  # Stripe events stay well under 1 MB; HubSpot batches of 100 too
DEFAULT_SENSOR_INTERVAL = 30  # Dagster's default minimum interval between sensor ticks
# How long the inbox keeps what is in the warehouse: for replay, and to absorb redeliveries
# (Stripe retries for up to three days; HubSpot and Calendly for a day).
DEFAULT_RETENTION_DAYS = 30.0


@dataclass(frozen=True)
class Thresholds:
    """When the intake's asset check fails: a backlog, an old event nobody drained, slow delivery."""

    backlog: int = 5_000
    oldest_seconds: float = 600.0
    latency_p95_seconds: float = 120.0


@dataclass(frozen=True)
class WebhookSettings:
    secrets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # provider -> accepted secrets
    tolerance: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCE))
    public_base_url: str | None = None  # what providers call; HubSpot signs this URL
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY
    inbox: Path = Path(".trueup/webhooks/inbox.sqlite3")
    sensor_interval_seconds: int = DEFAULT_SENSOR_INTERVAL
    thresholds: Thresholds = field(default_factory=Thresholds)
    retention_days: float = DEFAULT_RETENTION_DAYS  # synced events (and raw deliveries) kept for replay

    def secrets_for(self, provider: str) -> tuple[str, ...]:
        return tuple(self.secrets.get(provider, ()))

    def __repr__(self) -> str:  # never print a secret, even in a traceback's locals
        configured = {p: len(s) for p, s in self.secrets.items()}
        return f"WebhookSettings(providers with secrets={configured}, inbox={self.inbox})"


def inbox_path(where: Paths | None = None) -> Path:
    """`webhooks.inbox`, else `$TRUEUP_HOME/webhooks/inbox.sqlite3` (beside, never inside, the warehouse)."""
    configured = _lookup(("inbox",))
    if configured:
        return Path(str(configured)).resolve()
    return (where or paths()).home / "webhooks" / "inbox.sqlite3"


def load_settings(where: Paths | None = None, with_secrets: bool = True) -> WebhookSettings:
    """Read every setting now (never at import); validate numbers, never echo secrets.
    `with_secrets=False` leaves the secrets out (the Dagster side needs none)."""
    defaults = WebhookSettings()
    secrets = {p: parse_secrets(_lookup((p, "secrets"))) for p in PROVIDERS} if with_secrets else {}
    tolerance = {p: _number((p, "tolerance_seconds"), DEFAULT_TOLERANCE[p], float) for p in PROVIDERS}
    base = _lookup(("public_base_url",))
    thresholds = Thresholds(
        backlog=_number(("backlog_max",), Thresholds.backlog, int),
        oldest_seconds=_number(("oldest_max_seconds",), Thresholds.oldest_seconds, float),
        latency_p95_seconds=_number(("latency_p95_max_seconds",), Thresholds.latency_p95_seconds, float),
    )
    return WebhookSettings(
        secrets={p: s for p, s in secrets.items() if s},
        tolerance=tolerance,
        public_base_url=str(base).rstrip("/") if base else None,
        host=str(_lookup(("host",)) or defaults.host),
        port=_number(("port",), defaults.port, int),
        max_body_bytes=_number(("max_body_bytes",), defaults.max_body_bytes, int),
        inbox=inbox_path(where),
        sensor_interval_seconds=_number(("sensor_interval_seconds",), defaults.sensor_interval_seconds, int),
        thresholds=thresholds,
        retention_days=_number(("retention_days",), defaults.retention_days, float),
    )


def parse_secrets(raw: Any) -> tuple[str, ...]:
    """One secret, a list of them, or (from an environment variable) a JSON list or a
    comma-separated string; blanks dropped, order kept (the first is the newest)."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("a webhook secret list is not valid JSON") from None
        else:
            raw = text.split(",")
    if not isinstance(raw, list | tuple):
        raise ValueError("webhook secrets must be a string or a list of strings")
    return tuple(str(item).strip() for item in raw if str(item).strip())


def _number(key: tuple[str, ...], default: Any, kind: Callable[[Any], Any]) -> Any:
    raw = _lookup(key)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"setting {SECTION}.{'.'.join(key)} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"setting {SECTION}.{'.'.join(key)} must not be negative")
    return value


def _lookup(key: tuple[str, ...]) -> Any:
    """`WEBHOOKS__A__B` from the environment, then `[webhooks]` in secrets.toml, then config.toml."""
    variable = "__".join((SECTION, *key)).upper()
    if os.environ.get(variable):
        return os.environ[variable]
    for name in ("secrets.toml", "config.toml"):
        table: Any = _toml(_dlt_dir() / name).get(SECTION) or {}
        for part in key:
            table = table.get(part) if isinstance(table, dict) else None
        if table is not None:
            return table
    return None


def _dlt_dir() -> Path:
    return Path(os.environ.get("DLT_PROJECT_DIR") or ".") / ".dlt"


def _toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        log.warning("ignoring %s: %s", path.name, type(exc).__name__)
        return {}
