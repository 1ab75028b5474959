"""`POST /api/v1/twofaccounts/otp`: read either body form, validate it as 2FAuth does, compute the code.

2FAuth validates the parameter form with its store rules (without the lower-casing step), and
the URI form with a regex before otphp parses the URI. A secret that is not base32 fails
validation (422) in the parameter form, but only fails at generation time (400) in the URI form.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from monitor.otp import (
    MD5_SHORT_OFFSETS,
    Algorithm,
    OtpType,
    SecretError,
    code_at,
    decode_secret,
    hotp,
    md5_offset,
)

from .faults import Instance, wrong_code
from .responses import NOT_BASE32, ApiError, invalid_otp_parameters, validation_error

ALGORITHMS = ("sha1", "sha256", "sha512", "md5")
OTP_TYPES = ("totp", "hotp", "steamtotp")
URI_PATTERN = re.compile(r"^otpauth://[h,t]otp/", re.IGNORECASE)
BASE32_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class OtpParams:
    """What a code is computed from, after 2FAuth's defaults and Steam forcing."""

    otp_type: OtpType
    secret: str
    digits: int = 6
    algorithm: Algorithm = "sha1"
    period: int = 30
    counter: int = 0


def clean_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """Laravel's TrimStrings and ConvertEmptyStringsToNull, on top-level values."""
    cleaned: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, str):
            value = value.strip() or None
        cleaned[key] = value
    return cleaned


def params_from_inputs(inputs: dict[str, Any]) -> OtpParams:
    """Read the request inputs (query and body merged) in either form; raise ApiError when 2FAuth would."""
    if "uri" not in inputs:
        return params_from_parameters(inputs)
    if (len(inputs) == 2 and "custom_otp" not in inputs) or len(inputs) > 2:
        reason = "The uri parameter must be provided alone or only with the 'custom_otp' parameter"
        raise ApiError(400, {"message": "bad request", "reason": {"uri": reason}})
    return _params_from_uri(inputs)


def _is_base32(secret: str) -> bool:
    padded = secret.upper().rstrip("=")
    if not padded or not set(padded) <= BASE32_CHARS:
        return False
    try:
        decode_secret(padded)
    except SecretError:
        return False
    return True


def _as_int(value: Any) -> int | None:
    """PHP's FILTER_VALIDATE_INT, roughly: ints, integral floats and integer strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    return None


def _check_string(errors: dict[str, list[str]], inputs: dict[str, Any], name: str, *, required: bool) -> Any:
    label = name.replace("_", " ")
    value = inputs.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            errors[name] = [f"The {label} field is required."]
        return None
    if not isinstance(value, str):
        errors[name] = [f"The {label} field must be a string."]
        return None
    return value


def _check_int(
    errors: dict[str, list[str]], inputs: dict[str, Any], name: str, low: int, high: int | None
) -> int | None:
    label = name.replace("_", " ")
    value = inputs.get(name)
    if value is None:
        return None
    number = _as_int(value)
    if number is None:
        errors[name] = [f"The {label} field must be an integer."]
    elif high is not None and not low <= number <= high:
        errors[name] = [f"The {label} field must be between {low} and {high}."]
    elif number < low:
        errors[name] = [f"The {label} field must be at least {low}."]
    return number


def params_from_parameters(inputs: dict[str, Any]) -> OtpParams:
    errors: dict[str, list[str]] = {}
    service = _check_string(errors, inputs, "service", required=False)
    if service is not None and ":" in service:
        errors["service"] = ["The service field must not contain a colon."]
    account = _check_string(errors, inputs, "account", required=True)
    if account is not None and ":" in account:
        errors["account"] = ["The account field must not contain a colon."]
    _check_string(errors, inputs, "icon", required=False)
    _check_int(errors, inputs, "group_id", 0, None)
    otp_type = _check_string(errors, inputs, "otp_type", required=True)
    if otp_type is not None and otp_type not in OTP_TYPES:
        errors["otp_type"] = ["The otp type field is not a supported type."]
    secret = inputs.get("secret", _MISSING)
    if secret is not _MISSING and not isinstance(secret, str):
        errors["secret"] = ["The secret field must be a string."]
    elif isinstance(secret, str) and not _is_base32(secret):
        errors["secret"] = ["The secret field must be a base32 encoded string."]
    digits = _check_int(errors, inputs, "digits", 5, 10)
    algorithm = _check_string(errors, inputs, "algorithm", required=False)
    if algorithm is not None and algorithm not in ALGORITHMS:
        errors["algorithm"] = ["The selected algorithm is invalid."]
    period = _check_int(errors, inputs, "period", 1, None)
    counter = _check_int(errors, inputs, "counter", 0, None)
    if errors:
        raise validation_error(errors)
    if not isinstance(secret, str):
        secret = _random_secret()  # 2FAuth generates one when the secret is left out
    if otp_type == "steamtotp" or (service or "").lower() == "steam":
        return OtpParams("steamtotp", secret, digits=5)
    return OtpParams(
        cast(OtpType, otp_type),
        secret,
        digits=digits or 6,
        algorithm=cast(Algorithm, algorithm or "sha1"),
        period=period or 30,
        counter=counter or 0,
    )


def _params_from_uri(inputs: dict[str, Any]) -> OtpParams:
    uri = inputs.get("uri")
    custom_otp = inputs.get("custom_otp")
    errors: dict[str, list[str]] = {}
    if uri is None:
        errors["uri"] = ["The uri field is required."]
    elif not isinstance(uri, str):
        errors["uri"] = ["The uri field must be a string."]
    elif not URI_PATTERN.match(uri):
        errors["uri"] = ["The uri field is not a valid otpauth URI."]
    if "custom_otp" in inputs and custom_otp != "steamtotp":
        errors["custom_otp"] = ["The selected custom otp is invalid."]
    if errors:
        raise validation_error(errors)
    return parse_otpauth_uri(cast(str, uri), steam=custom_otp == "steamtotp")


def parse_otpauth_uri(uri: str, *, steam: bool = False) -> OtpParams:
    """Parse an otpauth:// URI the way otphp accepts it; 422 on `uri` or `label` when it does not."""
    invalid = validation_error({"uri": ["The uri field is not a valid otpauth URI."]})
    parts = urlsplit(uri.replace("#", "%23"))
    query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    otp_type = parts.netloc.lower()
    secret = query.get("secret")
    algorithm = query.get("algorithm", "sha1").lower()
    digits, period, counter = (
        _as_int(query.get(key, default)) for key, default in (("digits", 6), ("period", 30), ("counter", 0))
    )
    if otp_type not in ("totp", "hotp") or not secret or algorithm not in ALGORITHMS:
        raise invalid
    if (
        digits is None
        or not 1 <= digits <= 10
        or period is None
        or period < 1
        or counter is None
        or counter < 0
    ):
        raise invalid
    label = unquote(parts.path.lstrip("/"))
    if not label:
        raise validation_error({"label": ["The uri must have a label."]})
    issuer = query.get("issuer") or (label.split(":", 1)[0] if ":" in label else "")
    if steam or issuer.lower() == "steam":
        return OtpParams("steamtotp", secret, digits=5)
    return OtpParams(cast(OtpType, otp_type), secret, digits, cast(Algorithm, algorithm), period, counter)


