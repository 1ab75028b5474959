"""The `/api/v1` group: routing, rate limit, bearer auth, then the few endpoints the monitor uses.

Order per request, as in 2FAuth: match the route (the unknown-endpoint fallback is inside the
group), count the hit against `THROTTLE_API`, authenticate, then run the endpoint. A database
outage shows only once something reads the database, so bad tokens still get 401.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .accounts import Account, user_json
from .faults import Instance
from .otp_params import (
    OtpParams,
    clean_inputs,
    generate,
    label_names,
    params_from_inputs,
    params_from_parameters,
    parse_otpauth_uri,
)
from .pages import spa_page
from .responses import (
    CANNOT_DECIPHER,
    CANNOT_DECIPHER_V5,
    NOT_FOUND,
    SERVER_ERROR,
    TOO_MANY_ATTEMPTS,
    UNAUTHENTICATED,
    UNKNOWN_ENDPOINT,
    ApiError,
    validation_error,
)
from .tokens import token_is_valid

Body = dict[str, Any] | list[Any]
Handler = Callable[[Request, Instance, dict[str, str]], Awaitable[Body]]
RATE_LIMITED_RETRY_AFTER = 30
IDS_PATTERN = re.compile(r"^\d+(,\d+)*$")


def _truthy(value: str | None) -> bool:
    """PHP's FILTER_VALIDATE_BOOLEAN on a query value."""
    return (value or "").strip().lower() in ("1", "true", "on", "yes")


def _find(instance: Instance, raw_id: str) -> Account:
    account = instance.accounts.get(int(raw_id)) if raw_id.isdigit() else None
    if account is None:
        raise ApiError(404, NOT_FOUND)
    return account


def _params(account: Account) -> OtpParams:
    return OtpParams(
        account.otp_type,
        account.secret,
        digits=account.digits,
        algorithm=account.algorithm,
        period=account.period or 30,
        counter=account.counter or 0,
    )


def _read(request: Request, instance: Instance, account: Account, *, secret_default: bool, at: int) -> Body:
    """One account as TwoFAccountReadResource renders it, with `otp` when `withOtp` is present."""
    query = request.query_params
    with_secret = _truthy(query["withSecret"]) if "withSecret" in query else secret_default
    body = account.to_json(with_secret=with_secret, indecipherable=instance.undecipherable())
    if "withOtp" in query and account.otp_type != "hotp":
        if instance.undecipherable():
            raise _cannot_decipher(instance)
        otp = generate(_params(account), instance, at=at)
        keys = ("password", "generated_at") if instance.v5 else ("password", "generated_at", "next_password")
        body["otp"] = {key: otp[key] for key in keys}
    return body


def _cannot_decipher(instance: Instance) -> ApiError:
    return ApiError(400, CANNOT_DECIPHER_V5 if instance.v5 else CANNOT_DECIPHER)


def _without_next(instance: Instance, otp: dict[str, Any]) -> dict[str, Any]:
    """2FAuth 5 has no next_password (it came with v6)."""
    if instance.v5:
        otp.pop("next_password", None)
    return otp


async def _user(request: Request, instance: Instance, params: dict[str, str]) -> Body:
    return user_json(v5=instance.v5)


async def _index(request: Request, instance: Instance, params: dict[str, str]) -> Body:
    accounts = list(instance.accounts.values())
    if "ids" in request.query_params:
        ids = request.query_params["ids"].strip()
        if not ids:
            raise validation_error({"ids": ["The ids field is required."]})
        if not IDS_PATTERN.match(ids):
            raise validation_error({"ids": ["The ids must be comma-separated integers, no trailing comma."]})
        wanted = {int(part) for part in ids.split(",")}
        accounts = [account for account in accounts if account.id in wanted]
    at = int(instance.now())  # every OTP of one listing shares one timestamp
    return [_read(request, instance, account, secret_default=False, at=at) for account in accounts]


async def _show(request: Request, instance: Instance, params: dict[str, str]) -> Body:
    account = _find(instance, params["id"])
    return _read(request, instance, account, secret_default=True, at=int(instance.now()))


