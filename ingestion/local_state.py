"""dlt's working files of a system (its state and schemas): checked before a run, so a corrupt
file is named in the error with the command that resets it, and reset by moving the
working folder aside and restoring the state from the warehouse (where every load put it)."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

from ingestion.warehouse import Paths

log = logging.getLogger(__name__)

RESET_COMMAND = "trueup ingest --system {system} --reset-state"


class CorruptStateError(RuntimeError):
    """A dlt state or schema file of a system cannot be read."""


def pipeline_dir(system: str, where: Paths) -> Path:
    return where.dlt_dir / f"trueup_{system}"


def check(system: str, where: Paths) -> None:
    """Raise CorruptStateError naming the first unreadable state or schema file."""
    folder = pipeline_dir(system, where)
    files = [folder / "state.json", *sorted((folder / "schemas").glob("*.json"))]
    for file in files:
        if not file.exists():
            continue
        try:
            json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            command = RESET_COMMAND.format(system=system)
            raise CorruptStateError(
                f"{system}: dlt {'state' if file.name == 'state.json' else 'schema'} file {file} is "
                f"corrupt ({type(exc).__name__}: {str(exc)[:120]}); reset it with `{command}` (its "
                "working folder is moved aside and the state is restored from the warehouse)"
            ) from exc


def reset(system: str, where: Paths) -> Path | None:
    """Move the system's dlt working folder aside (kept for inspection; pending packages in it
    are not loaded) and restore its state and schemas from the warehouse. Returns where the
    folder went, or None when there was none."""
    folder = pipeline_dir(system, where)
    if not folder.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = where.dlt_dir / "set_aside" / f"{folder.name}-{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(folder), str(target))
    log.warning("%s: moved dlt's working folder to %s", system, target)
    from ingestion.pipeline import make_pipeline

    make_pipeline(system, where).sync_destination()  # the state and schemas of the last load
    return target
