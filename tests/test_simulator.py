"""The 2FAuth simulator over real loopback HTTP: pages, API, OTP codes, rate limit, every fault."""

from __future__ import annotations

import email.utils
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from monitor.otp import code_at, hotp
from monitor.simulator import (
    CANARY_ACCOUNT_ID,
    DEFAULT_CANARY_SECRET,
    DEFAULT_HOTP_SECRET,
    DEFAULT_STEAM_SECRET,
    DEFAULT_TOKEN,
    DEFAULT_USER_EMAIL,
    FAULTS,
    HOTP_ACCOUNT_ID,
    STEAM_ACCOUNT_ID,
    make_token,
    start_in_thread,
)

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}


@pytest.fixture(scope="module")
def server():
    with start_in_thread(delay=0.3) as handle:
        yield handle


@pytest.fixture
def sim(server):
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def client(sim):
    with httpx.Client(base_url=sim.url, headers=AUTH, timeout=5) as http:
        yield http


def new_otp(client, **body):
    return client.post("/api/v1/twofaccounts/otp", json=body)


# Pages and the health-endpoint trap


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_up_is_a_small_html_page(client, method):
    response = client.request(method, "/up")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    if method == "GET":
        assert "2FAuth up" in response.text
        assert "HTTP request received." in response.text
        assert "rendered in" in response.text