async def _count(request: Request, instance: Instance, params: dict[str, str]) -> Body:
    owned = len(instance.accounts)
    if instance.v5:
        return {"count": owned}  # v5 and v6; {"owned", "shared", "total"} from v7
    return {"owned": owned, "shared": 0, "total": owned}


async def _stored_otp(request: Request, instance: Instance, params: dict[str, str]) -> Body:
    account = _find(instance, params["id"])
    if instance.undecipherable():
        raise _cannot_decipher(instance)
    otp = _without_next(instance, generate(_params(account), instance))
    if account.otp_type == "hotp":
        # Like 2FAuth: reading a HOTP code moves the stored counter on.
        instance.accounts[account.id] = account.with_counter(otp["counter"])
    return otp


async def _setting(request: Request, instance: Instance, params: dict[str, str]) -> Body:
    """`GET settings/{name}` (administrators only; the simulated user is one)."""
    if params["name"] != "useEncryption":
        raise ApiError(404, NOT_FOUND)
    return {"key": "useEncryption", "value": instance.config.encryption}


async def _inputs(request: Request) -> dict[str, Any]:
    """Query and body merged, like Laravel's `$request->all()`."""
    inputs: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if "/json" in content_type or "+json" in content_type:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = {}
        if isinstance(body, dict):
            inputs.update(body)
    elif "form" in content_type:
        form = await request.form()
        inputs.update({key: value for key, value in form.items() if isinstance(value, str)})
    return clean_inputs(inputs)


async def _new_otp(request: Request, instance: Instance, params: dict[str, str]) -> Body:
    return _without_next(instance, generate(params_from_inputs(await _inputs(request)), instance))


async def _store(request: Request, instance: Instance, params: dict[str, str]) -> Body:
    """`POST twofaccounts`: store an account from an otpauth URI or the parameter form; 201 with it,
    the secret included, upper-cased and '='-padded as 2FAuth keeps it (seen on the real v5.4.3)."""
    inputs = await _inputs(request)
    if isinstance(inputs.get("uri"), str):
        uri = inputs["uri"]
        otp = parse_otpauth_uri(uri, steam=inputs.get("custom_otp") == "steamtotp")
        service, name = label_names(uri)
    else:
        otp = params_from_parameters(inputs)
        service, name = inputs.get("service"), str(inputs.get("account"))
    secret = otp.secret.upper().rstrip("=")
    secret += "=" * (-len(secret) % 8)
    account = Account(
        max(instance.accounts, default=0) + 1,
        otp.otp_type,
        name,
        service,
        secret,
        digits=otp.digits,
        algorithm=otp.algorithm,
        period=None if otp.otp_type == "hotp" else otp.period,
        counter=otp.counter if otp.otp_type == "hotp" else None,
    )
    instance.accounts[account.id] = account
    return account.to_json(with_secret=True, indecipherable=False)


# (method, pattern, handler, needs a token); the first full match wins, as in routes/api/v1.php.
ROUTES: list[tuple[str, re.Pattern[str], Handler, bool]] = [
    ("GET", re.compile(r"user"), _user, True),
    ("GET", re.compile(r"twofaccounts"), _index, True),
    ("GET", re.compile(r"twofaccounts/count"), _count, True),
    ("GET", re.compile(r"twofaccounts/(?P<id>[0-9]+)/otp"), _stored_otp, True),
    ("POST", re.compile(r"twofaccounts/otp"), _new_otp, True),
    ("POST", re.compile(r"twofaccounts"), _store, True),
    ("GET", re.compile(r"twofaccounts/(?P<id>[^/]+)"), _show, True),
    ("GET", re.compile(r"settings/(?P<name>[^/]+)"), _setting, True),
]
CREATED = {_store}  # handlers that answer 201
HOTP_READ = re.compile(r"twofaccounts/(?P<id>[0-9]+)/otp")


