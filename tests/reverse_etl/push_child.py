"""A push in its own process, for the kill trials: `python -m tests.reverse_etl.push_child HOME
SETTINGS_JSON`; prints each progress line (flushed) so the parent can kill it mid-push."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ingestion.warehouse import Paths
from reverse_etl.config import Settings, TargetSettings
from reverse_etl.run import run


def main(home: str, raw: str) -> None:
    data = json.loads(raw)
    targets = {name: TargetSettings(**spec) for name, spec in data.pop("targets").items()}
    run(
        Paths(Path(home)),
        settings=Settings(targets=targets, **data),
        progress=lambda line: print(line, flush=True),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
