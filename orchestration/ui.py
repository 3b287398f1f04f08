"""`trueup ui`: the Dagster UI on loopback, with the sandbox standing in for the sources.

Starts `trueup sandbox serve` on a free port, points every source at it, and runs
`dagster dev` with the instance under `$DAGSTER_HOME` (default `$TRUEUP_HOME/dagster`).
Both children start with default signal handlers (a child of a background shell
otherwise inherits ignored SIGINT/SIGTERM and never stops); a TERM or Ctrl-C here stops
`dagster dev` first, then the sandbox.
"""

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from ingestion.lifetime import stopped_with_parent
from ingestion.warehouse import paths
from orchestration.instance import INSTANCE_CONFIG, dagster_home, write_instance_config

log = logging.getLogger(__name__)

__all__ = ["INSTANCE_CONFIG", "dagster_home", "serve", "write_instance_config"]

DEFAULT_UI_PORT = 3000
SANDBOX_START_SECONDS = 600.0  # world generation at large scales takes minutes
STOP_SECONDS = 20.0


class PortBusy(RuntimeError):
    """The UI's port is taken: fail before starting anything, so nothing is left behind."""


def ensure_port_free(port: int, host: str = "127.0.0.1") -> None:
    """Raise PortBusy when something listens on (host, port) already."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortBusy(
                f"port {port} on {host} is in use ({exc.strerror}); pick another with --port "
                "(or TRUEUP_UI_PORT / `make ui UI_PORT=...`)"
            ) from None


def default_signals() -> None:
    """preexec_fn: undo inherited SIG_IGN so the child stops on TERM/INT, and is told to stop
    (TERM) when this process dies, however it dies."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    stopped_with_parent()


@dataclass
class SandboxProcess:
    process: subprocess.Popen[bytes]
    url: str


def start_sandbox(
    contacts: int, seed: int, port: int = 0, timeout: float = SANDBOX_START_SECONDS
) -> SandboxProcess:
    """`trueup sandbox serve` in a subprocess; returns once it answers (bounded wait)."""
    folder = Path(tempfile.mkdtemp(prefix="trueup-sandbox-"))
    ready = folder / "ready.json"
    command = [sys.executable, "-m", "orchestration.cli", "sandbox", "serve"]
    command += [
        "--contacts",
        str(contacts),
        "--seed",
        str(seed),
        "--port",
        str(port),
        "--ready-file",
        str(ready),
    ]
    process = subprocess.Popen(command, preexec_fn=default_signals, stdout=subprocess.DEVNULL)
    try:
        _wait_for(ready, process, timeout)
        url = json.loads(ready.read_text())["url"]
    except BaseException:
        stop(process, "sandbox")
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return SandboxProcess(process, url)


def _wait_for(ready: Path, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with code {process.returncode} before serving")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sandbox did not start within {timeout:.0f}s")
        time.sleep(0.2)


def dagster_command(port: int, host: str = "127.0.0.1") -> list[str]:
    executable = Path(sys.executable).parent / "dagster"
    return [str(executable), "dev", "-m", "orchestration.definitions", "-h", host, "-p", str(port)]


def ui_env(sandbox_url: str | None) -> dict[str, str]:
    from orchestration.sandbox_runtime import sandbox_base_urls, source_env

    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(dagster_home()),
        TRUEUP_HOME=str(paths().home),
        DO_NOT_TRACK="1",
        RUNTIME__DLTHUB_TELEMETRY="false",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    if sandbox_url:
        env.update(source_env(sandbox_base_urls(sandbox_url)))
    return env


def stop(process: subprocess.Popen[bytes], name: str, timeout: float = STOP_SECONDS) -> None:
    """TERM, wait (bounded), then KILL: only the process we started, by its id."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %.0fs; killing it", name, timeout)
        process.kill()
        process.wait(timeout=timeout)


def serve(
    port: int = DEFAULT_UI_PORT,
    contacts: int = 2000,
    seed: int = 7,
    with_sandbox: bool = True,
    report: Callable[[str], None] = print,
) -> int:
    """Run the sandbox and `dagster dev` until interrupted; returns dagster's exit code."""
    ensure_port_free(port)
    write_instance_config(overwrite=False)
    sandbox = None
    if with_sandbox:
        report(f"Generating a {contacts:,}-contact world and starting the sandbox ...")
        sandbox = start_sandbox(contacts, seed)
        report(f"Sandbox serving on {sandbox.url}")
    try:
        return _run_dagster(port, ui_env(sandbox.url if sandbox else None), report)
    finally:
        if sandbox is not None:
            stop(sandbox.process, "sandbox")


def _run_dagster(port: int, env: Mapping[str, str], report: Callable[[str], None]) -> int:
    command = dagster_command(port)
    report(f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={env['DAGSTER_HOME']}); Ctrl-C stops it")
    dagster = subprocess.Popen(command, env=dict(env), preexec_fn=default_signals)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if dagster.poll() is None:
            dagster.send_signal(signal.SIGTERM)

    previous = {n: signal.signal(n, forward) for n in (signal.SIGINT, signal.SIGTERM)}
    try:
        return dagster.wait()
    finally:
        stop(dagster, "dagster dev")
        for number, handler in previous.items():
            signal.signal(number, handler)
