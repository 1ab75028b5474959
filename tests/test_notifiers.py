"""Notifiers against a real receiver on loopback: the body, its signature, templates, headers,
how each answer is classified, Apprise, and `test-alert`. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from monitor import config
from monitor.notifiers import REGISTRY, Alert, AlertCheck, NotifierError, build, payload
from monitor.notifiers.webhook import WebhookSettings

from .conftest import AWKWARD, ROOT, run_cli
from .receiver import SECRET, verify


def notifier_config(**fields) -> WebhookSettings:
    raw = {
        "instances": [{"name": "home", "url": "http://127.0.0.1:9"}],
        "notifiers": [{"name": "ops", "type": "webhook", **fields}],
    }
    return config.from_mapping(raw, env={}).notifiers[0]


def alert(**changes) -> Alert:
    base = dict(
        event="down",
        instance="home",
        instance_label=AWKWARD,
        check="totp",
        old_status="up",
        new_status="down",
        kind="timeout",
        message='no "answer"\nwithin 2s',
        since=1_800_000_000.0,
        at=1_800_000_180.0,
        link="https://status.example/instances/home",
        check_label="TOTP codes",
        checks=(
            AlertCheck("totp", "TOTP codes", "down", "timeout", 'no "answer"\nwithin 2s', 1_800_000_000.0),
        ),
    )
    return Alert(**{**base, **changes})


async def send(cfg: WebhookSettings, a: Alert | None = None, delivery: str = "d-1"):
    notifier = build(cfg)
    try:
        return await notifier.send(a or alert(), delivery)
    finally:
        await notifier.aclose()


async def test_webhook_body_is_the_documented_schema_even_with_awkward_names(receiver):
    sent = await send(notifier_config(url=receiver.url + "/hook"))
    assert sent.status == 200
    [request] = receiver.requests
    assert request["method"] == "POST" and request["path"] == "/hook"
    assert request["headers"]["content-type"] == "application/json"
    body = json.loads(request["body"])
    assert body == {
        "version": 1,
        "id": "d-1",
        "event": "down",
        "severity": "critical",
        "instance": "home",
        "instance_label": AWKWARD,
        "check": "totp",
        "check_label": "TOTP codes",
        "old_status": "up",
        "new_status": "down",
        "kind": "timeout",
        "message": 'no "answer"\nwithin 2s',
        "since": "2027-01-15T08:00:00Z",
        "at": "2027-01-15T08:03:00Z",
        "duration_s": 180,
        "checks": [
            {
                "check": "totp",
                "label": "TOTP codes",
                "status": "down",
                "kind": "timeout",
                "message": 'no "answer"\nwithin 2s',
                "since": "2027-01-15T08:00:00Z",
                "consequence_of": None,
            }
        ],
        "link": "https://status.example/instances/home",
        "title": f"{AWKWARD} is down: TOTP codes (timeout)",
        "text": f'{AWKWARD} is down: TOTP codes (timeout)\nTOTP codes: down, timeout: no "answer"\nwithin 2s\n'
        "Since 2027-01-15T08:00:00Z (3m).\nhttps://status.example/instances/home",
    }
    assert request["headers"]["x-monitor-delivery"] == "d-1"
    assert request["headers"]["x-monitor-event"] == "down"
    assert "x-monitor-signature" not in request["headers"]  # no secret, no signature


def test_an_incident_names_its_cause_and_each_check_in_page_words():
    """One alert for three checks: the cause heads it, the others are its consequences."""
    lines = (
        AlertCheck("live", "Web server", "down", "maintenance", "GET /up answered 503", 0.0),
        AlertCheck("ready", "Readiness", "down", "maintenance", "GET /api answered 503", 5.0, "live"),
        AlertCheck("totp", "TOTP codes", "down", "maintenance", "GET /api/v1/user answered 503", 9.0, "live"),
    )
    down = alert(instance_label="Home", check="live", check_label="Web server", kind="maintenance",
                 message="GET /up answered 503", checks=lines)  # fmt: skip
    assert payload.title(down) == "Home is down: Web server (maintenance); Readiness and TOTP codes too"
    assert payload.text(down).splitlines()[1:4] == [
        "Web server: down, maintenance: GET /up answered 503",
        "Readiness: down as a consequence (maintenance)",
        "TOTP codes: down as a consequence (maintenance)",
    ]
    back = alert(instance_label="Home", event="resolved", old_status="down", new_status="up", check="live",
                 checks=lines)  # fmt: skip
    assert payload.title(back) == "Home is up again: Web server, Readiness, TOTP codes"
    slow = alert(instance_label="Home", event="degraded", new_status="degraded", kind="slow",
                 checks=(AlertCheck("totp", "TOTP codes", "degraded", "slow", "4.6 s", 0.0),))  # fmt: skip
    assert payload.title(slow) == "Home is degraded: TOTP codes (slow)"
    assert payload.build(slow, "x")["severity"] == "warning"


async def test_signed_delivery_verifies_with_the_secret_and_fails_otherwise(receiver):
    await send(notifier_config(url=receiver.url, secret=SECRET))
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert headers["x-monitor-signature"].startswith("sha256=")
    assert verify(SECRET, headers, body, time.time())
    assert not verify("another-secret", headers, body, time.time())
    assert not verify(SECRET, headers, body.replace(b"down", b"up"), time.time())  # tampered
    assert not verify(SECRET, headers, body, time.time() + 3600)  # a replay an hour later
    assert SECRET.encode() not in body


async def test_template_inserts_every_value_as_json(receiver):
    template = (
        '{"text": {{ title }}, "who": {{ instance_label }}, "n": {{ duration_s }}, "all": {{ payload }}}'
    )
    await send(notifier_config(url=receiver.url, template=template))
    [body] = receiver.bodies()
    assert body["text"] == f"{AWKWARD} is down: TOTP codes (timeout)"
    assert body["who"] == AWKWARD and body["n"] == 180
    assert body["all"]["message"] == 'no "answer"\nwithin 2s'


async def test_slack_style_template_and_custom_headers_and_method(receiver):
    cfg = notifier_config(
        url=receiver.url,
        method="PUT",
        template='{"text": {{ text }}}',
        headers={"Authorization": "Bearer tok-123456"},
    )
    await send(cfg)
    [request] = receiver.requests
    assert request["method"] == "PUT"
    assert request["headers"]["authorization"] == "Bearer tok-123456"
    assert json.loads(request["body"])["text"].startswith(f"{AWKWARD} is down: TOTP codes (timeout)\n")


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),
        (401, True),
        (404, True),
        (410, True),
        (408, False),
        (429, False),
        (500, False),
        (502, False),
        (503, False),
        (301, True),
    ],
)
async def test_answers_are_classified_permanent_or_worth_a_retry(receiver, status, permanent):
    receiver.status = status
    receiver.headers = {"Retry-After": "120"} if status in (429, 503) else {}
    with pytest.raises(NotifierError) as err:
        await send(notifier_config(url=receiver.url))
    assert err.value.permanent is permanent
    assert err.value.status == status
    assert f"HTTP {status}" in err.value.message
    if status in (429, 503):
        assert err.value.retry_after == 120


async def test_unreachable_receiver_is_worth_a_retry_and_its_url_token_is_never_shown(receiver):
    url = f"{receiver.url}/services/T0KEN-in-the-url-987"
    receiver.down()
    with pytest.raises(NotifierError) as err:
        await send(notifier_config(url=url, headers={"X-Api-Key": "key-abcdef-42"}))
    assert not err.value.permanent
    assert "T0KEN-in-the-url-987" not in err.value.message and "key-abcdef-42" not in err.value.message


async def test_apprise_json_target_on_loopback(receiver):
    cfg = notifier_config(type="apprise", url=f"json://127.0.0.1:{receiver.port}/apprise")
    await send(cfg, alert(event="resolved", old_status="down", new_status="up", kind=None))
    [request] = receiver.requests
    assert request["path"] == "/apprise"
    body = json.loads(request["body"])
    assert body["title"] == f"{AWKWARD} is up again: TOTP codes"
    assert body["message"].startswith(f"{AWKWARD} is up again: TOTP codes\nTOTP codes: was down, timeout:")
    assert "It was down for 3m." in body["message"]
    assert body["type"] == "success"


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (500, False)])
async def test_apprise_failures_are_classified_and_the_topic_is_never_shown(receiver, status, permanent):
    receiver.status = status
    cfg = notifier_config(type="apprise", url=f"ntfy://127.0.0.1:{receiver.port}/topic-s3cret-77")
    with pytest.raises(NotifierError) as err:
        await send(cfg)
    assert err.value.permanent is permanent
    assert "topic-s3cret-77" not in err.value.message
    assert receiver.requests  # it did reach the loopback receiver


@pytest.mark.parametrize(
    ("notifier", "problem"),
    [
        ({"type": "webhook", "url": "ftp://x"}, "notifiers[0].url: must be an http:// or https:// URL"),
        ({"type": "apprise", "url": "nosuchservice://abc"}, "notifiers[0].url: is not a URL Apprise can use"),
        (
            {"type": "apprise", "url": "json://127.0.0.1/", "secret": "x"},
            "notifiers[0]: secret: only for type webhook",
        ),
        (
            {"type": "webhook", "url": "http://x", "template": '{"a": "{{ instance }}"}'},
            "notifiers[0].template: the body is not JSON",
        ),
        (
            {"type": "webhook", "url": "http://x", "template": '{"a": {{ nope }}}'},
            "notifiers[0].template: 'nope' is undefined; the values are version, id, event",
        ),
        (
            {"type": "webhook", "url": "http://x", "template": '{{ "".__class__ }}'},
            "notifiers[0].template: access to attribute '__class__'",
        ),
        ({"type": "sms", "url": "http://x"}, "notifiers[0].type: must be 'webhook' or 'apprise'"),
    ],
)
def test_bad_notifier_configuration_is_one_clear_line(notifier, problem):
    raw = {
        "instances": [{"name": "home", "url": "http://127.0.0.1:9"}],
        "notifiers": [{"name": "ops", **notifier}],
    }
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(raw, env={})
    [line] = err.value.problems
    assert line.startswith(problem)
    assert "nosuchservice://abc" not in line


def test_routing_names_must_exist():
    raw = {
        "instances": [{"name": "home", "url": "http://127.0.0.1:9", "alerts": {"notify": ["pager"]}}],
        "notifiers": [{"name": "ops", "type": "webhook", "url": "http://x"}],
        "alerts": {"notify": ["ops", {"name": "chat", "events": ["down"]}]},
    }
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(raw, env={})
    assert err.value.problems == [
        "alerts.notify[1]: no notifier has this name (configured: ops)",
        "instances[0].alerts.notify[0]: no notifier has this name (configured: ops)",
    ]


def test_test_alert_command_says_whether_each_notifier_delivered(receiver, write_config):
    path = write_config(
        {
            "instances": [{"name": "home", "url": "http://127.0.0.1:9"}],
            "notifiers": [
                {"name": "ops", "type": "webhook", "url": receiver.url + "/ok", "secret": SECRET},
                {"name": "phone", "type": "apprise", "url": f"json://127.0.0.1:{receiver.port}/phone"},
            ],
        }
    )
    proc = run_cli("test-alert", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("ops: delivered (HTTP 200") and lines[1].startswith("phone: delivered")
    assert [r["path"] for r in receiver.requests] == ["/ok", "/phone"]
    assert receiver.bodies()[0]["event"] == "test"
    assert verify(SECRET, receiver.requests[0]["headers"], receiver.requests[0]["body"], time.time())

    receiver.status = 500
    proc = run_cli("test-alert", "--config", str(path), "--notifier", "ops")
    assert proc.returncode == 1
    assert proc.stdout.strip() == "ops: not delivered: HTTP 500: {}"

    proc = run_cli("test-alert", "--config", str(path), "--notifier", "pager")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --notifier: no notifier named 'pager' (configured: ops, phone)"
    assert SECRET not in proc.stdout + proc.stderr


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_each_registered_notifier_is_a_configurable_type_with_its_sender(kind):
    settings_model, sender = REGISTRY[kind]
    url = "http://127.0.0.1:9/hook" if kind == "webhook" else "json://127.0.0.1:9/"
    raw = {
        "instances": [{"name": "home", "url": "http://127.0.0.1:9"}],
        "notifiers": [{"name": "ops", "type": kind, "url": url}],
    }
    [cfg] = config.from_mapping(raw, env={}).notifiers
    assert type(cfg) is settings_model
    assert isinstance(build(cfg), sender)


def test_notifiers_never_import_the_configuration():
    """notifiers sit below config: no notifier names monitor.config, even for type checking,
    and importing every notifier loads nothing of it."""
    for source in (ROOT / "monitor" / "notifiers").glob("*.py"):
        assert "monitor.config" not in source.read_text(), source.name
    code = (
        "import sys, monitor.notifiers, monitor.notifiers.apprise_child;"
        "print([m for m in sys.modules if m.startswith('monitor.config')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
