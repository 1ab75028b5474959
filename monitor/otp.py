"""One-time codes as 2FAuth computes them: TOTP, HOTP and Steam, from a base32 secret.

pyotp does the RFC 4226/6238 work where it can. 2FAuth (otphp) also accepts what pyotp
refuses on purpose: 5 digits, md5, and secrets shorter than 112 bits. For those we use
pyotp's own truncation through a subclass that lifts only the construction-time guards;
the arithmetic is the same code path, so no check is weakened. md5 digests are 16 bytes,
so an offset above 12 reads past the digest: PHP reads the missing bytes as 0, and so do we.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Literal

import pyotp

Algorithm = Literal["sha1", "sha256", "sha512", "md5"]
OtpType = Literal["totp", "hotp", "steamtotp"]

DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512, "md5": hashlib.md5}
STEAM_ALPHABET = "23456789BCDFGHJKMNPQRTVWXY"


class SecretError(ValueError):
    """The secret is not valid base32."""


def decode_secret(secret: str) -> bytes:
    """Decode a base32 secret the way 2FAuth stores it: upper-cased, '='-padded, spaces ignored."""
    cleaned = secret.replace(" ", "").upper().rstrip("=")
    if not cleaned:
        raise SecretError("the secret is empty")
    cleaned += "=" * (-len(cleaned) % 8)
    try:
        return base64.b32decode(cleaned, casefold=True)
    except (binascii.Error, ValueError):
        raise SecretError("the secret is not valid base32") from None


class _OTP(pyotp.OTP):
    """pyotp's generator without the guards that 2FAuth does not have."""

    def __init__(self, key: bytes, digits: int, algorithm: Algorithm) -> None:
        if not 5 <= digits <= 10 or algorithm not in DIGESTS:
            raise ValueError("digits must be 5 to 10 and the algorithm sha1, sha256, sha512 or md5")
        # Skip pyotp.OTP.__init__: it refuses 5 digits, md5 and short keys, all valid in 2FAuth.
        self.digits = digits
        self.digest = DIGESTS[algorithm]
        self._key = key
        self.secret = ""
        self.name = "canary"
        self.issuer = None

    def byte_secret(self) -> bytes:
        return self._key

    def generate_otp(self, input: int) -> str:
        if self.digest is hashlib.md5:
            return _truncate_short_digest(self._key, input, self.digits)
        return super().generate_otp(input)


def _truncate_short_digest(key: bytes, counter: int, digits: int) -> str:
    mac = hmac.new(key, counter.to_bytes(8, "big"), hashlib.md5).digest() + b"\0\0\0"
    offset = mac[15] & 0xF
    code = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)


MD5_SHORT_OFFSETS = range(13, 16)  # offsets that read past a 16-byte md5 digest


def md5_offset(secret: str, at: int, *, period: int = 30) -> int:
    """The RFC 4226 truncation offset of the md5 TOTP at a unix time: the digest's last nibble.

    2FAuth (otphp) reads 4 bytes from there; at 13, 14 or 15 it runs off the 16-byte digest and
    answers 400 instead of a code (about 3 time steps in 16)."""
    counter = int(at) // period
    return hmac.new(decode_secret(secret), counter.to_bytes(8, "big"), hashlib.md5).digest()[15] & 0xF


def hotp(secret: str, counter: int, *, digits: int = 6, algorithm: Algorithm = "sha1") -> str:
    """The HOTP code for a counter."""
    return _OTP(decode_secret(secret), digits, algorithm).generate_otp(counter)


def totp(secret: str, at: int, *, digits: int = 6, algorithm: Algorithm = "sha1", period: int = 30) -> str:
    """The TOTP code at a unix time (seconds), RFC 6238 with epoch 0."""
    if period < 1:
        raise ValueError("period must be at least 1")
    return _OTP(decode_secret(secret), digits, algorithm).generate_otp(int(at) // period)


def steam(secret: str, at: int) -> str:
    """The 5-character Steam Guard code at a unix time."""
    mac = hmac.new(decode_secret(secret), (int(at) // 30).to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[19] & 0xF
    code = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    chars = []
    for _ in range(5):
        chars.append(STEAM_ALPHABET[code % 26])
        code //= 26
    return "".join(chars)


def code_at(
    secret: str,
    at: int,
    *,
    otp_type: OtpType = "totp",
    digits: int = 6,
    algorithm: Algorithm = "sha1",
    period: int = 30,
) -> str:
    """The code a 2FAuth account of these parameters shows at `at` (totp or steamtotp)."""
    if otp_type == "steamtotp":
        return steam(secret, at)
    if otp_type == "totp":
        return totp(secret, at, digits=digits, algorithm=algorithm, period=period)
    raise ValueError(f"{otp_type} codes are not time based")


def codes_equal(a: str, b: str) -> bool:
    """Compare two codes in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())
