"""The simulator's 5.4.3 release against the real 2FAuth v5.4.3: the same requests to both, healthy
and under every fault both can make, compared by status, content type and JSON keys.

Every request in the tables of the fixture's README (shared/real-2fauth/README.md, "Behaviour of
this real version") is here, so the simulator cannot drift from the real server unseen.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from monitor import otp, simulator

pytestmark = pytest.mark.real2fauth

BAD_TOKEN = "not-a-valid-token"  # noqa: S105


@dataclass
class Target:
    """One server under comparison: its URL, a token it accepts, its canary's id and secret."""

    name: str
    url: str
    token: str
    account_id: int
    secret: str

    def send(self, req: Request) -> httpx.Response:
        headers = dict(req.headers)
        if req.accept_json:
            headers.setdefault("Accept", "application/json")
        if req.auth == "token":
            headers["Authorization"] = f"Bearer {self.token}"
        elif req.auth == "bad":
            headers["Authorization"] = f"Bearer {BAD_TOKEN}"
        path = req.path.replace("{id}", str(self.account_id))
        body = req.body(self) if callable(req.body) else req.body
        return httpx.request(req.method, self.url + path, headers=headers, json=body, timeout=15)


@dataclass
class Request:
    method: str
    path: str
    auth: str = "token"  # token | bad | none
    accept_json: bool = True
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


def shape(resp: httpx.Response) -> tuple[int, str, frozenset[str] | None]:
    """What must agree: status, content type (without parameters), and the JSON's key paths."""
    ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    keys = None
    if ctype == "application/json":
        keys = frozenset(_paths(resp.json()))
    return resp.status_code, ctype, keys


def _paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield f"{prefix}{key}"
            yield from _paths(inner, f"{prefix}{key}.")
    elif isinstance(value, list) and value:
        yield from _paths(value[0], f"{prefix}[].")


def compare(real: Target, sim: Target, requests: list[Request]) -> None:
    differences = []
    for req in requests:
        got_real, got_sim = shape(real.send(req)), shape(sim.send(req))
        if got_real != got_sim:
            differences.append(
                f"{req.method} {req.path} ({req.auth}): real {got_real} != simulator {got_sim}"
            )
    assert not differences, "\n".join(differences)


def uri(target: Target) -> dict[str, str]:
    return {"uri": f"otpauth://totp/Canary:canary?secret={target.secret}&issuer=Canary"}


def params(target: Target, **extra: Any) -> dict[str, Any]:
    return {
        "otp_type": "totp",
        "secret": target.secret,
        "algorithm": "sha1",
        "digits": 6,
        "period": 30,
        **extra,
    }


def md5_secret(offsets: range) -> str:
    """A secret whose md5 truncation offset is in `offsets` for this 30 s step and the next two."""
    now = int(time.time())
    while True:
        secret = base64.b32encode(secrets.token_bytes(20)).decode()
        if all(otp.md5_offset(secret, now + 30 * k) in offsets for k in range(3)):
            return secret


def md5_body(secret: str) -> dict[str, Any]:
    return {
        "otp_type": "totp",
        "secret": secret,
        "algorithm": "md5",
        "digits": 6,
        "period": 30,
        "account": "x",
    }


