"""The client on real networks' terms: proxies and the CA bundle named only by the environment,
TLS, HTTP/2 where the server offers it, and writes (form bodies, idempotency keys, answers
read whatever their status) against the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingestion.http import ApiClient, ApiError
from ingestion.pipeline import run_system
from ingestion.warehouse import Paths
from sandbox.config import DEFAULT_TOKENS
from sandbox.server import Sandbox
from sandbox.store import World
from tests.ingestion.conftest import sandbox_env
from tests.ingestion.helpers import fetch
from tests.ingestion.servers import LoopbackCA, Proxy, http2_server

NETWORK_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")
SMALL_WORLD = 100  # contacts: the smallest world, cheap to generate


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy and no CA bundle from the machine: each test names only what it means."""
    for name in NETWORK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture
def ca(tmp_path: Path) -> LoopbackCA:
    return LoopbackCA(tmp_path)


@pytest.fixture
def small_world(make_world: Callable[..., World]) -> World:
    return make_world(contacts=SMALL_WORLD)


@pytest.fixture
def tls_sandbox(small_world: World, ca: LoopbackCA) -> Iterator[Sandbox]:
    running = Sandbox(small_world, tls=ca.server_context()).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def plain_sandbox(small_world: World) -> Iterator[Sandbox]:
    running = Sandbox(small_world).start()
    try:
        yield running
    finally:
        running.stop()


def test_a_connector_loads_over_tls_through_the_https_proxy_trusting_the_ca_the_environment_names(
    tls_sandbox: Sandbox, small_world: World, ca: LoopbackCA, warehouse_paths: Paths, bare_env
):
    port = tls_sandbox.httpd.server_address[1]
    with Proxy() as proxy:
        for name, value in sandbox_env(tls_sandbox.base_urls).items():
            bare_env.setenv(name, value)
        bare_env.setenv("HTTPS_PROXY", proxy.url)
        bare_env.setenv("SSL_CERT_FILE", str(ca.bundle))
        result = run_system("scheduling", where=warehouse_paths, source_kwargs={"now": small_world.clock()})
    assert result.quarantined == 0
    loaded = fetch(warehouse_paths, "select count(*) from raw_scheduling.scheduled_events")[0][0]
    assert loaded == len(small_world.scheduling.events)
    # every connection went through the proxy's tunnel, to the sandbox
    assert proxy.seen and set(proxy.seen) == {f"CONNECT 127.0.0.1:{port}"}
    assert tls_sandbox.stats["calendly:200"] > 0


def test_plain_http_goes_through_http_proxy_unless_no_proxy_names_the_host(plain_sandbox: Sandbox, bare_env):
    base = plain_sandbox.base_urls["calendly"]
    with Proxy() as proxy:
        bare_env.setenv("HTTP_PROXY", proxy.url)
        with ApiClient("scheduling", base, DEFAULT_TOKENS["calendly"]) as client:
            assert client.get("/users/me")["resource"]["current_organization"]
        assert proxy.seen == [f"GET {base}/users/me"]
        bare_env.setenv("NO_PROXY", "127.0.0.1")
        with ApiClient("scheduling", base, DEFAULT_TOKENS["calendly"]) as client:
            client.get("/users/me")
        assert len(proxy.seen) == 1  # straight to the sandbox this time


def test_an_untrusted_certificate_fails_at_once_and_says_how_to_trust_a_ca(tls_sandbox: Sandbox, bare_env):
    token = DEFAULT_TOKENS["calendly"]
    with ApiClient("scheduling", tls_sandbox.base_urls["calendly"], token) as client:
        with pytest.raises(ApiError, match="certificate") as raised:
            client.get("/users/me")
        assert client.stats.retries == 0  # a CA nobody trusts is not a passing fault
    assert "SSL_CERT_FILE" in str(raised.value)
    assert token not in str(raised.value)


def test_http2_is_spoken_where_the_server_offers_it(ca: LoopbackCA, bare_env):
    bare_env.setenv("SSL_CERT_FILE", str(ca.bundle))
    with http2_server(ca, {"ok": True}) as (url, served), ApiClient("crm", url, "token") as client:
        # the server speaks only HTTP/2: an HTTP/1.1-only client would get no answer at all
        assert client.get("/crm/v3/objects/contacts", {"limit": 1}) == {"ok": True}
    assert served == ["/crm/v3/objects/contacts?limit=1"]


def test_stripe_writes_are_form_encoded_keyed_and_read_whatever_their_status(plain_sandbox: Sandbox):
    with ApiClient("billing", plain_sandbox.base_urls["stripe"], DEFAULT_TOKENS["stripe"]) as client:
        customer = client.get("/v1/customers", {"limit": 1})["data"][0]["id"]
        write = {"metadata": {"crm_contact_id": "c-42"}, "description": "from trueup"}
        key = {"Idempotency-Key": "trueup-test-1"}
        first = client.exchange("POST", f"/v1/customers/{customer}", form=write, headers=key)
        assert first.status == 200 and first.ok
        assert first.body["metadata"]["crm_contact_id"] == "c-42"
        assert first.body["description"] == "from trueup"
        again = client.exchange("POST", f"/v1/customers/{customer}", form=write, headers=key)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.body == first.body
        rejected = client.exchange("POST", f"/v1/customers/{customer}", form={"email": "not an email"})
        assert rejected.status == 400 and not rejected.ok
        assert rejected.body["error"]["code"] == "email_invalid"
        with pytest.raises(ApiError) as raised:
            client.request("POST", f"/v1/customers/{customer}", form={"email": "not an email"})
        assert raised.value.status == 400
        assert client.server_now() is not None


def test_a_hubspot_partial_batch_failure_is_answered_not_raised(plain_sandbox: Sandbox):
    with ApiClient("crm", plain_sandbox.base_urls["hubspot"], DEFAULT_TOKENS["hubspot"]) as client:
        contact = client.get("/crm/v3/objects/contacts", {"limit": 1})["results"][0]["id"]
        inputs = [
            {"id": contact, "properties": {"jobtitle": "Owner"}},
            {"id": "999999999", "properties": {"jobtitle": "Ghost"}},
        ]
        reply = client.exchange("POST", "/crm/v3/objects/contacts/batch/update", json={"inputs": inputs})
    assert reply.status == 207
    assert [r["id"] for r in reply.body["results"]] == [contact]
    assert reply.body["numErrors"] == 1
