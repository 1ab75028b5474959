"""Fake personal access tokens: JWT-shaped like Passport's, but unsigned and only valid here."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time

TOKEN_LIFETIME = 365 * 24 * 3600  # Passport's default for personal access tokens


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_token(exp: int | None, sub: str = "1") -> str:
    """An `eyJ...` header.payload.signature token; `exp` is a unix time, None for no expiry."""
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256"}
    payload: dict[str, object] = {"aud": "1", "jti": secrets.token_hex(40), "iat": now, "nbf": now}
    if exp is not None:
        payload["exp"] = int(exp)
    payload.update(sub=sub, scopes=[])
    parts = [json.dumps(part, separators=(",", ":")).encode() for part in (header, payload)]
    # The "signature" is random bytes: the simulator checks tokens against its own set, not a key.
    return ".".join([*(_b64url(part) for part in parts), _b64url(secrets.token_bytes(64))])


def token_expiry(token: str) -> int | None:
    """The `exp` claim of a JWT-shaped token, or None when it is not a JWT or has no `exp`."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return exp if isinstance(exp, int) else None


def token_is_valid(token: str, valid_tokens: frozenset[str], now: float) -> bool:
    """Whether a bearer token is one of ours and, if it carries `exp`, has not expired at `now`."""
    if token not in valid_tokens:
        return False
    exp = token_expiry(token)
    return exp is None or now < exp


DEFAULT_TOKEN = make_token(int(time.time()) + TOKEN_LIFETIME)