@pytest.mark.parametrize("path", ["/live", "/ready", "/health", "/", "/login", "/api/v2/anything"])
def test_upstream_unknown_web_paths_are_the_spa_page(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "var appVersion = '8.0.1';" in response.text


def test_version_is_configurable():
    with start_in_thread(version="7.2.3") as sim:
        assert "var appVersion = '7.2.3';" in httpx.get(sim.url + "/").text


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/twofaccounts/abc/otp", "/api/v1"])
def test_unknown_api_endpoint_is_404_with_the_typo(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"message": "unknowkn endpoint"}


def test_every_response_has_a_date_header(client):
    for path in ("/up", "/", "/api/v1/user", "/api/v1/nope"):
        date = email.utils.parsedate_to_datetime(client.get(path).headers["date"])
        assert abs(date.timestamp() - time.time()) < 5


def test_probes_flavour_answers_live_and_ready():
    with start_in_thread(flavour="probes") as sim:
        live = httpx.get(sim.url + "/live")
        assert live.status_code == 200
        assert live.headers["content-type"] == "application/health+json"
        assert live.json() == {"status": "pass"}
        ready = httpx.get(sim.url + "/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "pass"
        assert ready.json()["checks"]["database:connections"][0]["componentName"] == "database"

        sim.set_faults(["db_down"])
        ready = httpx.get(sim.url + "/ready")
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/health+json"
        assert ready.json()["status"] == "fail"
        assert ready.json()["checks"]["database:connections"][0]["status"] == "fail"
        assert httpx.get(sim.url + "/up").status_code == 200

        sim.set_faults(["ready_warn"])
        ready = httpx.get(sim.url + "/ready")
        assert (ready.status_code, ready.json()["status"]) == (200, "warn")


# Authentication and the user


def test_user_endpoint(client):
    response = client.get("/api/v1/user")
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == DEFAULT_USER_EMAIL
    assert set(body) == {
        "id",
        "name",
        "email",
        "oauth_provider",
        "authenticated_by_proxy",
        "preferences",
        "appSettings",
        "is_admin",
    }
    assert body["appSettings"] == {"enableSharing": False, "enableAllUsersSharingScope": False}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {DEFAULT_TOKEN}"}],
    ids=["missing", "unknown", "not-bearer"],
)
def test_bad_tokens_get_401(sim, headers):
    response = httpx.get(sim.url + "/api/v1/user", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}


def test_tokens_expire_and_plain_strings_may_be_valid():
    expiry = int(time.time()) + 2
    soon = make_token(expiry)
    expired = make_token(int(time.time()) - 10)
    with start_in_thread(tokens=(soon, expired, "plain-token")) as sim:

        def status(token):
            return httpx.get(
                sim.url + "/api/v1/user", headers={"Authorization": f"Bearer {token}"}
            ).status_code

        assert soon.startswith("eyJ") and soon.count(".") == 2
        assert (status(soon), status(expired), status("plain-token"), status(DEFAULT_TOKEN)) == (
            200,
            401,
            200,
            401,
        )
        time.sleep(max(0.0, expiry - time.time()) + 0.05)
        assert status(soon) == 401


# OTP generation


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512", "md5"])
@pytest.mark.parametrize("digits", [5, 6, 7, 8, 9, 10])
def test_totp_codes_match_monitor_otp(client, algorithm, digits):
    response = new_otp(
        client,
        account="canary",
        otp_type="totp",
        secret=DEFAULT_CANARY_SECRET,
        digits=digits,
        algorithm=algorithm,
        period=30,
    )
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["password", "otp_type", "generated_at", "period", "next_password"]
    at = body["generated_at"]
    assert abs(at - time.time()) < 5
    options = {"digits": digits, "algorithm": algorithm, "period": 30}
    assert body["password"] == code_at(DEFAULT_CANARY_SECRET, at, **options)
    assert body["next_password"] == code_at(DEFAULT_CANARY_SECRET, (at // 30 + 1) * 30, **options)
    assert (body["otp_type"], body["period"]) == ("totp", 30)


def test_totp_defaults_and_custom_period(client):
    body = new_otp(client, account="a", otp_type="totp", secret=DEFAULT_CANARY_SECRET).json()
    assert body["password"] == code_at(DEFAULT_CANARY_SECRET, body["generated_at"])
    body = new_otp(client, account="a", otp_type="totp", secret=DEFAULT_CANARY_SECRET, period=7).json()
    assert body["period"] == 7
    assert body["password"] == code_at(DEFAULT_CANARY_SECRET, body["generated_at"], period=7)


@pytest.mark.parametrize(
    "body",
    [
        {
            "account": "s",
            "otp_type": "steamtotp",
            "secret": DEFAULT_STEAM_SECRET,
            "digits": 8,
            "algorithm": "sha512",
        },
        {"account": "s", "otp_type": "totp", "service": "Steam", "secret": DEFAULT_STEAM_SECRET},
        {"uri": f"otpauth://totp/Steam:s?secret={DEFAULT_STEAM_SECRET}", "custom_otp": "steamtotp"},
    ],
    ids=["type", "service", "uri"],
)
def test_steam_forces_five_characters(client, body):
    response = new_otp(client, **body)
    assert response.status_code == 200
    otp = response.json()
    assert (otp["otp_type"], otp["period"], len(otp["password"])) == ("steamtotp", 30, 5)
    assert otp["password"] == code_at(DEFAULT_STEAM_SECRET, otp["generated_at"], otp_type="steamtotp")


def test_hotp_answers_the_sent_counter_plus_one(client):
    otp = new_otp(
        client, account="h", otp_type="hotp", secret=DEFAULT_HOTP_SECRET, counter=41, digits=8
    ).json()
    assert otp == {"password": hotp(DEFAULT_HOTP_SECRET, 41, digits=8), "otp_type": "hotp", "counter": 42}


def test_uri_form(client):
    uri = f"otpauth://totp/Example:canary?secret={DEFAULT_CANARY_SECRET}&algorithm=SHA256&digits=8&period=60"
    otp = new_otp(client, uri=uri).json()
    assert otp["period"] == 60
    assert otp["password"] == code_at(
        DEFAULT_CANARY_SECRET, otp["generated_at"], digits=8, algorithm="sha256", period=60
    )


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"uri": "otpauth://totp/a?secret=JBSWY3DP", "account": "a"}, 400, {"message": "bad request"}),
        (
            {"uri": "otpauth://totp/a?secret=JBSWY3DP", "custom_otp": "x", "y": 1},
            400,
            {"message": "bad request"},
        ),
        ({"uri": "otpauth://totp/?secret=JBSWY3DP"}, 422, {"errors": ["label"]}),
        ({"uri": "https://example.org/"}, 422, {"errors": ["uri"]}),
        ({"uri": "otpauth://totp/a?secret=1!!"}, 400, {"message": "not a valid base32 encoded secret"}),
        ({"account": "a:b", "otp_type": "TOTP"}, 422, {"errors": ["account", "otp_type"]}),
        ({"otp_type": "totp", "secret": "not base32!"}, 422, {"errors": ["account", "secret"]}),
        (
            {"account": "a", "otp_type": "totp", "digits": 4, "algorithm": "sha224"},
            422,
            {"errors": ["digits", "algorithm"]},
        ),
        ({"account": "a", "otp_type": "totp", "period": 0}, 422, {"errors": ["period"]}),
        ({"account": "a", "otp_type": "hotp", "counter": -1}, 422, {"errors": ["counter"]}),
    ],
)
def test_otp_request_errors(client, body, status, expected):
    response = new_otp(client, **body)
    assert response.status_code == status
    answer = response.json()
    if "message" in expected:
        assert answer["message"] == expected["message"]
    if "errors" in expected:
        assert list(answer["errors"]) == expected["errors"]
        assert answer["message"].startswith(answer["errors"][expected["errors"][0]][0])
    if status == 400 and answer["message"] == "bad request":
        assert "uri" in answer["reason"]


