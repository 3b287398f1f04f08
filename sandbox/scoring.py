"""How right a built warehouse is about a sandbox world: per-rule precision and recall of the
findings against the injected anomalies, and pairwise precision and recall of identity
resolution against who is who. The tests and `benchmarks/bench_accuracy.py` both score here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from sandbox.store import World


@dataclass(frozen=True)
class Score:
    """Found against true: a rule's findings, or identity's same-person record pairs."""

    name: str
    true: int
    found: int
    correct: int
    missed: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def precision(self) -> float:
        return self.correct / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.true if self.true else 1.0

    @property
    def exact(self) -> bool:
        return self.correct == self.true == self.found

    def line(self) -> str:
        return (
            f"{self.name}: precision {self.precision:.4f} recall {self.recall:.4f} "
            f"({self.correct} of {self.found} found correct, {self.true} true)"
        )


def canonical(keys: dict[str, Any] | str) -> str:
    """One text form of a record_keys object, whatever its key order."""
    value = json.loads(keys) if isinstance(keys, str) else keys
    return json.dumps({k: str(v) for k, v in value.items()}, sort_keys=True)


def rule_scores(warehouse: Path, world: World, rules: list[str]) -> dict[str, Score]:
    """Each rule's current findings against the world's active anomalies of that kind."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select rule, record_keys from reconciliation.findings_current").fetchall()
    found: dict[str, set[str]] = {rule: set() for rule in rules}
    for rule, keys in rows:
        found.setdefault(rule, set()).add(canonical(keys))
    scores = {}
    for rule in rules:
        truth = {canonical(a.keys) for a in world.truth.of_kind(rule)}
        got = found.get(rule, set())
        scores[rule] = Score(
            rule,
            len(truth),
            len(got),
            len(got & truth),
            missed=tuple(sorted(truth - got)),
            extra=tuple(sorted(got - truth)),
        )
    return scores


def truth_records(world: World) -> list[tuple[str, str, str]]:
    """(record_system, record_id, person_id) for every record the ground truth knows."""
    rows: list[tuple[str, str, str]] = []
    for person in world.truth.persons:
        rows += [("crm", record_id, person.person_id) for record_id in person.crm_contact_ids]
        rows += [("billing", record_id, person.person_id) for record_id in person.billing_customer_ids]
        rows += [("scheduling", uri, person.person_id) for uri in person.scheduling_invitee_uris]
    return rows


_PAIRS = """
with joined as (
    select clusters.cluster_id, truth.person_id, truth.record_system || ':' || truth.record_id as record
    from {clusters} as clusters
    inner join truth using (record_system, record_id)
),
true_pairs as (
    select a.record as a, b.record as b from joined a join joined b
    on a.person_id = b.person_id and a.record < b.record
),
found_pairs as (
    select a.record as a, b.record as b from joined a join joined b
    on a.cluster_id = b.cluster_id and a.record < b.record
)
select
    (select count(*) from true_pairs),
    (select count(*) from found_pairs),
    (select count(*) from true_pairs natural join found_pairs),
    (select list(a || ' ~ ' || b order by a, b) from
        (select * from true_pairs except select * from found_pairs limit 50)),
    (select list(a || ' ~ ' || b order by a, b) from
        (select * from found_pairs except select * from true_pairs limit 50))
"""


def identity_score(warehouse: Path, world: World) -> Score:
    """Same-person record pairs: resolved customers against the truth's persons."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        resolved = "intermediate.int_identity__resolved"
        clusters = f"(select record_system, record_id, customer_id as cluster_id from {resolved})"
        return cluster_score(con, clusters, world)


def cluster_score(
    con: duckdb.DuckDBPyConnection, clusters: str, world: World, name: str = "identity"
) -> Score:
    """Same-person record pairs of any clustering (`clusters`: a relation of record_system,
    record_id and cluster_id) against the truth's persons."""
    con.execute(
        "create or replace temp table truth (record_system varchar, record_id varchar, person_id varchar)"
    )
    con.executemany("insert into truth values (?, ?, ?)", truth_records(world))
    row = con.execute(_PAIRS.format(clusters=clusters)).fetchone()
    assert row is not None
    true, found, correct, missed, extra = row
    return Score(name, int(true), int(found), int(correct), tuple(missed or ()), tuple(extra or ()))
