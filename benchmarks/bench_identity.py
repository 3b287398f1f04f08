"""Measure identity resolution against the sandbox ground truth at noise 0, 1 and 2.

For each noise level: generate a world, serve it, load CRM, billing and scheduling into a
fresh warehouse, build the identity models with dbt, and score pairs of records that share a
customer_id against pairs that share a person_id (precision, recall), plus the build time.

python benchmarks/bench_identity.py --contacts 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb

from ingestion.pipeline import run_system
from ingestion.warehouse import Paths
from orchestration.dbt import run_dbt
from orchestration.sandbox_runtime import patched_env, source_env, today_anchor
from sandbox import scoring
from sandbox import world as world_module
from sandbox.server import Sandbox
from sandbox.store import World

IDENTITY_SYSTEMS = ("crm", "billing", "scheduling")
IDENTITY_SELECTOR = "+int_identity__review"


@dataclass
class Score:
    noise: float
    records: int
    customers: int
    persons: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    review_links: int
    load_seconds: float
    build_seconds: float
    identity_seconds: float

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0


def pair_counts(warehouse: Path, world: World) -> tuple[int, ...]:
    """records, customers, persons, true pairs, predicted pairs, correct pairs, review links."""
    score = scoring.identity_score(warehouse, world)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute(
            "select count(*), count(distinct customer_id), "
            "(select count(*) from intermediate.int_identity__review) "
            "from intermediate.int_identity__resolved"
        ).fetchone()
    assert row is not None
    records, customers, review = (int(value) for value in row)
    return records, customers, len(world.truth.persons), score.true, score.found, score.correct, review


def load(world: World, home: Path) -> float:
    started = time.perf_counter()
    with Sandbox(world) as sandbox, patched_env(source_env(sandbox.base_urls)):
        for system in IDENTITY_SYSTEMS:
            run_system(system, where=Paths(home=home))
    run_dbt(["seed"], where=Paths(home=home))
    return time.perf_counter() - started


def build(home: Path) -> tuple[float, float]:
    """Wall-clock seconds of the dbt run, and the identity models' own execution seconds."""
    started = time.perf_counter()
    results = run_dbt(["run", "--select", IDENTITY_SELECTOR], where=Paths(home=home))
    wall = time.perf_counter() - started
    identity = sum(
        r.get("execution_time", 0.0)
        for r in results.get("results", [])
        if r["unique_id"].startswith("model.trueup.int_identity__")
    )
    return wall, identity


def measure(noise: float, contacts: int, seed: int, root: Path) -> Score:
    home = root / f"noise-{noise:g}"
    world = world_module.generate(seed=seed, contacts=contacts, noise=noise, anchor=today_anchor())
    load_seconds = load(world, home)
    build_seconds, identity_seconds = build(home)
    records, customers, persons, true_pairs, predicted, correct, review = pair_counts(
        home / "warehouse.duckdb", world
    )
    return Score(
        noise,
        records,
        customers,
        persons,
        true_pairs,
        predicted,
        correct,
        review,
        load_seconds,
        build_seconds,
        identity_seconds,
    )


def report(score: Score) -> None:
    print(
        f"noise {score.noise:g}: precision {score.precision:.4f}  recall {score.recall:.4f}  "
        f"({score.correct_pairs:,} of {score.predicted_pairs:,} predicted pairs correct, "
        f"{score.true_pairs:,} true pairs; {score.records:,} records -> {score.customers:,} customers "
        f"for {score.persons:,} persons; {score.review_links:,} review links)",
        flush=True,
    )
    print(
        f"          identity models {score.identity_seconds:.2f} s, dbt run {score.build_seconds:.1f} s, "
        f"load {score.load_seconds:.1f} s",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise", type=float, action="append", help="noise level (repeatable); 0, 1, 2")
    parser.add_argument("--keep", type=Path, help="build the warehouses here instead of a temp dir")
    args = parser.parse_args(argv)
    levels = args.noise or [0.0, 1.0, 2.0]
    print(f"identity resolution: {args.contacts:,} contacts, seed {args.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-identity-") as temp:
        root = args.keep or Path(temp)
        for noise in levels:
            report(measure(noise, args.contacts, args.seed, root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