def test_missing_secret_generates_one(client):
    response = new_otp(client, account="a", otp_type="totp")
    assert response.status_code == 200
    assert len(response.json()["password"]) == 6


# Stored accounts


def test_stored_totp_otp(client):
    otp = client.get(f"/api/v1/twofaccounts/{CANARY_ACCOUNT_ID}/otp").json()
    assert otp["password"] == code_at(DEFAULT_CANARY_SECRET, otp["generated_at"])


def test_hotp_reads_move_the_counter_and_are_counted(sim, client):
    first = client.get(f"/api/v1/twofaccounts/{HOTP_ACCOUNT_ID}/otp").json()
    second = client.get(f"/api/v1/twofaccounts/{HOTP_ACCOUNT_ID}/otp").json()
    assert (first["counter"], second["counter"]) == (1, 2)
    assert first["password"] == hotp(DEFAULT_HOTP_SECRET, 0)
    assert second["password"] == hotp(DEFAULT_HOTP_SECRET, 1)
    assert client.get(f"/api/v1/twofaccounts/{HOTP_ACCOUNT_ID}").json()["counter"] == 2
    client.get(f"/api/v1/twofaccounts/{CANARY_ACCOUNT_ID}/otp")
    client.get("/api/v1/twofaccounts?withOtp=1")
    assert sim.state()["counters"]["hotp_reads"] == 2


@pytest.mark.parametrize("flag", ["withOtp=1", "withOtp=0", "withOtp"])
def test_with_otp_adds_codes_to_non_hotp_accounts(client, flag):
    accounts = client.get(f"/api/v1/twofaccounts?{flag}").json()
    by_id = {account["id"]: account for account in accounts}
    assert "otp" not in by_id[HOTP_ACCOUNT_ID]
    canary, steam = by_id[CANARY_ACCOUNT_ID]["otp"], by_id[STEAM_ACCOUNT_ID]["otp"]
    assert set(canary) == {"password", "generated_at", "next_password"}
    assert canary["generated_at"] == steam["generated_at"]
    assert canary["password"] == code_at(DEFAULT_CANARY_SECRET, canary["generated_at"])
    assert steam["password"] == code_at(DEFAULT_STEAM_SECRET, steam["generated_at"], otp_type="steamtotp")


def test_listing_filters_and_secrets(client):
    listed = client.get("/api/v1/twofaccounts?ids=1,3").json()
    assert [account["id"] for account in listed] == [1, 3]
    assert all("secret" not in account for account in listed)
    assert client.get("/api/v1/twofaccounts?ids=1&withSecret=1").json()[0]["secret"] == DEFAULT_CANARY_SECRET
    assert client.get("/api/v1/twofaccounts?ids=1,").status_code == 422
    shown = client.get(f"/api/v1/twofaccounts/{CANARY_ACCOUNT_ID}").json()
    assert shown["secret"] == DEFAULT_CANARY_SECRET
    assert "secret" not in client.get(f"/api/v1/twofaccounts/{CANARY_ACCOUNT_ID}?withSecret=0").json()
    assert client.get("/api/v1/twofaccounts/99").json() == {"message": "not found"}
    assert client.get("/api/v1/twofaccounts/99/otp").status_code == 404
    assert client.get("/api/v1/twofaccounts/count").json() == {"owned": 3, "shared": 0, "total": 3}


# Rate limit


