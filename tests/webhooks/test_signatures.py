"""Signatures are checked exactly as each provider signs: the published test vectors, the official
Stripe SDK's signing helper, and every way a delivery can be false."""

from __future__ import annotations

import time

import pytest
import stripe

from ingestion.webhooks import signatures
from ingestion.webhooks.signatures import Delivery, Refused, verify
from tests.webhooks.conftest import SECRETS, calendly_headers, hubspot_headers, stripe_event, stripe_headers

NOW = 1_700_000_100.0
URI = "https://hooks.example.com/webhooks/hubspot"


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def check(provider: str, body: bytes, headers: dict[str, str], secrets=None, now=NOW, uri=URI) -> None:
    delivery = Delivery("POST", uri, lower(headers), body)
    chosen = SECRETS[provider] if secrets is None else secrets
    verify(provider, delivery, chosen, now, signatures_window(provider))


def signatures_window(provider: str) -> float:
    return {"stripe": 300.0, "hubspot": 300.0, "calendly": 180.0}[provider]


def refusal(provider: str, body: bytes, headers: dict[str, str], **kwargs) -> str:
    with pytest.raises(Refused) as raised:
        check(provider, body, headers, **kwargs)
    return raised.value.reason


def test_hubspot_v3_matches_hubspots_own_test_vector():
    signature = signatures.hubspot_signature(
        "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
        "POST",
        "https://www.example.com/webhook_uri",
        b"{'example_field':'example_value'}",
        "1693657560000",
    )
    assert signature == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="


def test_stripe_and_calendly_schemes_match_the_reference_vectors():
    body = b'{"id":"evt_test_webhook","object":"event"}'
    assert (
        signatures.hmac_hex("whsec_test_secret", b"1700000000." + body)
        == "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"
    )
    assert (
        signatures.hmac_hex("calendly_signing_key", b"1700000000." + body)
        == "5fc14fc230fefea9d9c1008a2d6875a7f6151f2c15e3a8e921061f44840ceae7"
    )


def test_signatures_made_by_the_official_stripe_sdk_verify():
    body = stripe_event("evt_sdk")
    check("stripe", body, stripe_headers(body, t=int(NOW)))
    # and the SDK accepts what the sandbox-style header carries: both agree on the scheme
    header = f"t={int(NOW)},v1={signatures.hmac_hex(SECRETS['stripe'][0], f'{int(NOW)}.'.encode() + body)}"
    assert stripe.WebhookSignature.verify_header(body, header, SECRETS["stripe"][0], tolerance=None)


@pytest.mark.parametrize("provider", ["stripe", "hubspot", "calendly"])
def test_forged_tampered_stale_and_wrong_secret_deliveries_are_refused(provider):
    body = stripe_event("evt_1") if provider == "stripe" else b'[{"eventId": 1}]'

    def signed(secret=None, at=NOW, payload=body):
        secret = secret or SECRETS[provider][0]
        if provider == "stripe":
            return stripe_headers(payload, secret, t=int(at))
        if provider == "hubspot":
            return hubspot_headers(payload, URI, secret, ms=int(at * 1000))
        return calendly_headers(payload, secret, t=int(at))

    check(provider, body, signed())  # the genuine one passes
    assert refusal(provider, body + b" ", signed()) == signatures.MISMATCH  # tampered body
    assert refusal(provider, body, signed(secret="not-the-secret")) == signatures.MISMATCH
    window = signatures_window(provider)
    assert refusal(provider, body, signed(at=NOW - window - 1)) == signatures.STALE
    assert refusal(provider, body, signed(at=NOW + window + 1)) == signatures.FUTURE
    assert refusal(provider, body, {}) == signatures.MISSING
    forged = {k: (v[:-8] + "AAAAAAAA" if "ignature" in k else v) for k, v in signed().items()}
    assert refusal(provider, body, forged) == signatures.MISMATCH
    assert refusal(provider, body, signed(), secrets=()) == signatures.NOT_CONFIGURED


def test_a_forgery_dated_long_ago_is_a_forgery_not_a_late_delivery():
    body = stripe_event("evt_old")
    assert refusal("stripe", body, stripe_headers(body, "wrong", t=int(NOW) - 10_000)) == signatures.MISMATCH


@pytest.mark.parametrize(
    "header",
    ["v1=abc", "t=notanumber,v1=abc", "t=1700000000", "garbage", "t=1700000000,v0=abc"],
)
def test_malformed_signature_headers_are_refused(header):
    body = stripe_event("evt_1")
    assert refusal("stripe", body, {"Stripe-Signature": header}) == signatures.MALFORMED


def test_both_secrets_are_accepted_during_a_rotation():
    body = stripe_event("evt_roll")
    old, new = "whsec_old", "whsec_new"
    for secret in (old, new):
        check("stripe", body, stripe_headers(body, secret, t=int(NOW)), secrets=(new, old))
        check("calendly", body, calendly_headers(body, secret, t=int(NOW)), secrets=(new, old))
        check("hubspot", body, hubspot_headers(body, URI, secret, ms=int(NOW * 1000)), secrets=(new, old))
    assert (
        refusal("stripe", body, stripe_headers(body, old, t=int(NOW)), secrets=(new,)) == signatures.MISMATCH
    )
    # Stripe itself signs with both while a secret is rolled: a header with two v1 values
    two = (
        stripe_headers(body, new, t=int(NOW))["Stripe-Signature"]
        + ",v1="
        + signatures.hmac_hex(old, f"{int(NOW)}.".encode() + body)
    )
    check("stripe", body, {"Stripe-Signature": two}, secrets=(old,))
    check("stripe", body, {"Stripe-Signature": two}, secrets=(new,))


def test_hubspot_signs_the_public_url_it_called():
    body = b'[{"eventId": 1}]'
    headers = hubspot_headers(body, URI, ms=int(NOW * 1000))
    check("hubspot", body, headers, uri=URI)
    assert (
        refusal("hubspot", body, headers, uri="http://127.0.0.1:8780/webhooks/hubspot") == signatures.MISMATCH
    )
    # HubSpot decodes these escapes before signing; a URI that carries them verifies the same
    escaped = "https://hooks.example.com/webhooks/hubspot?portal%3A7"
    check(
        "hubspot",
        body,
        hubspot_headers(body, "https://hooks.example.com/webhooks/hubspot?portal:7"),
        uri=escaped,
        now=time.time(),
    )
