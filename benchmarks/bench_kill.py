"""The 50-trial kill -9 soak: kill an ingest at random points, re-run, compare with the world.

python benchmarks/bench_kill.py --trials 50 --contacts 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from orchestration.sandbox_runtime import today_anchor
from sandbox import world as world_module
from sandbox.server import Sandbox
from tests.ingestion.test_kill_recovery import kill_trials


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--seed", type=int, default=50)
    args = parser.parse_args()
    world = world_module.generate(seed=args.seed, contacts=args.contacts, anchor=today_anchor())
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, Sandbox(world) as sandbox:
        outcomes = kill_trials(Path(tmp) / "home", sandbox, args.trials, seed=args.seed)
    killed = sum("killed" in o for o in outcomes)
    print(
        f"kill -9 soak: {args.trials} trials, {killed} killed mid-run, all re-runs equal the world "
        f"(no missing, no duplicate key) in {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