def _match(method: str, path: str) -> tuple[Handler, dict[str, str]] | list[str] | None:
    """The handler and its parameters, or the allowed methods (405), or None (unknown endpoint)."""
    method = "GET" if method == "HEAD" else method
    allowed = []
    for route_method, pattern, handler, _ in ROUTES:
        found = pattern.fullmatch(path)
        if found:
            if route_method == method:
                return handler, found.groupdict()
            allowed.append(route_method)
    return allowed or None


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _throttle(request: Request, instance: Instance) -> tuple[dict[str, str], Response | None]:
    """Rate-limit headers for the answer, and the 429 itself when over the limit."""
    limit = instance.config.throttle
    if instance.has("rate_limited"):
        reset_at = int(instance.now()) + RATE_LIMITED_RETRY_AFTER
        headers = _limit_headers(limit or 60, 0, RATE_LIMITED_RETRY_AFTER, reset_at)
        return headers, JSONResponse(TOO_MANY_ATTEMPTS, status_code=429)
    if limit <= 0:
        return {}, None
    decision = instance.hit_rate_limit(request.client.host if request.client else "unknown")
    if decision.allowed:
        return _limit_headers(decision.limit, decision.remaining), None
    headers = _limit_headers(decision.limit, 0, decision.retry_after, decision.reset_at)
    return headers, JSONResponse(TOO_MANY_ATTEMPTS, status_code=429)


def _limit_headers(limit: int, remaining: int, retry_after: int = 0, reset_at: int = 0) -> dict[str, str]:
    headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining)}
    if retry_after:
        headers.update({"Retry-After": str(retry_after), "X-RateLimit-Reset": str(reset_at)})
    return headers


async def _answer(request: Request, instance: Instance, path: str) -> Response:
    if path == "user/name" and request.method in ("GET", "HEAD"):
        headers = {"Deprecation": "Tue, 21 Mar 2023 00:00:00 GMT"}
        return JSONResponse({"deprecation": True}, headers=headers)
    matched = _match(request.method, path)
    if matched is None:
        return JSONResponse(UNKNOWN_ENDPOINT, status_code=404)
    if isinstance(matched, list):
        supported = ", ".join([*matched, "HEAD"] if "GET" in matched else matched)
        message = f"The {request.method} method is not supported for route api/v1/{path}. "
        return JSONResponse({"message": message + f"Supported methods: {supported}."}, status_code=405)
    token = _bearer(request)
    if token is None or not token_is_valid(token, instance.config.tokens, instance.now()):
        return JSONResponse(UNAUTHENTICATED, status_code=401)
    if instance.has("db_down"):
        return JSONResponse(SERVER_ERROR, status_code=500)
    handler, params = matched
    try:
        body = await handler(request, instance, params)
        return JSONResponse(body, status_code=201 if handler in CREATED else 200)
    except ApiError as error:
        return error.response()


def _count_hotp_read(instance: Instance, method: str, path: str) -> None:
    found = HOTP_READ.fullmatch(path)
    if found and method in ("GET", "HEAD"):
        account = instance.accounts.get(int(found["id"]))
        if account is not None and account.otp_type == "hotp":
            instance.hotp_reads += 1


async def api_endpoint(request: Request) -> Response:
    """Everything under `/api/v1/`."""
    instance: Instance = request.scope["sim.instance"]
    path = request.path_params.get("rest", "").strip("/")
    _count_hotp_read(instance, request.method, path)
    if instance.v5 and _match(request.method, path) is None:
        # 2FAuth 5 has no API fallback route: GET falls into the web app's catch-all, other
        # methods fail at routing (405, before the rate limiter, so not counted)
        if request.method in ("GET", "HEAD"):
            return spa_page(instance)
        message = f"The {request.method} method is not supported for route api/v1/{path}. "
        return JSONResponse({"message": message + "Supported methods: GET, HEAD."}, status_code=405)
    headers, refusal = _throttle(request, instance)
    response = refusal or await _answer(request, instance, path)
    if instance.has("bad_json"):
        # What a PHP warning printed before the JSON looks like to a client.
        warning = (
            b"<br />\n<b>Warning</b>:  Undefined array key 0 in /srv/app/Http/Kernel.php on line 42<br />\n"
        )
        response = Response(
            warning + bytes(response.body), response.status_code, media_type="application/json"
        )
    response.headers.update({**headers, "Cache-Control": "no-cache, private"})
    return response
