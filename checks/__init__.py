"""Parity and quality suites over the warehouse.

`suites` declares every check (completeness, parity, validity, uniqueness, freshness, drift
budget, identity quality) with its SQL (`sql`: one SQL for DuckDB and PostgreSQL) and limits;
`runner.run_checks` measures them in the warehouse (a DuckDB file read-only, or PostgreSQL),
lets Great Expectations judge the numbers (`judge`, the only module importing it, lazily) and
returns plain `results.CheckResult`s; `runner.store_results` appends them to
`checks.check_results` in the same warehouse. `cli` is `trueup check`; `orchestration.checks`
shows the same checks in Dagster.
"""
