"""What the report's pieces cost: the charts (altair + vl-convert, imported lazily), the published
copy (the analysts' schemas rewritten in storage v1.0.0 vs a plain file copy), and collecting the
report from the copy.

python benchmarks/bench_report.py --warehouse .trueup/warehouse.duckdb   # after `make demo`
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHARTS = """
import time
started = time.perf_counter()
from datetime import UTC, datetime, timedelta
from orchestration import charts
from orchestration.report import TrendPoint
start = datetime(2026, 11, 1, 2, tzinfo=UTC)
points = [TrendPoint(start + timedelta(days=i), 80 + i, 5, 3) for i in range(14)]
first = time.perf_counter()
charts.trend_svg(points)
charts.funnel_svg([("Leads", 1980), ("Opportunities", 693), ("Won deals", 283), ("New customers", 260)])
drawn = time.perf_counter()
for _ in range(5):
    charts.trend_svg(points)
    charts.funnel_svg([("Leads", 1980), ("Opportunities", 693)])
again = (time.perf_counter() - drawn) / 5
print(f"{first - started:.2f} {drawn - first:.2f} {again:.3f}")
"""


def charts() -> None:
    out = subprocess.run([sys.executable, "-c", CHARTS], cwd=ROOT, capture_output=True, text=True, check=True)
    imports, first, again = (float(x) for x in out.stdout.split())
    print(
        f"charts: import {imports:.2f}s, first two charts {first:.2f}s (altair, vl-convert start), "
        f"then {again * 1000:.0f} ms per pair"
    )


def publish(warehouse: Path) -> None:
    from ingestion.warehouse import Paths
    from orchestration.publish import publish as publish_copy

    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        shutil.copyfile(warehouse, home / "warehouse.duckdb")
        started = time.perf_counter()
        shutil.copyfile(home / "warehouse.duckdb", home / "plain.duckdb")
        plain = time.perf_counter() - started
        result = publish_copy(Paths(home=home), run_id="bench", job="bench")
        size = (home / "warehouse.duckdb").stat().st_size
        print(
            f"publish: {result.seconds:.2f}s for {len(result.tables)} tables, {result.bytes / 1e6:.1f} MB "
            f"(storage v1.0.0, analysts' schemas) vs a plain copy of the {size / 1e6:.1f} MB file "
            f"in {plain:.2f}s"
        )
        from orchestration import report

        started = time.perf_counter()
        collected = report.collect(result.path, now=datetime.now(UTC) + timedelta(seconds=1))
        report.to_text(collected)
        print(f"report: collect and render text {time.perf_counter() - started:.2f}s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warehouse", type=Path, help="a built warehouse (default: none; charts only)")
    args = parser.parse_args()
    charts()
    if args.warehouse:
        publish(args.warehouse)
    return 0


if __name__ == "__main__":
    sys.exit(main())