def healthy_requests() -> list[Request]:
    """Every request of the README's first table but the 61st (the rate limit has its own test)."""
    md5_ok, md5_short = md5_secret(range(0, 13)), md5_secret(range(13, 16))
    return [
        Request("GET", "/up", auth="none", accept_json=False),
        Request("GET", "/live", auth="none", accept_json=False),
        Request("GET", "/ready", auth="none", accept_json=False),
        Request("GET", "/live", auth="none"),
        Request("GET", "/api/v1/nonexistent"),
        Request("GET", "/api/v1/nonexistent", auth="none"),
        Request("POST", "/api/v1/nonexistent", body={}),
        Request("GET", "/api/v1/twofaccounts/count"),
        Request("POST", "/api/v1/twofaccounts/otp", body=uri),
        Request("POST", "/api/v1/twofaccounts/otp", body=params),
        Request("POST", "/api/v1/twofaccounts/otp", body=lambda t: params(t, account="x")),
        Request("POST", "/api/v1/twofaccounts/otp", body=md5_body(md5_ok)),
        Request("POST", "/api/v1/twofaccounts/otp", body=md5_body(md5_short)),
        Request("GET", "/api/v1/twofaccounts?ids={id}&withOtp=1"),
        Request("GET", "/api/v1/twofaccounts/{id}/otp"),
        Request("GET", "/api/v1/twofaccounts/999999/otp"),
        Request("GET", "/api/v1/twofaccounts/{id}"),
        Request("GET", "/api/v1/user"),
        Request("GET", "/api/v1/user", auth="bad"),
        Request("GET", "/api/v1/user", auth="none"),
        Request("GET", "/api/v1/user", auth="none", accept_json=False),
        Request("GET", "/api/v1/settings/useEncryption"),
    ]


MAINTENANCE_REQUESTS = [
    Request("GET", "/up", auth="none", accept_json=False),
    Request("GET", "/up", auth="none"),
    Request("GET", "/api/v1/user"),
    Request("GET", "/api/v1/twofaccounts/{id}/otp"),
    Request("GET", "/", auth="none", accept_json=False),
    Request("GET", "/live", auth="none", accept_json=False),
]
AFTER_MAINTENANCE = [
    Request("GET", "/up", auth="none", accept_json=False),
    Request("GET", "/api/v1/user"),
    Request("GET", "/", auth="none", accept_json=False),
]
APP_KEY_REQUESTS = [
    Request("GET", "/api/v1/twofaccounts?ids={id}&withOtp=1"),
    Request("GET", "/api/v1/twofaccounts/{id}"),
    Request("GET", "/api/v1/twofaccounts/{id}/otp"),
    Request("GET", "/api/v1/user"),
    Request("GET", "/up", auth="none", accept_json=False),
]


def targets(real, sim_handle) -> tuple[Target, Target]:
    return (
        Target("real", real.url, real.token, real.account_id, real.secret),
        Target(
            "simulator",
            sim_handle.url,
            simulator.DEFAULT_TOKEN,
            simulator.CANARY_ACCOUNT_ID,
            simulator.DEFAULT_CANARY_SECRET,
        ),
    )


@pytest.fixture
def sim_v5():
    """start(encryption) -> the simulator's 5.4.3 release; stopped after the test."""
    started = []

    def start(*, encryption: bool = False):
        handle = simulator.start_in_thread(release="5.4.3", encryption=encryption)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture(scope="module")
def diff_plain(real_factory):
    return real_factory()


@pytest.fixture(scope="module")
def diff_encrypted(real_factory):
    return real_factory(encryption=True)


@pytest.mark.parametrize("encryption", [False, True], ids=["clear", "encrypted"])
def test_healthy_answers_agree(encryption, diff_plain, diff_encrypted, sim_v5):
    real = diff_encrypted if encryption else diff_plain
    compare(*targets(real, sim_v5(encryption=encryption)), healthy_requests())


def canary_uri(target: Target) -> dict[str, str]:
    """What `2fauth-monitor init --create-canary` sends (monitor/init/talk.py)."""
    from monitor.init.talk import canary_uri as init_uri

    return {"uri": init_uri(target.secret)}


STORE_REQUESTS = [
    Request("POST", "/api/v1/twofaccounts", body=canary_uri),
    Request("POST", "/api/v1/twofaccounts", body={"uri": "not-an-otpauth-uri"}),
    Request("POST", "/api/v1/twofaccounts", body={}),
    Request("POST", "/api/v1/twofaccounts", auth="bad", body=canary_uri),
]


@pytest.mark.parametrize("encryption", [False, True], ids=["clear", "encrypted"])
def test_storing_an_account_agrees(encryption, diff_plain, diff_encrypted, sim_v5):
    """The account creation `init` relies on: 201 with the account (its secret included), or 422/401."""
    real = diff_encrypted if encryption else diff_plain
    compare(*targets(real, sim_v5(encryption=encryption)), STORE_REQUESTS)


