"""A throwaway PostgreSQL server on loopback, for the tests and benchmarks of the server warehouse.

Debian's `postgresql` package (and `postgresql-plpython3-NN` for trueup's normalization
functions) provide the binaries; `make test` installs them when it runs as root. The server
lives in a temporary directory: `initdb`, then `pg_ctl start` on a free loopback port, and it is
stopped by its PID when the `with` block ends. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` system user the package creates.

    with PostgresServer.start() as server:
        url = server.url  # postgresql://postgres:PASSWORD@127.0.0.1:PORT/trueup

`unavailable()` says why no server can start here (or None), for tests to skip with.

trueup's PL/Python functions import phonenumbers, anyascii and tzdata; the server's Python
need not have them: `python_path` is a directory in the server's own (readable) temp dir with
copies of them from this interpreter's site-packages (TRUEUP_WAREHOUSE_PYTHON_PATH names it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DATABASE = "trueup"
# pure-Python packages trueup's PL/Python functions import (ingestion/normalize.py)
PYTHON_PACKAGES = ("phonenumbers", "anyascii", "tzdata")
SUPERUSER = "postgres"
PASSWORD = "trueup-local"  # a throwaway server on loopback; checked (scram) on TCP


def _bindir() -> Path | None:
    """The newest installed server's bin directory (Debian keeps them per major version)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    return Path(which).resolve().parent if which else None


def _as_server_user() -> list[str]:
    """The command prefix that runs a server binary as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def unavailable() -> str | None:
    """Why a server cannot start here, or None."""
    bindir = _bindir()
    if bindir is None:
        return "PostgreSQL's server binaries are not installed (Debian: apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no `postgres` user exists to run the server as"
    if not list(bindir.parent.glob("lib/plpython3.so")):
        return (
            f"PL/Python is not installed for PostgreSQL {bindir.parent.name} "
            f"(Debian: apt-get install postgresql-plpython3-{bindir.parent.name})"
        )
    return None


def _copy_python_packages(target: Path) -> None:
    """Copies of PYTHON_PACKAGES (from this interpreter) the server's user can read."""
    import importlib

    target.mkdir()
    for name in PYTHON_PACKAGES:
        package = Path(importlib.import_module(name).__file__ or "").parent
        shutil.copytree(package, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in [target, *target.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    directory: Path
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    @property
    def python_path(self) -> Path:
        """Where the server's Python finds the packages of trueup's PL/Python functions."""
        return self.directory / "python"

    @classmethod
    @contextlib.contextmanager
    def start(cls, *, keep_dir: Path | None = None) -> Iterator[PostgresServer]:
        reason = unavailable()
        if reason:
            raise RuntimeError(f"cannot start PostgreSQL: {reason}")
        bindir = _bindir()
        assert bindir is not None
        root = Path(tempfile.mkdtemp(prefix="trueup-pg-", dir=keep_dir))
        data, sockets = root / "data", root / "sockets"
        sockets.mkdir()
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (root, sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        prefix = _as_server_user()
        pwfile = root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        initdb = subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth-local=trust",
             "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8",
             "--no-sync"],
            capture_output=True, text=True,
        )  # fmt: skip
        if initdb.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"initdb failed in {root}: {initdb.stderr.strip()[-2000:]}")
        _copy_python_packages(root / "python")
        port = _free_port()
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        log = root / "server.log"
        started = subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log),
             "-w", "-t", "60", "start"],
            capture_output=True, text=True,
        )  # fmt: skip
        if started.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else started.stderr
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"PostgreSQL did not start: {tail}")
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        server = cls(directory=root, port=port, pid=pid)
        try:
            server.psql(f"create database {DATABASE}", database="postgres")
            yield server
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)

    def psql(self, sql: str, *, database: str = DATABASE) -> str:
        """Run SQL with psql as the superuser; its output (tuples only, unaligned)."""
        bindir = _bindir()
        assert bindir is not None
        psql = shutil.which("psql") or str(bindir / "psql")
        done = subprocess.run(
            [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database,
             "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            check=True, capture_output=True, text=True, env={**os.environ, "PGPASSWORD": PASSWORD},
        )  # fmt: skip
        return done.stdout

    def stop(self) -> None:
        """Fast shutdown by PID; the server's children follow the postmaster."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
