"""Right answers on worlds that look like real customers: per-rule precision and recall of the
findings and pairwise precision and recall of identity, per sandbox variety switch and seed.

python benchmarks/bench_accuracy.py                      # every switch alone and all together, 3 seeds
python benchmarks/bench_accuracy.py --switch all --seed 7 --contacts 2000 --noise 2
python benchmarks/bench_accuracy.py --keep /tmp/acc      # keep the warehouses (reused when present)

Each case generates a world, serves it on loopback, ingests it, builds the models up to the
findings and scores them against the world's truth (`sandbox/scoring.py`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingestion.pipeline import SYSTEMS, run_systems
from ingestion.warehouse import Paths
from orchestration.dbt import run_dbt
from orchestration.sandbox_runtime import embedded_sandbox
from sandbox import scoring
from sandbox.variety import SWITCHES, Variety
from sandbox.world import KINDS


@dataclass
class Case:
    switch: str
    seed: int
    contacts: int
    noise: float
    rules: dict[str, scoring.Score]
    identity: scoring.Score
    seconds: float


def variety_of(switch: str) -> Variety:
    if switch == "none":
        return Variety()
    if switch == "all":
        return Variety.everything()
    return Variety.only(switch)


def run_case(switch: str, seed: int, contacts: int, noise: float, home: Path) -> Case:
    started = time.perf_counter()
    variety = variety_of(switch)
    where = Paths(home=home)
    generate: dict[str, Any] = {"noise": noise, "variety": variety}
    with embedded_sandbox(contacts=contacts, seed=seed, **generate) as sandbox:
        run_systems(SYSTEMS, where=where)
    world = sandbox.world
    run_dbt(["seed"], where=where)
    run_dbt(["run", "--select", "+reconciliation"], where=where)
    warehouse = home / "warehouse.duckdb"
    rules = scoring.rule_scores(warehouse, world, list(KINDS))
    identity = scoring.identity_score(warehouse, world)
    return Case(switch, seed, contacts, noise, rules, identity, time.perf_counter() - started)


def report(case: Case, verbose: bool) -> None:
    worst = min(case.rules.values(), key=lambda s: (s.precision * s.recall, s.name))
    inexact = [s for s in case.rules.values() if not s.exact]
    print(
        f"{case.switch:>22} seed {case.seed:>3} noise {case.noise:g}: "
        f"rules exact {len(case.rules) - len(inexact)}/{len(case.rules)} "
        f"(worst {worst.name} P {worst.precision:.3f} R {worst.recall:.3f}); "
        f"identity P {case.identity.precision:.4f} R {case.identity.recall:.4f} "
        f"[{case.seconds:.0f} s]",
        flush=True,
    )
    if verbose:
        for score in inexact:
            print(f"    {score.line()}")
            for item in score.extra[:5]:
                print(f"      extra  {item}")
            for item in score.missed[:5]:
                print(f"      missed {item}")
        if case.identity.precision < 1 or case.identity.recall < 1:
            print(f"    {case.identity.line()}")
            for item in case.identity.extra[:8]:
                print(f"      extra  {item}")
            for item in case.identity.missed[:8]:
                print(f"      missed {item}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--switch", action="append", help=f"none, all or one of {', '.join(SWITCHES)}")
    parser.add_argument("--seed", type=int, action="append")
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=2.0)
    parser.add_argument("--keep", type=Path, help="build the warehouses here instead of a temp dir")
    parser.add_argument("-v", "--verbose", action="store_true", help="list what each inexact score missed")
    parser.add_argument("--quick", action="store_true", help="one seed, all switches together")
    args = parser.parse_args(argv)
    switches = args.switch or (["all"] if args.quick else ["none", *SWITCHES, "all"])
    seeds = args.seed or ([7] if args.quick else [7, 11, 23])
    print(f"accuracy: {args.contacts:,} contacts, noise {args.noise:g}", flush=True)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as temp:
        root = args.keep or Path(temp)
        for switch in switches:
            for seed in seeds:
                case = run_case(switch, seed, args.contacts, args.noise, root / f"{switch}-{seed}")
                report(case, args.verbose)
                failures += sum(not s.exact for s in case.rules.values())
    print(f"inexact rule scores: {failures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