def test_rate_limit_trips_after_the_limit():
    with start_in_thread(throttle=3) as sim:
        answers = [
            httpx.get(sim.url + path, headers=AUTH)
            for path in ("/api/v1/user", "/api/v1/nope", "/api/v1/user")
        ]
        assert [r.status_code for r in answers] == [200, 404, 200]
        assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["2", "1", "0"]
        assert httpx.get(sim.url + "/api/v1/user").status_code == 429  # counted before auth
        over = httpx.get(sim.url + "/api/v1/user", headers=AUTH)
        assert over.status_code == 429
        assert over.json() == {"message": "Too Many Attempts."}
        assert 0 < int(over.headers["retry-after"]) <= 60
        assert over.headers["x-ratelimit-limit"] == "3"
        assert over.headers["x-ratelimit-remaining"] == "0"
        assert int(over.headers["x-ratelimit-reset"]) > time.time()
        assert httpx.get(sim.url + "/up").status_code == 200  # web routes are not throttled
        assert httpx.get(sim.url_for("other") + "/api/v1/user", headers=AUTH).status_code == 200


def test_throttle_zero_disables_the_limit():
    with start_in_thread(throttle=0) as sim:
        responses = [httpx.get(sim.url + "/api/v1/user", headers=AUTH) for _ in range(5)]
        assert all(r.status_code == 200 and "x-ratelimit-limit" not in r.headers for r in responses)


# Faults


def test_all_faults_are_documented():
    assert set(FAULTS) == {
        "down",
        "slow",
        "server_error",
        "maintenance",
        "db_down",
        "app_key",
        "clock_skew",
        "wrong_codes",
        "rate_limited",
        "reset",
        "md5_refused",
        "bad_json",
        "ready_warn",
    }


def test_down_on_default_refuses_the_port(sim):
    sim.set_faults(["down"])
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.url + "/up")
    sim.set_faults([])
    assert httpx.get(sim.url + "/up").status_code == 200


def test_down_at_start_refuses_until_cleared():
    with start_in_thread(faults=["down"]) as sim:
        with pytest.raises(httpx.ConnectError):
            httpx.get(sim.url + "/up")
        sim.set_faults([])
        assert httpx.get(sim.url + "/up").status_code == 200


def test_down_on_a_named_instance_resets_without_an_answer(sim):
    sim.set_faults(["down"], instance="gone")
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.get(sim.url_for("gone") + "/up")
    assert httpx.get(sim.url + "/up").status_code == 200


def test_slow_delays_every_response(sim):
    sim.set_faults(["slow"])  # the fixture's delay: 0.3 s
    started = time.monotonic()
    assert httpx.get(sim.url + "/up").status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("path", ["/up", "/", "/api/v1/user"])
def test_server_error_everywhere(sim, client, path):
    sim.set_faults(["server_error"])
    response = client.get(path)
    assert (response.status_code, response.json()) == (500, {"message": "Server Error"})


def test_maintenance_follows_accept(sim, client):
    sim.set_faults(["maintenance"])
    as_json = client.get("/up", headers={"Accept": "application/json"})
    assert (as_json.status_code, as_json.json()) == (503, {"message": "Service Unavailable"})
    as_html = client.get("/up", headers={"Accept": "text/html"})
    assert as_html.status_code == 503
    assert as_html.headers["content-type"].startswith("text/html")
    assert "Service Unavailable" in as_html.text
    assert client.get("/api/v1/user").status_code == 503


def test_db_down_breaks_the_api_but_not_up(sim, client):
    sim.set_faults(["db_down"])
    assert client.get("/up").status_code == 200
    response = client.get("/api/v1/user")
    assert (response.status_code, response.json()) == (500, {"message": "Server Error"})
    assert new_otp(client, account="a", otp_type="totp", secret=DEFAULT_CANARY_SECRET).status_code == 500
    assert httpx.get(sim.url + "/api/v1/user").status_code == 401


def test_app_key_breaks_stored_secrets_only(sim, client):
    sim.set_faults(["app_key"])
    for path in (
        f"/api/v1/twofaccounts/{CANARY_ACCOUNT_ID}/otp",
        f"/api/v1/twofaccounts?ids={CANARY_ACCOUNT_ID}&withOtp=1",
    ):
        response = client.get(path)
        assert response.status_code == 400
        assert response.json()["message"].startswith("The secret cannot be deciphered")
    assert client.get("/api/v1/twofaccounts").json()[0]["account"] == "*indecipherable*"
    otp = new_otp(client, account="a", otp_type="totp", secret=DEFAULT_CANARY_SECRET)
    assert otp.status_code == 200
    assert client.get("/up").status_code == 200


