"""Identity resolution against the sandbox truth (pairwise precision and recall at the default
noise and at noise 2), customer_id stability, review links that never merge, and every
identity test seen failing on broken input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion.warehouse import Paths
from orchestration.dbt import DbtError, run_dbt
from sandbox import scoring
from tests.conftest import Warehouse, load_world

# a test finds the broken rows: "fail" at error severity, "warn" where drift only warns
FOUND_FAILURES = ("fail", "warn")

pytestmark = pytest.mark.slow

THRESHOLD = 0.9  # dbt_project.yml var identity_confidence_threshold
MIN_PRECISION = 0.99
MIN_RECALL = 0.97
IDENTITY_SELECTOR = "+int_identity__review"
# the files whose dbt tests this module must see failing on broken input
OWN_TEST_FILES = ("models/intermediate/", "seeds/_identity_seeds.yml", "tests/identity/")


def query(file: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    with duckdb.connect(str(file), read_only=True) as con:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# -- precision and recall against the truth -----------------------------------------------------


def test_every_source_record_is_resolved_once(built_warehouse: Warehouse) -> None:
    truth = {(system, record_id) for system, record_id, _ in scoring.truth_records(built_warehouse.world)}
    rows = query(
        built_warehouse.file, "select record_system, record_id from intermediate.int_identity__resolved"
    )
    resolved = [(r["record_system"], r["record_id"]) for r in rows]
    assert len(resolved) == len(set(resolved))
    assert set(resolved) == truth


def test_precision_and_recall_at_default_noise(built_warehouse: Warehouse) -> None:
    score = scoring.identity_score(built_warehouse.file, built_warehouse.world)
    assert score.true > 1000
    assert score.precision >= MIN_PRECISION, score
    assert score.recall >= MIN_RECALL, score


@pytest.fixture(scope="module")
def noisy_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The default world at noise 2 (twice the typos, nicknames, other addresses), identity built."""
    home = tmp_path_factory.mktemp("noise2")
    loaded = load_world(home, ("crm", "billing", "scheduling"), noise=2.0)
    run_dbt(["run", "--select", IDENTITY_SELECTOR], where=Paths(home=home))
    return loaded


def test_precision_and_recall_at_noise_2(noisy_warehouse: Warehouse) -> None:
    score = scoring.identity_score(noisy_warehouse.file, noisy_warehouse.world)
    assert score.precision >= MIN_PRECISION, score
    assert score.recall >= MIN_RECALL, score


def test_fuzzy_evidence_is_needed_and_used(noisy_warehouse: Warehouse) -> None:
    methods = {
        r["match_method"]
        for r in query(
            noisy_warehouse.file, "select distinct match_method from intermediate.int_identity__links"
        )
    }
    assert {"exact_email", "crm_key", "normalized_email", "exact_phone", "name_company"} <= methods


def test_crm_duplicates_are_one_customer(built_warehouse: Warehouse) -> None:
    pairs = [a.keys for a in built_warehouse.world.truth.of_kind("crm_duplicate")]
    assert pairs
    rows = query(
        built_warehouse.file,
        "select record_id, customer_id, is_crm_duplicate from intermediate.int_identity__resolved "
        "where record_system = 'crm'",
    )
    customer = {r["record_id"]: r["customer_id"] for r in rows}
    duplicate = {r["record_id"]: r["is_crm_duplicate"] for r in rows}
    for keys in pairs:
        assert customer[keys["contact_id"]] == customer[keys["duplicate_contact_id"]], keys
        assert not duplicate[keys["contact_id"]] and duplicate[keys["duplicate_contact_id"]], keys


def test_customer_id_derives_from_smallest_crm_contact(built_warehouse: Warehouse) -> None:
    rows = query(
        built_warehouse.file,
        """
        select customer_id, md5('crm:' || arg_min(record_id, lpad(record_id, 40, '0'))) as expected
        from intermediate.int_identity__resolved
        where record_system = 'crm'
        group by customer_id
        """,
    )
    assert rows
    assert all(r["customer_id"] == "cust_" + r["expected"] for r in rows)


def test_every_link_keeps_evidence_and_confidence(built_warehouse: Warehouse) -> None:
    rows = query(
        built_warehouse.file,
        "select count(*) as n, count(*) filter (where evidence is null or evidence = '' "
        "or confidence is null or confidence < 0 or confidence > 1) as bad "
        "from intermediate.int_identity__links",
    )
    assert rows[0]["n"] > 1000 and rows[0]["bad"] == 0


# -- stability and review: grow a built warehouse and rebuild identity --------------------------

NEW_CONTACT_ID = "99999001"  # CRM ids come from one counter: a new record has a larger id
NEW_DUPLICATE_ID = "99999002"
SHARED_PHONE_ID = "99999003"
TYPO_NAME_ID = "99999004"


def _literal(value: str | None) -> str:
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