@pytest.mark.parametrize("encryption", [False, True], ids=["clear", "encrypted"])
def test_app_key_changed_answers_agree(encryption, diff_plain, diff_encrypted, sim_v5):
    real = diff_encrypted if encryption else diff_plain
    handle = sim_v5(encryption=encryption)
    handle.set_faults(["app_key"])
    old = real.app_key()
    real.set_app_key()
    try:
        compare(*targets(real, handle), APP_KEY_REQUESTS)
    finally:
        real.set_app_key(old)
    handle.set_faults([])
    compare(*targets(real, handle), APP_KEY_REQUESTS[:1])  # the old key back: codes again


def test_maintenance_answers_agree(diff_plain, sim_v5):
    handle = sim_v5()
    handle.set_faults(["maintenance"])
    diff_plain.artisan("down")
    try:
        compare(*targets(diff_plain, handle), MAINTENANCE_REQUESTS)
    finally:
        diff_plain.artisan("up")
    handle.set_faults([])
    compare(*targets(diff_plain, handle), AFTER_MAINTENANCE)


def test_database_gone_answers_agree(diff_plain, sim_v5):
    handle = sim_v5()
    handle.set_faults(["db_down"])
    away = diff_plain.database.with_suffix(".away")
    diff_plain.database.rename(away)
    try:
        compare(
            *targets(diff_plain, handle),
            [
                Request("GET", "/up", auth="none", accept_json=False),
                Request("GET", "/api/v1/user"),
                Request("GET", "/api/v1/twofaccounts/count"),
                Request("GET", "/api/v1/twofaccounts/{id}/otp"),
            ],
        )
    finally:
        away.rename(diff_plain.database)


def test_clock_revoked_token_rate_limit_and_stop_agree(real_factory, sim_v5):
    """The faults that cannot be undone cheaply, in an order where each leaves the next intact."""
    real = real_factory()
    handle = sim_v5()
    real_t, sim_t = targets(real, handle)
    # the clock moved: the same answers, only the times differ
    real.restart(faketime="+120s")
    handle.set_faults(["clock_skew"])
    compare(
        real_t, sim_t, [Request("POST", "/api/v1/twofaccounts/otp", body=uri), Request("GET", "/up", "none")]
    )
    real.restart()
    handle.set_faults([])
    # a token revoked in 2FAuth answers like a token it never issued
    assert real.revoke_all_tokens()
    sim_t.token = BAD_TOKEN
    compare(real_t, sim_t, [Request("GET", "/api/v1/user")])
    # THROTTLE_API exhausted (401 answers count too): the 429 and its headers
    for target in (real_t, sim_t):
        for _ in range(70):
            last = target.send(Request("GET", "/api/v1/twofaccounts/count"))
            if last.status_code == 429:
                break
        assert last.status_code == 429, (target.name, last.status_code)
        assert last.json() == {"message": "Too Many Attempts."}
        assert last.headers["x-ratelimit-limit"] == "60" and last.headers["x-ratelimit-remaining"] == "0"
        # at most a minute, plus the 120 s the moved clock left in the real limiter's window
        # (its entries written under the later clock stay until that time has passed)
        assert 1 <= int(last.headers["retry-after"]) <= (180 if target is real_t else 60)
        assert int(last.headers["x-ratelimit-reset"]) > time.time()
    compare(
        real_t,
        sim_t,
        [
            Request("GET", "/api/v1/twofaccounts/count"),
            Request("GET", "/api/v1/user", auth="bad"),
            Request("GET", "/up", auth="none", accept_json=False),  # not throttled
            Request("GET", "/live", auth="none", accept_json=False),
        ],
    )
    # the server stopped: both refuse the connection
    real.stop()
    handle.set_faults(["down"])
    for target in (real_t, sim_t):
        with pytest.raises(httpx.ConnectError):
            target.send(Request("GET", "/up", auth="none"))
