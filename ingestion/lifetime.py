"""Children that die with their parent: a process the runner starts (an extract worker, dbt,
the sandbox, `dagster dev`) must not outlive it, or it keeps the DuckDB file open after the
writer lock is free. On Linux the kernel sends the parent-death signal the moment the parent
is gone, kill -9 included."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """In the child (e.g. as `preexec_fn`): receive `signum` when the parent process dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signum)


def killed_with_parent() -> None:
    """`preexec_fn` for a child killed outright with its parent (dbt: it holds the warehouse)."""
    die_with_parent(signal.SIGKILL)


def stopped_with_parent() -> None:
    """`preexec_fn` for a child told to stop with its parent (it may stop its own children)."""
    die_with_parent(signal.SIGTERM)
