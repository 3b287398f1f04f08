"""Sandbox settings: tokens per API, rate limits (off by default, for speed) and the account's shape."""

from __future__ import annotations

from dataclasses import dataclass, field

# Tokens the sandbox accepts; trueup's default config (.dlt/) carries the same values.
# Shapes the generated world and the apps must agree on.
STRIPE_API_VERSION = "2024-06-20"  # the pinned version (invoice.charge, top-level current_period_*)
STRIPE_EVENT_WINDOW_DAYS = 30  # how long /v1/events lists an event
CALENDLY_API = "https://api.calendly.com"  # URIs are absolute and never name the sandbox's port

DEFAULT_TOKENS = {
    "hubspot": "sandbox-hubspot-token",
    "stripe": "sk_test_sandbox",
    "calendly": "sandbox-calendly-token",
    "google-ads": "sandbox-google-ads-token",
    "meta": "sandbox-meta-token",
}

# Secrets the sandbox signs its webhooks with; `trueup webhooks serve` against the sandbox
# accepts the same (orchestration.sandbox_runtime.webhook_env).
DEFAULT_WEBHOOK_SECRETS = {
    "stripe": "whsec_sandbox_signing_secret",
    "hubspot": "sandbox-hubspot-client-secret",
    "calendly": "sandbox-calendly-signing-key",
}


@dataclass
class RateLimitConfig:
    """Per-API limits; `None` means unlimited. Values mirror the real APIs' published limits."""

    hubspot_per_10s: int | None = None  # private apps: 100 or 190 per 10 s
    hubspot_search_per_s: int | None = None  # 4 per second per token
    hubspot_daily: int = 250_000
    stripe_per_s: int | None = None  # 25 in test mode, 100 live
    calendly_per_min: int | None = None  # 500 paid, 50 free
    google_ads_per_min: int | None = None
    meta_per_hour: int | None = None
    # window lengths behind `google_ads_per_min` and `meta_per_hour`; shorten them to
    # exercise a real throttle quickly (e.g. 2 requests per 0.5 s)
    google_ads_window_s: float = 60.0
    meta_window_s: float = 3600.0

    @classmethod
    def realistic(cls) -> RateLimitConfig:
        return cls(
            hubspot_per_10s=100,
            hubspot_search_per_s=4,
            stripe_per_s=25,
            calendly_per_min=500,
            google_ads_per_min=60,
            meta_per_hour=200,
        )


@dataclass
class AccountShape:
    """Switches that make the sandbox answer as a real account of another shape would (see
    WORLD.md). Resources are named `<system>/<resource>` (`crm/owners`, `billing/invoices`,
    `scheduling/scheduled_events`, `ads/meta_campaigns`); `<system>/*` names all of a system's."""

    forbidden: list[str] = field(default_factory=list)  # the token lacks the scope: 403
    empty: list[str] = field(default_factory=list)  # a fresh account: lists answer no records
    unused: list[str] = field(default_factory=list)  # object types the account does not use: 400/404
    clock_skew_seconds: float = 0.0  # the Date header runs this far ahead of the world's clock
    duplicate_accounts: bool = False  # ad-account discovery lists every account twice

    def covers(self, names: list[str], system: str, resource: str) -> bool:
        return f"{system}/{resource}" in names or f"{system}/*" in names

    def is_forbidden(self, system: str, resource: str) -> bool:
        return self.covers(self.forbidden, system, resource)

    def is_empty(self, system: str, resource: str) -> bool:
        return self.covers(self.empty, system, resource)

    def is_unused(self, system: str, resource: str) -> bool:
        return self.covers(self.unused, system, resource)


@dataclass
class SandboxConfig:
    tokens: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TOKENS))
    limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    account: AccountShape = field(default_factory=AccountShape)