def test_clock_skew_moves_codes_and_date(sim, client):
    sim.set_faults(["clock_skew"], skew=3600)
    response = new_otp(client, account="a", otp_type="totp", secret=DEFAULT_CANARY_SECRET)
    otp = response.json()
    assert abs(otp["generated_at"] - (time.time() + 3600)) < 5
    assert otp["password"] == code_at(DEFAULT_CANARY_SECRET, otp["generated_at"])
    date = email.utils.parsedate_to_datetime(response.headers["date"]).timestamp()
    assert abs(date - (time.time() + 3600)) < 5


def test_wrong_codes_are_well_formed_but_wrong(sim, client):
    sim.set_faults(["wrong_codes"])
    otp = new_otp(client, account="a", otp_type="totp", secret=DEFAULT_CANARY_SECRET, digits=8).json()
    assert len(otp["password"]) == 8 and otp["password"].isdigit()
    assert otp["password"] != code_at(DEFAULT_CANARY_SECRET, otp["generated_at"], digits=8)
    steam = client.get(f"/api/v1/twofaccounts/{STEAM_ACCOUNT_ID}/otp").json()
    assert len(steam["password"]) == 5
    assert steam["password"] != code_at(DEFAULT_STEAM_SECRET, steam["generated_at"], otp_type="steamtotp")


def test_rate_limited_fault(sim, client):
    sim.set_faults(["rate_limited"])
    response = client.get("/api/v1/user")
    assert (response.status_code, response.json()) == (429, {"message": "Too Many Attempts."})
    assert response.headers["retry-after"] == "30"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert client.get("/up").status_code == 200


