"""Webhook signatures, checked exactly as each provider signs, over the raw body bytes.

- Stripe: `Stripe-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...]`, hex HMAC-SHA256 of `"{t}.{body}"`;
  any `v1` may match (Stripe sends one per active secret while a secret is rolled).
- HubSpot v3: `X-HubSpot-Signature-v3`, base64 HMAC-SHA256 of method + full URI + body +
  `X-HubSpot-Request-Timestamp` (epoch ms). The URI is the public URL HubSpot called.
- Calendly: `Calendly-Webhook-Signature: t=<unix s>,v1=<hex>`, the same scheme as Stripe's.

Every comparison is constant-time (`hmac.compare_digest`). The signature is checked before the
timestamp, so "stale" always means an authentic delivery that came too late, and a forgery is
a forgery whatever time it claims. Deliveries dated further ahead than the window are refused
as well: a timestamp in the future would stretch the replay window by as much.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Refusal reasons: what monitoring counts, and what the log says (never the signature itself).
MISSING = "missing_signature"
MALFORMED = "malformed_signature"
MISMATCH = "bad_signature"  # forged, tampered with, or signed with a secret we do not hold
STALE = "stale_timestamp"
FUTURE = "future_timestamp"
NOT_CONFIGURED = "no_secret_configured"

# The status each provider is answered with when a delivery is refused. Stripe's own examples
# answer a failed verification with 400; HubSpot's and Calendly's with 401.
REFUSAL_STATUS = {"stripe": 400, "hubspot": 401, "calendly": 401}

# HubSpot's v3 rule: these escapes are decoded in the URI before signing.
_HUBSPOT_URI_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


class Refused(Exception):
    """A delivery that is not what it claims to be; `reason` is one of the constants above."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """What a signature covers: the request as it arrived."""

    method: str
    uri: str  # the full URL the provider called (HubSpot signs it)
    headers: Mapping[str, str]  # names lower-cased
    body: bytes


def verify(provider: str, delivery: Delivery, secrets: Sequence[str], now: float, tolerance: float) -> None:
    """Raise Refused unless one of `secrets` signed this delivery within `tolerance` seconds of `now`."""
    if not secrets:
        raise Refused(NOT_CONFIGURED, f"no {provider} webhook secret is configured")
    if provider in ("stripe", "calendly"):
        header = "stripe-signature" if provider == "stripe" else "calendly-webhook-signature"
        _verify_timestamped(delivery, header, secrets, now, tolerance)
    elif provider == "hubspot":
        _verify_hubspot(delivery, secrets, now, tolerance)
    else:
        raise ValueError(f"unknown webhook provider {provider!r}")


def _verify_timestamped(
    delivery: Delivery, header: str, secrets: Sequence[str], now: float, tolerance: float
) -> None:
    raw = delivery.headers.get(header)
    if not raw:
        raise Refused(MISSING, f"no {header} header")
    timestamp, signatures = parse_timestamped_header(raw)
    signed = str(timestamp).encode() + b"." + delivery.body
    expected = [hmac_hex(secret, signed) for secret in secrets]
    if not _any_equal(expected, signatures):
        raise Refused(MISMATCH, f"{header} matches no configured secret")
    _check_window(float(timestamp), now, tolerance)


def parse_timestamped_header(raw: str) -> tuple[int, list[str]]:
    """`t=<int>,v1=<hex>[,v1=...]` -> (t, [v1 values]); other schemes (v0) are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in raw.split(","):
        name, equals, value = item.strip().partition("=")
        if not equals:
            raise Refused(MALFORMED, "an item of the signature header has no '='")
        if name == "t":
            if not value.isdigit():
                raise Refused(MALFORMED, "the signature timestamp is not an integer")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None:
        raise Refused(MALFORMED, "the signature header has no timestamp")
    if not signatures:
        raise Refused(MALFORMED, "the signature header has no v1 signature")
    return timestamp, signatures


def _verify_hubspot(delivery: Delivery, secrets: Sequence[str], now: float, tolerance: float) -> None:
    signature = delivery.headers.get("x-hubspot-signature-v3")
    stamp = delivery.headers.get("x-hubspot-request-timestamp")
    if not signature or not stamp:
        raise Refused(MISSING, "no X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp header")
    if not stamp.isdigit():
        raise Refused(MALFORMED, "X-HubSpot-Request-Timestamp is not an integer")
    expected = [hubspot_signature(s, delivery.method, delivery.uri, delivery.body, stamp) for s in secrets]
    if not _any_equal(expected, [signature]):
        raise Refused(MISMATCH, "X-HubSpot-Signature-v3 matches no configured secret")
    _check_window(int(stamp) / 1000.0, now, tolerance)


def _check_window(timestamp: float, now: float, tolerance: float) -> None:
    if now - timestamp >= tolerance:
        raise Refused(STALE, f"signed {now - timestamp:.0f}s ago (window {tolerance:.0f}s)")
    if timestamp - now >= tolerance:
        raise Refused(FUTURE, f"signed {timestamp - now:.0f}s ahead of this clock (window {tolerance:.0f}s)")


def _any_equal(expected: Sequence[str], offered: Sequence[str]) -> bool:
    """Constant-time comparison of every pair (no early exit that would time the secrets)."""
    found = False
    for mine in expected:
        for theirs in offered:
            found |= hmac.compare_digest(mine.encode(), theirs.encode())
    return found


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature: base64(HMAC-SHA256(secret, method + uri + body + timestamp))."""
    message = method.encode() + hubspot_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hubspot_uri(uri: str) -> str:
    for escaped, character in _HUBSPOT_URI_DECODE.items():
        uri = uri.replace(escaped, character).replace(escaped.lower(), character)
    return uri
