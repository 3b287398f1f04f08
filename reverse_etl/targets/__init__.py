"""Reverse-ETL targets: one module per target API behind the `Target` interface (base.py)."""

from __future__ import annotations

from reverse_etl.config import TargetSettings
from reverse_etl.targets.base import Target


def open_target(settings: TargetSettings) -> Target:
    """The target client for one system (crm: HubSpot, billing: Stripe)."""
    if not settings.base_url or not settings.token:
        raise ValueError(
            f"reverse ETL target {settings.system!r} has no base URL or access token: set "
            f"sources.{settings.system}.base_url and access_token (or reverse_etl.{settings.system}.*)"
        )
    if settings.system == "crm":
        from reverse_etl.targets.hubspot import HubSpotTarget

        return HubSpotTarget(settings)
    if settings.system == "billing":
        from reverse_etl.targets.stripe import StripeTarget

        return StripeTarget(settings)
    raise ValueError(f"unknown reverse ETL target {settings.system!r}")
