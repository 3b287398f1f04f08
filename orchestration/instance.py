"""The one Dagster instance: `$DAGSTER_HOME`, by default `$TRUEUP_HOME/dagster`, for every entry
point (the CLI, `trueup ui`, schedules), so every run shows in the UI, in `trueup status` and in
the alerts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ingestion.warehouse import paths

if TYPE_CHECKING:
    import dagster as dg

# The instance: telemetry off; runs go through a queue that lets one warehouse writer run
# at a time (runs tagged trueup/writer=warehouse), others (freshness checks) run alongside.
INSTANCE_CONFIG = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: trueup/writer
        value: warehouse
        limit: 1
"""


def dagster_home() -> Path:
    """`$DAGSTER_HOME`, else `$TRUEUP_HOME/dagster`."""
    return Path(os.environ.get("DAGSTER_HOME") or paths().home / "dagster").resolve()


def write_instance_config(home: Path | None = None, overwrite: bool = True) -> Path:
    """Write `dagster.yaml` (the Makefile calls this, so the one copy of the config is here)."""
    target = (home or dagster_home()) / "dagster.yaml"
    if target.exists() and not overwrite:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_text(INSTANCE_CONFIG)
    temporary.replace(target)
    return target


def use_default_home() -> Path:
    """Point `DAGSTER_HOME` at the default when it is unset, with its config written."""
    home = dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    write_instance_config(home, overwrite=False)
    return home


def get_instance() -> dg.DagsterInstance:
    """The persistent instance under `dagster_home()` (created on first use; the environment is
    left as it is)."""
    import dagster as dg

    home = dagster_home()
    write_instance_config(home, overwrite=False)
    return dg.DagsterInstance.from_config(str(home))
