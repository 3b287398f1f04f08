"""A business whose accounts are set up the way many real ones are (every account switch of
sandbox/WORLD.md on: custom properties, no Stripe metadata links, no CRM meetings, the current
Stripe version), run by configuration alone: a first load of every property, `trueup mapping
suggest --write`, the Stripe version its owner knows, then `trueup run nightly`; the rules find
that world's anomalies through the mapping."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion.pipeline import run_systems
from ingestion.tables import SYSTEMS
from ingestion.warehouse import Paths
from orchestration.cli import main, run_job
from orchestration.sandbox_runtime import embedded_sandbox
from sandbox.accounts import AccountSetup, mapping_for
from sandbox.store import World
from sandbox.world import KINDS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

CONTACTS = 600  # small: every anomaly kind is planted at least three times whatever the size
SEED = 7
SETUP = AccountSetup.every_switch()


@dataclass
class Night:
    home: Path
    config: dict[str, Any]  # .dlt/config.toml after `mapping suggest --write`
    suggested: str  # what suggest printed
    world: World
    found: dict[str, set[str]]  # rule -> canonical record keys of the current findings


def canonical(keys: Any) -> str:
    value = json.loads(keys) if isinstance(keys, str) else keys
    return json.dumps({k: str(v) for k, v in value.items()}, sort_keys=True)


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    root = tmp_path_factory.mktemp("accounts")
    home, project = root / "home", root / "project"
    (project / ".dlt").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRUEUP_HOME", str(home))
        env.setenv("DLT_PROJECT_DIR", str(project))
        for name in ("TRUEUP_WAREHOUSE", "DAGSTER_HOME", "TRUEUP_TIMEZONE"):
            env.delenv(name, raising=False)
        with embedded_sandbox(contacts=CONTACTS, seed=SEED, setup=SETUP) as sandbox:
            # a new user: trueup's defaults, every CRM property loaded once
            env.setenv("SOURCES__CRM__PROPERTIES", json.dumps({"contacts": "all", "deals": "all"}))
            run_systems(SYSTEMS, where=Paths(home=home))
            env.delenv("SOURCES__CRM__PROPERTIES")
            suggested = _suggest(home)
            config_file = project / ".dlt" / "config.toml"
            with config_file.open("a", encoding="utf-8") as out:  # the owner knows its Stripe version
                out.write(f'\n[sources.billing]\nstripe_version = "{SETUP.stripe_version}"\n')
            config = tomllib.loads(config_file.read_text(encoding="utf-8"))
            run_job("nightly")
            world = sandbox.world
    published = home / "published" / "warehouse.duckdb"
    found: dict[str, set[str]] = {kind: set() for kind in KINDS}
    with duckdb.connect(str(published), read_only=True) as con:
        for rule, keys in con.execute(
            "select rule, record_keys from reconciliation.findings_current"
        ).fetchall():
            found.setdefault(rule, set()).add(canonical(keys))
    return Night(home, config, suggested, world, found)


def _suggest(home: Path) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["mapping", "suggest", "--write"]) == 0
    return out.getvalue()


def test_suggest_proposes_what_the_owner_would_write(night: Night):
    expected = mapping_for(SETUP)["mapping"]
    written = night.config["mapping"]
    for key, value in expected.items():
        if isinstance(value, dict):
            for concept, item in value.items():
                assert written[key][concept] == item, f"{key}.{concept}"
        else:
            assert written[key] == value, key
    assert "are ad campaign names" in night.suggested  # the evidence is printed with each setting


@pytest.mark.parametrize("rule", KINDS)
def test_each_rule_finds_this_worlds_anomalies_exactly(night: Night, rule: str):
    truth = {canonical(a.keys) for a in night.world.truth.of_kind(rule)}
    found = night.found.get(rule, set())
    assert truth, f"the world plants no active {rule}"
    hits = found & truth
    precision = len(hits) / len(found) if found else 0.0
    recall = len(hits) / len(truth)
    diff = (
        f"{rule}: precision {precision:.3f}, recall {recall:.3f}\n"
        f"  reported, not in the truth: {sorted(found - truth)[:5]}\n"
        f"  in the truth, not reported: {sorted(truth - found)[:5]}"
    )
    assert (precision, recall) == (1.0, 1.0), diff
