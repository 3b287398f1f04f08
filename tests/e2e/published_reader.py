"""A BI-tool stand-in: reads the published copy in a loop until told to stop.

Every read opens the copy read-only, takes what its `_publication` stamp says it holds
and checks each table has exactly that many rows (a half-copied or half-built file would
not). Writes a JSON summary: the runs it saw, read count, errors, inconsistencies.

    python -m tests.e2e.published_reader <published.duckdb> <stop-file> <summary.json>
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb

REQUIRED = ("reconciliation.findings", "marts.dim_customers", "staging.stg_crm__contacts")


def read_once(path: Path) -> tuple[str, list[str]]:
    """The run the copy came from, and whatever in it is inconsistent."""
    problems = []
    with duckdb.connect(str(path), read_only=True) as con:
        [(run_id,)] = con.execute("select run_id from _publication.run").fetchall()
        stamped = con.execute('select table_schema, table_name, "rows" from _publication.tables').fetchall()
        for schema, table, rows in stamped:
            [(actual,)] = con.execute(f'select count(*) from "{schema}"."{table}"').fetchall()
            if actual != rows:
                problems.append(f"{schema}.{table}: {actual} rows, stamped {rows}")
        present = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        problems += [f"{name} missing" for name in REQUIRED if name not in present]
    return str(run_id), problems


def main(published: Path, stop_file: Path, summary: Path) -> int:
    runs: Counter[str] = Counter()
    errors: list[str] = []
    problems: list[str] = []
    while True:
        stopping = stop_file.exists()  # one more read after the stop signal: the final copy
        if published.exists():
            try:
                run_id, found = read_once(published)
                runs[run_id] += 1
                problems += found
            except Exception as exc:  # a reader must never fail: record it for the test
                errors.append(f"{type(exc).__name__}: {exc}")
        if stopping:
            break
        time.sleep(0.2)
    summary.write_text(json.dumps({"runs": runs, "errors": errors[:20], "problems": problems[:20]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
