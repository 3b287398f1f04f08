"""Reverse-ETL settings: per target whether pushing is on, where the API is, and the guardrail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TARGETS = ("crm", "billing")
DEFAULT_MAX_SHARE = 0.25  # a plan touching more of a target's records than this aborts
DEFAULT_GUARDRAIL_FLOOR = 10  # ... unless it touches no more records than this
DEFAULT_MAX_ROUNDS = 6  # send rounds per write (first send + retries) before a dead letter


@dataclass(frozen=True)
class TargetSettings:
    """One target API. `push` False (the default for every real target) plans and records
    without writing; `make demo` and the tests turn it on for the sandbox."""

    system: str
    base_url: str | None = None
    token: str | None = field(default=None, repr=False)
    push: bool = False
    rate: float | None = None  # static pace (requests per second); rate headers pace anyway
    timeout: float = 60.0
    batch_size: int | None = None  # records per write request (default: the target's maximum)
    backoff_base: float = 0.25  # seconds before the first retry of a request; doubles per attempt
    stripe_version: str = "2024-06-20"


@dataclass(frozen=True)
class Settings:
    targets: dict[str, TargetSettings]
    max_share: float = DEFAULT_MAX_SHARE
    guardrail_floor: int = DEFAULT_GUARDRAIL_FLOOR
    max_rounds: int = DEFAULT_MAX_ROUNDS
    backoff_base: float = 0.25
    in_flight: int = 4  # requests on the wire at once (the client's pacing sets the rate)


def load_settings(push: bool | None = None) -> Settings:
    """Read `[reverse_etl]` (and each target's `[reverse_etl.<target>]`) from dlt config and
    environment (`REVERSE_ETL__CRM__PUSH=true`); base URLs and tokens default to the source's
    (`sources.crm.base_url`, `sources.crm.access_token`). `push` overrides every target's switch."""
    import dlt

    def get(key: str, default: Any = None) -> Any:
        value: Any = dlt.config.get(key)
        return default if value is None else value

    targets = {}
    for system in TARGETS:
        switch = _boolean(get(f"reverse_etl.{system}.push", False), f"reverse_etl.{system}.push")
        targets[system] = TargetSettings(
            system=system,
            base_url=get(f"reverse_etl.{system}.base_url") or get(f"sources.{system}.base_url"),
            token=dlt.secrets.get(f"reverse_etl.{system}.access_token")
            or dlt.secrets.get(f"sources.{system}.access_token"),
            push=switch if push is None else push,
            rate=_optional_float(get(f"reverse_etl.{system}.rate")),
            timeout=float(get(f"reverse_etl.{system}.timeout", 60.0)),
            batch_size=_optional_int(get(f"reverse_etl.{system}.batch_size")),
            backoff_base=float(get(f"reverse_etl.{system}.backoff_base", 0.25)),
        )
    return Settings(
        targets=targets,
        max_share=float(get("reverse_etl.max_share", DEFAULT_MAX_SHARE)),
        guardrail_floor=int(get("reverse_etl.guardrail_floor", DEFAULT_GUARDRAIL_FLOOR)),
        max_rounds=int(get("reverse_etl.max_rounds", DEFAULT_MAX_ROUNDS)),
        in_flight=int(get("reverse_etl.in_flight", 4)),
    )


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"setting {name} must be true or false, got {value!r}")


def _optional_float(value: Any) -> float | None:
    return None if value in (None, "", 0, "0") else float(value)


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "", 0, "0") else int(value)
