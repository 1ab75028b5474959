"""Codes as 2FAuth computes them, against the RFC vectors and pyotp."""

import base64
import hashlib

import pyotp
import pytest

from monitor import otp

SHA1_KEY = base64.b32encode(b"12345678901234567890").decode()
SHA256_KEY = base64.b32encode(b"12345678901234567890123456789012").decode()
SHA512_KEY = base64.b32encode(b"1234567890" * 6 + b"1234").decode()

RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("t", "sha1", "sha256", "sha512"), RFC6238)
def test_rfc6238_vectors(t, sha1, sha256, sha512):
    assert otp.totp(SHA1_KEY, t, digits=8, algorithm="sha1") == sha1
    assert otp.totp(SHA256_KEY, t, digits=8, algorithm="sha256") == sha256
    assert otp.totp(SHA512_KEY, t, digits=8, algorithm="sha512") == sha512


@pytest.mark.parametrize(
    ("counter", "code"),
    list(
        enumerate(
            [
                "755224",
                "287082",
                "359152",
                "969429",
                "338314",
                "254676",
                "287922",
                "162583",
                "399871",
                "520489",
            ]
        )
    ),
)
def test_rfc4226_vectors(counter, code):
    assert otp.hotp(SHA1_KEY, counter) == code


def test_five_digits_are_the_last_five_of_six():
    # 10**5 divides 10**6, so the 5-digit code is the 6-digit one without its first digit
    for t in range(0, 3000, 30):
        assert otp.totp(SHA1_KEY, t, digits=5) == otp.totp(SHA1_KEY, t, digits=6)[1:]


def test_short_secret_that_pyotp_refuses_still_matches_the_standard():
    short = "JBSWY3DPEHPK3PXP"  # 80 bits: pyotp refuses it
    with pytest.raises(ValueError):
        pyotp.TOTP(short).now()
    key = base64.b32decode(short)
    import hmac
    import struct

    mac = hmac.new(key, struct.pack(">Q", 1234567890 // 30), hashlib.sha1).digest()
    offset = mac[-1] & 0xF
    expected = (int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF) % 10**6
    assert otp.totp(short, 1234567890) == f"{expected:06d}"


def test_agrees_with_pyotp_where_pyotp_accepts():
    secret = pyotp.random_base32(32)
    for digits in (6, 7, 8, 10):
        for alg, fn in (("sha1", hashlib.sha1), ("sha256", hashlib.sha256), ("sha512", hashlib.sha512)):
            for period in (15, 30, 60):
                ref = pyotp.TOTP(secret, digits=digits, digest=fn, interval=period)
                for t in (0, 59, 1700000000, 1700000029):
                    assert otp.totp(secret, t, digits=digits, algorithm=alg, period=period) == ref.at(t)


def test_md5_uses_php_semantics_past_the_digest():
    secret = SHA1_KEY
    key = base64.b32decode(secret)
    import hmac

    seen_high_offset = seen_low_offset = False
    for counter in range(400):
        mac = hmac.new(key, counter.to_bytes(8, "big"), hashlib.md5).digest()
        offset = mac[15] & 0xF
        padded = mac + b"\0\0\0"  # PHP reads missing array entries as 0
        expected = (int.from_bytes(padded[offset : offset + 4], "big") & 0x7FFFFFFF) % 10**6
        assert otp.hotp(secret, counter, algorithm="md5") == f"{expected:06d}"
        seen_high_offset |= offset > 12
        seen_low_offset |= offset <= 12
    assert seen_high_offset and seen_low_offset


def test_steam_code_is_base26_of_the_truncated_value():
    secret = pyotp.random_base32(32)
    for t in (0, 30, 1700000000, 1800000015):
        full = int(otp.hotp(secret, t // 30, digits=10))  # 31-bit value < 10**10: nothing truncated
        chars = []
        for _ in range(5):
            chars.append(otp.STEAM_ALPHABET[full % 26])
            full //= 26
        assert otp.steam(secret, t) == "".join(chars)
        assert otp.code_at(secret, t, otp_type="steamtotp") == "".join(chars)


def test_secret_forms_2fauth_accepts():
    assert otp.totp("jbsw y3dp ehpk 3pxp", 0) == otp.totp("JBSWY3DPEHPK3PXP====", 0)
    with pytest.raises(otp.SecretError):
        otp.decode_secret("not base32!")
    with pytest.raises(otp.SecretError):
        otp.decode_secret("")


def test_hotp_is_not_time_based():
    with pytest.raises(ValueError):
        otp.code_at(SHA1_KEY, 0, otp_type="hotp")
