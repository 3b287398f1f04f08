"""Run trueup against the embedded sandbox: start it, point every source at it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sandbox.config import DEFAULT_TOKENS, DEFAULT_WEBHOOK_SECRETS, RateLimitConfig, SandboxConfig
from sandbox.server import Sandbox


def today_anchor() -> datetime:
    """Midnight UTC today: the embedded world's `now`, so its data is always current."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def source_env(base_urls: Mapping[str, str], tokens: Mapping[str, str] = DEFAULT_TOKENS) -> dict[str, str]:
    """dlt config/secret environment variables that point every source at a sandbox."""
    return {
        "SOURCES__CRM__BASE_URL": base_urls["hubspot"],
        "SOURCES__CRM__ACCESS_TOKEN": tokens["hubspot"],
        "SOURCES__BILLING__BASE_URL": base_urls["stripe"],
        "SOURCES__BILLING__ACCESS_TOKEN": tokens["stripe"],
        "SOURCES__SCHEDULING__BASE_URL": base_urls["calendly"],
        "SOURCES__SCHEDULING__ACCESS_TOKEN": tokens["calendly"],
        "SOURCES__ADS__GOOGLE_BASE_URL": base_urls["google-ads"],
        "SOURCES__ADS__GOOGLE_ACCESS_TOKEN": tokens["google-ads"],
        "SOURCES__ADS__GOOGLE_DEVELOPER_TOKEN": "sandbox-developer-token",
        "SOURCES__ADS__META_BASE_URL": base_urls["meta"],
        "SOURCES__ADS__META_ACCESS_TOKEN": tokens["meta"],
    }


def webhook_env(secrets: Mapping[str, str] = DEFAULT_WEBHOOK_SECRETS) -> dict[str, str]:
    """Webhook settings (environment variables) that accept what the sandbox signs."""
    return {f"WEBHOOKS__{provider.upper()}__SECRETS": secret for provider, secret in secrets.items()}


def clock_env(now: datetime) -> dict[str, str]:
    """Settings that make the window-based sources (scheduling, ads) read "now" as `now`:
    for a sandbox world that was advanced past the wall clock."""
    return {"SOURCES__SCHEDULING__NOW": now.isoformat(), "SOURCES__ADS__NOW": now.isoformat()}


def sandbox_base_urls(url: str) -> dict[str, str]:
    """Base URL per API of a sandbox served at `url` (e.g. by `trueup sandbox serve`)."""
    from sandbox.server import APP_CLASSES

    return {prefix: f"{url.rstrip('/')}/{prefix}" for prefix in APP_CLASSES}


@contextmanager
def patched_env(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextmanager
def embedded_sandbox(
    contacts: int = 2000,
    seed: int = 7,
    limits: RateLimitConfig | None = None,
    **generate: Any,
) -> Iterator[Sandbox]:
    """Generate a world (`generate`: further `sandbox.world.generate` arguments, e.g. noise),
    serve it on a free loopback port, and point the sources at it."""
    from sandbox import world as world_module

    world = world_module.generate(seed=seed, contacts=contacts, anchor=today_anchor(), **generate)
    config = SandboxConfig(limits=limits or RateLimitConfig())
    with Sandbox(world, config) as sandbox, patched_env(source_env(sandbox.base_urls)):
        yield sandbox