def test_reset_cuts_the_body(sim):
    sim.set_faults(["reset"])
    received = b""
    with socket.create_connection((sim.host, sim.port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: sim\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            while chunk := conn.recv(65536):
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    assert 0 < len(body) < length


def test_md5_refused(sim, client):
    sim.set_faults(["md5_refused"])
    response = new_otp(client, account="a", otp_type="totp", secret=DEFAULT_CANARY_SECRET, algorithm="md5")
    assert response.status_code == 400
    assert response.json()["message"] == "invalid OTP parameters"
    assert isinstance(response.json()["reason"], list)
    assert new_otp(client, account="a", otp_type="totp", secret=DEFAULT_CANARY_SECRET).status_code == 200


def test_bad_json(sim, client):
    sim.set_faults(["bad_json"])
    response = client.get("/api/v1/user")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


# Instances and the control surface


def test_named_instances_are_independent(sim):
    sim.set_faults(["server_error"], instance="a")
    assert httpx.get(sim.url_for("a") + "/up").status_code == 500
    assert httpx.get(sim.url_for("b") + "/up").status_code == 200
    assert httpx.get(sim.url + "/up").status_code == 200
    assert httpx.get(sim.url_for("b") + "/live").text.count("appVersion") == 1
    hotp_path = f"/api/v1/twofaccounts/{HOTP_ACCOUNT_ID}/otp"
    assert httpx.get(sim.url_for("b") + hotp_path, headers=AUTH).json()["counter"] == 1
    assert httpx.get(sim.url + hotp_path, headers=AUTH).json()["counter"] == 1
    assert sim.state("a")["faults"] == ["server_error"]
    assert sim.state("b")["counters"]["requests"] == {"/up": 1, "/live": 1, hotp_path: 1}


def test_control_surface_over_http(sim):
    control = sim.url + "/__sim"
    answer = httpx.post(
        control + "/faults", json={"instance": "x", "faults": ["slow", "clock_skew"], "delay": 0.1}
    )
    assert answer.status_code == 200
    state = httpx.get(control + "/state", params={"instance": "x"}).json()
    assert (state["faults"], state["delay"], state["skew"]) == (["clock_skew", "slow"], 0.1, 120)
    assert httpx.post(control + "/faults", json={"faults": ["nope"]}).status_code == 400
    httpx.post(control + "/faults", json={"faults": ["down"]})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.get(sim.url + "/up")  # over HTTP, down resets: the control surface must stay reachable
    assert httpx.post(control + "/reset").status_code == 200
    assert httpx.get(control + "/state", params={"instance": "x"}).json()["faults"] == []
    assert httpx.get(sim.url + "/up").status_code == 200


def test_cli_prints_where_and_exits_cleanly_on_ctrl_c():
    code = (
        "import argparse, sys; from monitor.simulator import add_cli_arguments, main_from_args; "
        "p = argparse.ArgumentParser(); add_cli_arguments(p); sys.exit(main_from_args(p.parse_args(sys.argv[1:])))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--fault", "slow", "--delay", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line and "eyJ" in line
        url = line.split(" on ")[1].split(";")[0].split(" ")[0]
        assert httpx.get(url + "/up", timeout=5).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()


# Release 5.4.3: what the real v5.4.3 answers (shared/real-2fauth/README.md; the differential test
# in test_real_differential.py compares the two over the real server)


@pytest.fixture(scope="module")
def v5_server():
    with start_in_thread(release="5.4.3", encryption=False) as handle:
        yield handle


@pytest.fixture
def v5(v5_server):
    v5_server.reset()
    with httpx.Client(base_url=v5_server.url, headers=AUTH, timeout=5) as http:
        yield http
    v5_server.reset()


def test_v5_count_is_count_and_unknown_api_paths_are_the_web_page(v5):
    assert v5.get("/api/v1/twofaccounts/count").json() == {"count": 3}
    unknown = v5.get("/api/v1/nonexistent", headers={"Accept": "application/json"})
    assert unknown.status_code == 200 and unknown.headers["content-type"].startswith("text/html")
    assert "appVersion = '5.4.3'" in unknown.text
    posted = v5.post("/api/v1/nonexistent", json={}, headers={"Accept": "application/json"})
    assert posted.status_code == 405
    assert "x-ratelimit-limit" not in posted.headers  # refused at routing, before the limiter


def test_v5_has_no_next_password(v5):
    made = new_otp(v5, account="a", otp_type="totp", secret=DEFAULT_CANARY_SECRET)
    assert made.status_code == 200 and set(made.json()) == {"password", "otp_type", "generated_at", "period"}
    listed = v5.get(f"/api/v1/twofaccounts?ids={CANARY_ACCOUNT_ID}&withOtp=1").json()
    assert set(listed[0]["otp"]) == {"password", "generated_at"}
    assert "next_password" not in v5.get(f"/api/v1/twofaccounts/{CANARY_ACCOUNT_ID}/otp").json()


def test_v5_refuses_md5_at_short_offsets_only(v5):
    from monitor.otp import MD5_SHORT_OFFSETS, md5_offset

    now = int(time.time())
    answers = {}
    for n in range(200):
        secret = f"{n:08d}".translate(str.maketrans("0123456789", "ABCDEFGHIJ")) * 4
        if md5_offset(secret, now) == md5_offset(secret, now + 30):  # no step boundary can change it
            short = md5_offset(secret, now) in MD5_SHORT_OFFSETS
            if short not in answers:
                body = {"account": "a", "otp_type": "totp", "secret": secret, "algorithm": "md5"}
                answers[short] = new_otp(v5, **body)
        if len(answers) == 2:
            break
    assert answers[False].status_code == 200
    assert answers[True].status_code == 400
    assert answers[True].json() == {"message": "not a valid base32 encoded secret"}


def test_v5_app_key_matters_only_with_encryption(v5, v5_server):
    v5_server.set_faults(["app_key"])
    assert v5.get(f"/api/v1/twofaccounts?ids={CANARY_ACCOUNT_ID}&withOtp=1").status_code == 200
    assert v5.get("/api/v1/settings/useEncryption").json() == {"key": "useEncryption", "value": False}
    with start_in_thread(release="5.4.3") as encrypted:
        encrypted.set_faults(["app_key"])
        broken = httpx.get(f"{encrypted.url}/api/v1/twofaccounts/{CANARY_ACCOUNT_ID}/otp", headers=AUTH)
        assert broken.status_code == 400
        assert "wrong APP_KEY set in the .env" in broken.json()["message"]


def test_cli_release_option():
    code = (
        "import argparse, sys; from monitor.simulator import add_cli_arguments, main_from_args; "
        "p = argparse.ArgumentParser(); add_cli_arguments(p); sys.exit(main_from_args(p.parse_args(sys.argv[1:])))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--release", "5.4.3", "--no-encryption"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("2FAuth 5.4.3 simulator"), line
        url = line.split(" on ")[1].split(";")[0].split(" ")[0]
        token = line.rsplit("bearer token: ", 1)[1].strip()
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(url + "/api/v1/twofaccounts/count", headers=auth, timeout=5).json() == {"count": 3}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    refused = subprocess.run(
        [sys.executable, "-c", code, "--release", "6.0"], capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
