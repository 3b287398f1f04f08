"""The fault suite (sandbox/fault_suite.py) on a larger world: every case, then the totals
(cases, record versions checked, lost, doubled; the goal is 0 and 0).

    python benchmarks/bench_faults.py --contacts 2000
    python benchmarks/bench_faults.py --contacts 300 --case truncated_page --case future_stamp
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from sandbox.fault_suite import CASES, run_case


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="only these cases")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    totals = {"cases": 0, "checked": 0, "lost": 0, "doubled": 0, "failed": 0}
    print(f"{'case':<34} {'seconds':>8} {'versions':>9} {'lost':>5} {'doubled':>8}  notes")
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as work:
        for name in args.case or CASES:
            try:
                outcome = run_case(CASES[name], contacts=args.contacts, seed=args.seed, workdir=Path(work))
            except AssertionError as exc:  # the faulty phase did not behave: count it, go on
                print(f"{name:<34} FAILED: {str(exc)[:200]}")
                totals["failed"] += 1
                continue
            parity = outcome.parity
            totals["cases"] += 1
            totals["checked"] += parity.checked
            totals["lost"] += parity.lost
            totals["doubled"] += parity.doubled
            print(
                f"{name:<34} {outcome.seconds:>8.1f} {parity.checked:>9,} {parity.lost:>5,} "
                f"{parity.doubled:>8,}  {'; '.join(outcome.notes)}"
            )
    print(
        f"\ntotals: {totals['cases']} cases, {totals['checked']:,} record versions checked, "
        f"{totals['lost']:,} lost, {totals['doubled']:,} doubled, {totals['failed']} failed"
    )
    return 1 if totals["lost"] or totals["doubled"] or totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
