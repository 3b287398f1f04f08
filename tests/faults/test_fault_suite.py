"""The fault suite on a small world: each case (sandbox/fault_suite.py) ends with a clean run
after which the warehouse equals the world, nothing lost and nothing doubled."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.fault_suite import CASES, run_case

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(CASES))
def test_after_the_fault_and_a_clean_run_the_warehouse_equals_the_world(name: str, tmp_path: Path) -> None:
    outcome = run_case(CASES[name], contacts=120, workdir=tmp_path)
    assert outcome.parity.checked > 0
    assert not outcome.parity.problems, "\n".join(outcome.parity.problems)
    assert (outcome.parity.lost, outcome.parity.doubled) == (0, 0)
