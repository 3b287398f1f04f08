"""`kill -9` of the receiver in the middle of a stream loses no delivery it acknowledged: the
sandbox keeps every delivery it got a 2xx for, and after a restart the inbox holds all of them
(and, the sandbox retrying the rest, every other event too)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ingestion.webhooks.events import parse
from orchestration.sandbox_runtime import today_anchor, webhook_env
from sandbox import world as world_module
from sandbox.config import DEFAULT_TOKENS
from sandbox.server import Sandbox
from sandbox.webhooks import WebhookConfig
from tests.webhooks.test_sender import free_port


def start_receiver(home: Path, port: int) -> subprocess.Popen[bytes]:
    ready = home / f"ready-{time.monotonic_ns()}.json"
    env = {**os.environ, "TRUEUP_HOME": str(home), **webhook_env()}
    command = [sys.executable, "-m", "orchestration.cli", "webhooks", "serve", "--port", str(port)]
    process = subprocess.Popen([*command, "--ready-file", str(ready)], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        if ready.exists():
            url = json.loads(ready.read_text())["url"]
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return process
            except httpx.HTTPError:
                pass
        assert process.poll() is None, "the receiver exited"
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.05)


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acknowledged_delivery(tmp_path: Path):
    home, port = tmp_path / "home", free_port()
    world = world_module.generate(seed=5, contacts=100, anchor=today_anchor())
    config = WebhookConfig(
        url=f"http://127.0.0.1:{port}/webhooks",
        duplicate_rate=0.2,
        max_delay=0.05,
        retry_base=0.05,
        retry_max=0.5,
    )
    receiver = start_receiver(home, port)
    sandbox = Sandbox(world, webhooks=config).start()
    sender = sandbox.webhooks
    assert sender is not None
    restarted = threading.Event()

    def produce() -> None:
        contacts = [c["id"] for c in world.crm.contacts][:50]
        headers = {"Authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"}
        with httpx.Client(base_url=sandbox.base_urls["hubspot"], headers=headers) as client:
            n = 0
            while n < 400 or not restarted.is_set():
                contact = contacts[n % len(contacts)]
                body = {"properties": {"email": f"stream{n}@example.com"}}
                client.patch(f"/crm/v3/objects/contacts/{contact}", json=body).raise_for_status()
                n += 1

    producer = threading.Thread(target=produce, daemon=True)
    try:
        producer.start()
        wait_for(lambda: sender.summary()["acknowledged"] >= 100)
        os.kill(receiver.pid, signal.SIGKILL)  # mid-stream: deliveries are in flight
        receiver.wait(timeout=30)
        acknowledged_at_kill = len(sender.acknowledged)
        wait_for(lambda: sender.summary()["failed_attempts"] > 0)  # deliveries meet a dead receiver
        receiver = start_receiver(home, port)
        restarted.set()
        producer.join(timeout=120)
        assert sender.flush(120)
    finally:
        sandbox.stop()
        receiver.kill()
        receiver.wait(timeout=30)

    inbox = home / "webhooks" / "inbox.sqlite3"
    with sqlite3.connect(inbox) as con:
        assert con.execute("pragma integrity_check").fetchone() == ("ok",)
        stored = {key for (key,) in con.execute("select event_key from events")}
    acknowledged = [parse(provider, body) for provider, body in sender.acknowledged]
    before_kill = {e.event_key for events in acknowledged[:acknowledged_at_kill] for e in events}
    assert before_kill and before_kill <= stored  # what was acknowledged before the kill survived it
    every = {e.event_key for events in acknowledged for e in events}
    assert every == stored  # and the sandbox's retries brought the rest: nothing lost, nothing extra
    assert len(stored) == sum(sender.summary()["events"].values())