def _copy_contact(source_id: str, new_id: str, **properties: str | None) -> str:
    """SQL copying a raw CRM contact under a new id with some properties replaced."""
    replaced = [
        f"'{new_id}' as id",
        f"'{new_id}' as properties__hs_object_id",
        f"'grown-{new_id}' as _dlt_id",
    ]
    replaced += [f"{_literal(value)} as properties__{name}" for name, value in properties.items()]
    return (
        f"insert into raw_crm.contacts select * replace ({', '.join(replaced)}) "
        f"from raw_crm.contacts where id = '{source_id}'"
    )


# a record for someone else carries none of the copied contact's ad attribution
NO_ATTRIBUTION = {
    "hs_google_click_id": None,
    "hs_facebook_click_id": None,
    "hs_analytics_source_data_2": None,
}


@dataclass
class Grown:
    warehouse: Warehouse
    before: dict[str, str]  # record_key -> customer_id before the new records
    contact: dict[str, Any]  # the existing contact the new records copy
    other: dict[str, Any]  # another existing contact, whose phone the shared-phone record uses


@pytest.fixture(scope="module")
def grown(built_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Grown:
    warehouse = built_warehouse.copy_to(tmp_path_factory.mktemp("grown"))
    before = {
        r["record_key"]: r["customer_id"]
        for r in query(
            warehouse.file, "select record_key, customer_id from intermediate.int_identity__resolved"
        )
    }
    contacts = query(
        warehouse.file,
        """
        select contact_id, email, first_name, last_name, phone_e164, company_name
        from staging.stg_crm__contacts
        where phone_e164 is not null and company_name is not null and length(first_name) >= 5
            and length(last_name) >= 5 and email like '%@%'
            and substr(first_name, 2, 1) != substr(first_name, 3, 1)
        order by contact_id
        limit 2
        """,
    )
    contact, other = contacts
    first, last = contact["first_name"], contact["last_name"]
    with duckdb.connect(str(warehouse.file)) as con:
        # a brand-new person
        con.execute(
            _copy_contact(
                contact["contact_id"],
                NEW_CONTACT_ID,
                email="nobody.known@example.org",
                firstname="Zebedee",
                lastname="Quillfeather",
                phone=None,
                company="Nowhere Particular Ltd",
                **NO_ATTRIBUTION,
            )
        )
        # the same person imported again (same email, other case): a CRM duplicate
        con.execute(_copy_contact(contact["contact_id"], NEW_DUPLICATE_ID, email=contact["email"].upper()))
        # someone else entirely who shares the other contact's phone (an office line)
        con.execute(
            _copy_contact(
                other["contact_id"],
                SHARED_PHONE_ID,
                email="front.desk@example.net",
                firstname="Front",
                lastname="Desk",
                company="Unrelated Holdings",
                **NO_ATTRIBUTION,
            )
        )
        # a similar name at the same company, both names one edit away, another mailbox, no phone
        con.execute(
            _copy_contact(
                contact["contact_id"],
                TYPO_NAME_ID,
                email="someone.else@example.com",
                firstname=first[0] + first[2] + first[1] + first[3:],
                lastname=last[:-1],
                phone=None,
                **NO_ATTRIBUTION,
            )
        )
    run_dbt(["run", "--select", IDENTITY_SELECTOR], where=warehouse.paths)
    return Grown(warehouse, before, contact, other)


def _resolved(grown: Grown) -> dict[str, dict[str, Any]]:
    rows = query(grown.warehouse.file, "select * from intermediate.int_identity__resolved")
    return {r["record_key"]: r for r in rows}


def test_existing_customer_ids_do_not_change(grown: Grown) -> None:
    after = _resolved(grown)
    changed = {
        key: (old, after[key]["customer_id"])
        for key, old in grown.before.items()
        if after[key]["customer_id"] != old
    }
    assert not changed
    assert len(after) == len(grown.before) + 4


def test_new_records_join_or_start_customers(grown: Grown) -> None:
    after = _resolved(grown)
    existing = after[f"crm:{grown.contact['contact_id']}"]
    assert after[f"crm:{NEW_DUPLICATE_ID}"]["customer_id"] == existing["customer_id"]
    assert after[f"crm:{NEW_DUPLICATE_ID}"]["is_crm_duplicate"]
    assert not existing["is_crm_duplicate"]
    new = after[f"crm:{NEW_CONTACT_ID}"]
    assert new["customer_id"] not in set(grown.before.values())
    assert new["match_method"] == "unmatched" and new["match_confidence"] == 1.0 and not new["needs_review"]


@pytest.mark.parametrize(
    ("record_id", "partner", "method"),
    [(SHARED_PHONE_ID, "other", "exact_phone"), (TYPO_NAME_ID, "contact", "name_company")],
)
def test_low_confidence_links_go_to_review_and_do_not_merge(
    grown: Grown, record_id: str, partner: str, method: str
) -> None:
    partner_id = getattr(grown, partner)["contact_id"]
    after = _resolved(grown)
    review = query(
        grown.warehouse.file,
        "select * from intermediate.int_identity__review "
        "where left_record_id in (?, ?) and right_record_id in (?, ?)",
        [record_id, partner_id, record_id, partner_id],
    )
    assert len(review) == 1
    assert review[0]["match_method"] == method and review[0]["confidence"] < THRESHOLD
    assert review[0]["review_reason"] and not review[0]["is_merged_by_other_links"]
    record, partner_record = after[f"crm:{record_id}"], after[f"crm:{partner_id}"]
    assert record["customer_id"] != partner_record["customer_id"]
    assert record["needs_review"] and record["match_confidence"] < THRESHOLD
    assert record["customer_id"] == "cust_" + _md5(f"crm:{record_id}")  # keeps its own id


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


# -- every identity test fails on broken input --------------------------------------------------


def own_tests(manifest_file: Path, prefixes: tuple[str, ...] = OWN_TEST_FILES) -> dict[str, dict[str, Any]]:
    """The dbt tests defined in files under `prefixes` (paths inside dbt_project/)."""
    manifest = json.loads(manifest_file.read_text())
    return {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "test" and node["original_file_path"].startswith(prefixes)
    }


def generic_breaks(manifest_file: Path, tests: dict[str, dict[str, Any]]) -> list[str]:
    """Per tested relation: two rows sharing a bogus value (named after the relation, so no
    other relation holds it) in every column under unique, accepted_values or relationships,
    and one row of nulls for not_null."""
    nodes = json.loads(manifest_file.read_text())["nodes"]
    bogus: dict[str, set[str]] = {}  # relation -> text columns given a bogus value
    for node in tests.values():
        meta = node.get("test_metadata") or {}
        if meta.get("name") in ("unique", "not_null", "accepted_values", "relationships"):
            target = nodes[node["attached_node"]]
            columns = bogus.setdefault(f"{target['schema']}.{target['alias'] or target['name']}", set())
            if meta["name"] != "not_null":
                columns.add(meta["kwargs"]["column_name"])
    statements = []
    for relation, names in sorted(bogus.items()):
        if names:
            row = ", ".join(f"'broken-{relation}' as {name}" for name in sorted(names))
            statements.append(f"insert into {relation} by name select {row} union all select {row}")
        statements.append(f"insert into {relation} default values")
    return statements


SINGULAR_BREAKS = [
    # an accepted link between two customers; a CRM-keyed billing customer split off
    """update intermediate.int_identity__resolved set customer_id = 'cust_split'
       where record_key = (
           select min(left_key) from intermediate.int_identity__links
           where match_method = 'crm_key' and left_system = 'billing'
       )""",
    # a second anchor in a customer, joined by no accepted link
    """insert into intermediate.int_identity__resolved by name
       select 'crm:ghost' as record_key, 'crm' as record_system, 'ghost' as record_id,
           customer_id, true as is_anchor, 2 as cluster_record_count
       from intermediate.int_identity__resolved
       where is_anchor and record_system = 'crm' and cluster_record_count > 1
       limit 1""",
    # a confidence above 1
    """update intermediate.int_identity__links set confidence = 1.5
       where link_id = (select min(link_id) from intermediate.int_identity__links)""",
    # a review row at the threshold
    """insert into intermediate.int_identity__review by name
       select 'broken-review' as review_id, 0.95 as confidence, 'x' as review_reason""",
    # paid leads that the CRM does not have
    """update intermediate.int_crm__paid_leads_by_campaign_day set crm_leads = crm_leads + 1""",
]


def test_every_identity_test_fails_on_broken_input(
    built_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> None:
    warehouse = built_warehouse.copy_to(tmp_path_factory.mktemp("broken-identity"))
    manifest_file = built_warehouse.home / "dbt" / "target" / "manifest.json"  # from its build
    tests = own_tests(manifest_file)
    assert len(tests) > 40
    with duckdb.connect(str(warehouse.file)) as con:
        for statement in SINGULAR_BREAKS + generic_breaks(manifest_file, tests):
            con.execute(statement)
    with pytest.raises(DbtError) as failure:
        run_dbt(
            [
                "test",
                "--select",
                "intermediate",
                "nicknames",
                "free_email_domains",
                "role_mailboxes",
                "path:tests/identity",
            ],
            where=warehouse.paths,
        )
    statuses = {r["unique_id"]: r["status"] for r in failure.value.results.get("results", [])}
    not_failing = {
        uid: statuses.get(uid, "not run") for uid in tests if statuses.get(uid) not in FOUND_FAILURES
    }
    assert not not_failing, f"tests that did not fail on broken input: {not_failing}"


def test_duplicate_raw_record_breaks_record_key_uniqueness(
    built_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> None:
    warehouse = built_warehouse.copy_to(tmp_path_factory.mktemp("duplicate-raw"))
    with duckdb.connect(str(warehouse.file)) as con:
        con.execute(
            "insert into raw_billing.customers select * replace ('dup-' || _dlt_id as _dlt_id) "
            "from raw_billing.customers limit 1"
        )
    run_dbt(["run", "--select", "stg_billing__customers"], where=warehouse.paths)  # a table
    with pytest.raises(DbtError, match="unique_int_identity__records_record_key"):
        run_dbt(["build", "--select", "int_identity__records"], where=warehouse.paths)
