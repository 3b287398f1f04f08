"""The published copy opens in a DuckDB 1.x client (as BI tools' drivers embed one), read-only,
with every mart and the table and column comments from the dbt descriptions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orchestration.publish import DEFAULT_SCHEMAS, publish
from tests.conftest import Warehouse

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / ".venv-duckdb1" / "bin" / "python"  # prepared by `make install`

READER = """
import json, sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
marts = [r[0] for r in con.execute(
    "select table_name from duckdb_tables() where schema_name = 'marts' order by 1").fetchall()]
rows = {t: con.execute(f'select count(*) from marts."{t}"').fetchall()[0][0] for t in marts}
tables = dict(con.execute(
    "select table_name, comment from duckdb_tables() where schema_name = 'marts'").fetchall())
columns = con.execute(
    "select table_name, count(*) filter (where comment is not null and comment != ''), count(*) "
    "from duckdb_columns() where schema_name = 'marts' group by 1").fetchall()
schemas = sorted({r[0] for r in con.execute("select schema_name from duckdb_tables()").fetchall()})
findings = con.execute("select count(*) from reconciliation.findings").fetchall()[0][0]
print(json.dumps({"version": duckdb.__version__, "rows": rows, "tables": tables,
                  "columns": {t: [c, n] for t, c, n in columns}, "schemas": schemas, "findings": findings}))
"""


@pytest.fixture(scope="module")
def client() -> Path:
    if not CLIENT.exists():
        pytest.skip(
            f"no DuckDB 1.x client at {CLIENT.parent.parent} (`make install` prepares it; it needs PyPI)"
        )
    return CLIENT


def test_a_duckdb_1x_client_reads_every_mart_and_its_comments(built_warehouse: Warehouse, client, tmp_path):
    copy = built_warehouse.copy_to(tmp_path / "home")  # publish checkpoints: never the shared file
    result = publish(copy.paths, run_id="bi", job="test")
    out = subprocess.run(
        [str(client), "-c", READER, str(result.path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout)
    assert seen["version"].startswith("1.1")
    marts = {name.split(".", 1)[1]: rows for name, rows in result.tables.items() if name.startswith("marts.")}
    assert seen["rows"] == marts and len(marts) >= 10
    assert all(seen["tables"][t] for t in marts), f"marts without a table comment: {seen['tables']}"
    for table, (described, total) in seen["columns"].items():
        assert described > 0, f"marts.{table}: no column comment of {total}"
    assert seen["schemas"] == sorted({*DEFAULT_SCHEMAS, "_publication"})
    assert seen["findings"] > 0
