"""Identity resolution side by side with Splink 4 on the same records: precision, recall and
wall time of each, on a world with every variety switch on at noise 2.

python benchmarks/bench_identity_splink.py --contacts 100000
python benchmarks/bench_identity_splink.py --contacts 1000000 --keep /tmp/ids   # reuse a load

trueup: the identity models of `dbt run` (their own execution time, and the run's wall time).
Splink: configured as its tutorials do it, on the staged records trueup itself starts from
(names, email, E.164 phone, company): `link_and_dedupe` over the CRM, billing and scheduling
records; comparisons of email, first and last name, phone and company; blocking on email,
phone, and last name with the first letter of the first name; the chance two random records
match from exact email matches; u by random sampling, m by expectation maximisation blocked on
email and on last name; clusters at a match probability of 0.9. Both are scored pairwise
against the world's truth (`sandbox/scoring.py`). `make bench` installs Splink (extra `bench`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
from bench_identity import load

from ingestion.warehouse import Paths
from orchestration.dbt import run_dbt
from orchestration.sandbox_runtime import today_anchor
from sandbox import scoring
from sandbox.variety import Variety
from sandbox.world import generate

RECORDS = """
select 'crm' as record_system, contact_id as record_id, email, phone_e164 as phone,
    lower(first_name) as first_name, lower(last_name) as last_name, lower(company_name) as company
from staging.stg_crm__contacts
union all
select 'billing', customer_id, email, phone_e164, lower(first_name), lower(last_name), null
from staging.stg_billing__customers
union all
select 'scheduling', invitee_uri, email, phone_e164, lower(first_name), lower(last_name),
    lower(company_answer)
from staging.stg_scheduling__invitees
"""


def trueup(home: Path) -> tuple[float, float]:
    """Wall seconds of the dbt run up to resolved identities, and the identity models' own."""
    started = time.perf_counter()
    results = run_dbt(["run", "--select", "+int_identity__resolved"], where=Paths(home=home))
    wall = time.perf_counter() - started
    own = sum(
        r.get("execution_time", 0.0)
        for r in results.get("results", [])
        if r["unique_id"].startswith("model.trueup.int_identity__")
    )
    return wall, own


def splink(warehouse: Path) -> tuple[Any, float]:
    """Splink's clusters (a pandas frame of record_system, record_id, cluster_id) and its seconds."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    with duckdb.connect(str(warehouse), read_only=True) as con:
        records = con.execute(RECORDS).df()
    records["unique_id"] = records["record_system"] + ":" + records["record_id"]
    started = time.perf_counter()
    settings = SettingsCreator(
        link_type="dedupe_only",  # one table of every system's records: links within and across
        comparisons=[
            cl.EmailComparison("email"),
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.ExactMatch("phone"),
            cl.JaroWinklerAtThresholds("company"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("phone"),
            block_on("last_name", "substr(first_name, 1, 1)"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(records, settings, db_api=DuckDBAPI())
    linker.training.estimate_probability_two_random_records_match([block_on("email")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=2_000_000)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("last_name"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.9
    ).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    clusters["record_system"] = clusters["unique_id"].str.split(":", n=1).str[0]
    clusters["record_id"] = clusters["unique_id"].str.split(":", n=1).str[1]
    return clusters[["record_system", "record_id", "cluster_id"]], seconds


def measure(contacts: int, seed: int, home: Path) -> None:
    world = generate(
        seed=seed, contacts=contacts, noise=2.0, anchor=today_anchor(), variety=Variety.everything()
    )
    loaded = home / "warehouse.duckdb"
    load_seconds = 0.0 if loaded.exists() else load(world, home)
    wall, own = trueup(home)
    ours = scoring.identity_score(loaded, world)
    clusters, splink_seconds = splink(loaded)
    with duckdb.connect() as con:
        con.register("splink_clusters", clusters)
        theirs = scoring.cluster_score(con, "splink_clusters", world, name="splink")
    print(f"{contacts:,} contacts, seed {seed} (load {load_seconds:.0f} s)", flush=True)
    print(
        f"  trueup  P {ours.precision:.4f}  R {ours.recall:.4f}  F1 {_f1(ours):.4f}  "
        f"identity models {own:.1f} s (dbt run {wall:.1f} s)",
        flush=True,
    )
    print(
        f"  splink  P {theirs.precision:.4f}  R {theirs.recall:.4f}  F1 {_f1(theirs):.4f}  "
        f"{splink_seconds:.1f} s (training, prediction, clustering)",
        flush=True,
    )


def _f1(score: scoring.Score) -> float:
    total = score.precision + score.recall
    return 2 * score.precision * score.recall / total if total else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, action="append")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the loaded warehouses here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-splink-") as temp:
        root = args.keep or Path(temp)
        for contacts in args.contacts or [100_000]:
            measure(contacts, args.seed, root / f"{contacts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
