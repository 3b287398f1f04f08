"""Time the sandbox world generator and report records per collection and peak memory.

python benchmarks/bench_world.py --contacts 1000000
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox import world as world_module


def peak_rss_mb() -> float:
    # ru_maxrss is kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--advance", type=int, default=1, help="days to advance after generating")
    parser.add_argument("--truth-dir", type=Path, help="also write the ground truth here and time it")
    parser.add_argument("--quiet", action="store_true", help="no per-phase progress lines")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    progress = None if args.quiet else (lambda line: print(f"  {line}", flush=True))
    print(f"generating {args.contacts:,} contacts (seed {args.seed}, noise {args.noise})", flush=True)
    world = world_module.generate(seed=args.seed, contacts=args.contacts, noise=args.noise, progress=progress)
    generated = time.perf_counter() - start
    print(f"generate: {generated:.2f} s, peak RSS {peak_rss_mb():,.0f} MB")

    print("records per collection:")
    for name, count in world_module.record_counts(world).items():
        print(f"  {name:<26} {count:>12,}")
    summary = world_module.truth_summary(world)
    print(f"persons: {summary['persons']:,}  anomalies: {summary['anomalies']:,}")
    for kind, counts in summary["kinds"].items():
        print(f"  {kind:<32} {counts['active']:>8,}")

    if args.advance:
        start = time.perf_counter()
        world_module.advance(world, args.advance)
        print(f"advance {args.advance} day(s): {time.perf_counter() - start:.2f} s")
    if args.truth_dir:
        start = time.perf_counter()
        world_module.write_truth(world, args.truth_dir)
        print(f"write_truth: {time.perf_counter() - start:.2f} s")
    print(f"peak RSS: {peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
