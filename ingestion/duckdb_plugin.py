"""The dbt-duckdb plugin that gives every dbt connection trueup's normalizations
(`ingestion.normalize.register`); `dbt_project/profiles.yml` names it."""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from ingestion import normalize


class Plugin(BasePlugin):
    def configure_connection(self, conn: Any) -> None:
        normalize.register(conn)