def label_names(uri: str) -> tuple[str | None, str]:
    """(service, account) a stored account gets from an otpauth URI: the issuer (or the label's
    part before a colon) and the rest of the label."""
    parts = urlsplit(uri.replace("#", "%23"))
    query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    label = unquote(parts.path.lstrip("/"))
    prefix, _, account = label.rpartition(":")
    return query.get("issuer") or prefix or None, account


def _random_secret() -> str:
    return "".join(secrets.choice(sorted(BASE32_CHARS)) for _ in range(32))


def generate(params: OtpParams, instance: Instance, *, at: int | None = None) -> dict[str, Any]:
    """The 200 body of an OTP request, on the instance's clock and with its faults applied."""
    if params.algorithm == "md5" and instance.has("md5_refused"):
        raise invalid_otp_parameters("The md5 algorithm is not supported")
    if not _is_base32(params.secret):
        raise ApiError(400, NOT_BASE32)
    adjust = wrong_code if instance.has("wrong_codes") else str
    if params.algorithm == "md5" and instance.v5:
        # otphp reads 4 bytes from the truncation offset; past 12 it runs off the 16-byte md5
        # digest ("Undefined array key 16") and 2FAuth 5.4.3 answers 400 for a valid secret
        moment, step = (
            (params.counter, 1)
            if params.otp_type == "hotp"
            else (int(instance.now()) if at is None else at, params.period)
        )
        if md5_offset(params.secret, moment, period=step) in MD5_SHORT_OFFSETS:
            raise ApiError(400, NOT_BASE32)
    if params.otp_type == "hotp":
        password = hotp(params.secret, params.counter, digits=params.digits, algorithm=params.algorithm)
        return {"password": adjust(password), "otp_type": "hotp", "counter": params.counter + 1}
    generated_at = int(instance.now()) if at is None else at
    period = 30 if params.otp_type == "steamtotp" else params.period

    def code(at: int) -> str:
        return adjust(
            code_at(
                params.secret,
                at,
                otp_type=params.otp_type,
                digits=params.digits,
                algorithm=params.algorithm,
                period=period,
            )
        )

    return {
        "password": code(generated_at),
        "otp_type": params.otp_type,
        "generated_at": generated_at,
        "period": period,
        "next_password": code((generated_at // period + 1) * period),
    }
