"""Great Expectations judges the numbers the suites measured (the one module that imports it).

The warehouse computes every number; GX's SQL datasource gives wrong answers on DuckDB, so the
numbers go to GX as a small pandas frame (one row per check: observed, warn and error
levels) through an ephemeral context with progress bars off. Two expectations decide:
the error level must be at or above the observed value, and so must the warn level.
Great Expectations (~5 s to import) and pandas are imported on the first call only.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

LEVELS = ("error", "warn")

_lock = threading.Lock()
_built: list[Any] = []  # the validation definition, once built


@dataclass(frozen=True)
class Measurement:
    key: str
    observed: float | None
    warn_above: float | None
    error_above: float | None


@dataclass(frozen=True)
class Verdict:
    """Which levels a measurement broke (a missing observation breaks every level it has)."""

    error: bool
    warn: bool

    @property
    def passed(self) -> bool:
        return not (self.error or self.warn)


def judge(measurements: Sequence[Measurement]) -> dict[str, Verdict]:
    """One verdict per measurement key."""
    if not measurements:
        return {}
    import pandas as pd

    frame = pd.DataFrame(
        {
            "check": [m.key for m in measurements],
            "observed": [_number(m.observed, math.nan) for m in measurements],
            "warn_above": [_number(m.warn_above, math.inf) for m in measurements],
            "error_above": [_number(m.error_above, math.inf) for m in measurements],
        }
    )
    result = _validation().run(
        batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"}
    )
    broken: dict[str, set[int]] = {level: set() for level in LEVELS}
    for outcome in result.results:
        level = str(outcome.expectation_config.meta["level"])
        broken[level] = set() if outcome.success else set(outcome.result.get("unexpected_index_list") or [])
    return {
        m.key: Verdict(
            error=m.error_above is not None and i in broken["error"],
            warn=m.warn_above is not None and i in broken["warn"],
        )
        for i, m in enumerate(measurements)
    }


def _number(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def warm_up() -> threading.Thread:
    """Import Great Expectations and build the validation in the background.

    DuckDB releases the GIL while it computes, so the import (seconds of Python) overlaps
    the queries that compute the numbers instead of following them.
    """
    thread = threading.Thread(target=_validation, name="checks-judge-warm-up", daemon=True)
    thread.start()
    return thread


def _validation() -> Any:
    """The validation definition, built once per process in an ephemeral context."""
    with _lock:
        if not _built:
            _built.append(_build_validation())
        return _built[0]


def _build_validation() -> Any:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.metadata_types import FailureSeverity

    for name in list(logging.root.manager.loggerDict):  # GX sets some of its loggers to INFO
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("trueup_checks").add_dataframe_asset("measurements")
    batch = asset.add_batch_definition_whole_dataframe("all")
    suite = gx.ExpectationSuite(name="trueup_check_levels")
    for level, severity in (("error", FailureSeverity.CRITICAL), ("warn", FailureSeverity.WARNING)):
        suite.add_expectation(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=f"{level}_above",
                column_B="observed",
                or_equal=True,
                ignore_row_if="neither",
                severity=severity,
                meta={"level": level},
            )
        )
    suite = context.suites.add(suite)
    return context.validation_definitions.add(
        gx.ValidationDefinition(name="trueup_checks", data=batch, suite=suite)
    )
