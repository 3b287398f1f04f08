"""Run every benchmark in turn and print its figures (`make bench`). Never part of `make test`.

python benchmarks/run_all.py            # the scales the figures are quoted at (takes long)
python benchmarks/run_all.py --quick    # small scales, a few minutes, to see that all run
python benchmarks/run_all.py --only ingest checks
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (arguments at full scale, arguments at quick scale)
BENCHMARKS: dict[str, list[tuple[list[str], list[str]]]] = {
    "world": [
        (["bench_world.py", "--contacts", "1000000", "--quiet"], ["bench_world.py", "--contacts", "20000"])
    ],
    "sandbox": [
        (["bench_sandbox_read.py", "--contacts", "1000000"], ["bench_sandbox_read.py", "--contacts", "20000"])
    ],
    "transport": [
        (["bench_transport.py", "--requests", "20000"], ["bench_transport.py", "--requests", "2000"])
    ],
    "ingest": [
        (["bench_ingest.py", "--contacts", "1000000"], ["bench_ingest.py", "--contacts", "5000"]),
        (
            ["bench_ingest.py", "--throttled", "--contacts", "30000"],
            ["bench_ingest.py", "--throttled", "--contacts", "3000"],
        ),
    ],
    "kill": [(["bench_kill.py", "--trials", "50"], ["bench_kill.py", "--trials", "3"])],
    "faults": [(["bench_faults.py", "--contacts", "2000"], ["bench_faults.py", "--contacts", "300"])],
    "audit": [(["bench_audit.py", "--contacts", "100000"], ["bench_audit.py", "--contacts", "3000"])],
    "identity": [
        (
            ["bench_identity.py", "--noise", "0", "--noise", "1", "--noise", "2"],
            ["bench_identity.py", "--noise", "1"],
        )
    ],
    "accuracy": [(["bench_accuracy.py", "--contacts", "2000"], ["bench_accuracy.py", "--quick"])],
    "identity_vs_splink": [
        (
            ["bench_identity_splink.py", "--contacts", "100000", "--contacts", "1000000"],
            ["bench_identity_splink.py", "--contacts", "2000"],
        )
    ],
    "dbt": [
        (
            ["bench_dbt.py", "--contacts", "100000", "--contacts", "1000000"],
            ["bench_dbt.py", "--contacts", "2000"],
        )
    ],
    "checks": [(["bench_checks.py", "--contacts", "1000000"], ["bench_checks.py", "--contacts", "5000"])],
    "webhooks": [
        (
            ["bench_webhooks.py", "--deliveries", "20000", "--changes", "20", "--contacts", "2000"],
            ["bench_webhooks.py", "--deliveries", "2000", "--changes", "4", "--contacts", "300"],
        )
    ],
    "report": [(["bench_report.py"], ["bench_report.py"])],
    "mapping": [(["bench_mapping.py", "--contacts", "100000"], ["bench_mapping.py", "--contacts", "3000"])],
    "reverse_etl": [
        (
            ["bench_reverse_etl.py", "--records", "100000", "--trials", "50"],
            ["bench_reverse_etl.py", "--records", "5000", "--trials", "3"],
        )
    ],
    "engines": [
        (
            ["bench_engines.py", "--contacts", "2000", "--contacts", "100000"],
            ["bench_engines.py", "--contacts", "500"],
        )
    ],
    "orchestration": [
        (["bench_orchestration.py", "--contacts", "100000"], ["bench_orchestration.py", "--contacts", "2000"])
    ],
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small scales")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    failed = []
    for name in args.only or BENCHMARKS:
        for full, quick in BENCHMARKS[name]:
            argv = quick if args.quick else full
            print(f"\n== {name}: python benchmarks/{' '.join(argv)}", flush=True)
            started = time.monotonic()
            code = subprocess.call([sys.executable, str(HERE / argv[0]), *argv[1:]])
            print(f"   ({time.monotonic() - started:.0f} s, exit {code})", flush=True)
            if code:
                failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
