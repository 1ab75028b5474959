"""/metrics of a running monitor: promtool accepts it, it agrees with the page, labels stay
bounded, no secret appears; other parts can add collectors."""

from __future__ import annotations

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from monitor import config, simulator
from monitor.models import Result, Status
from monitor.scheduler import Monitor
from monitor.web import metrics
from tests.conftest import Site
from tests.prom import check_metrics

ALLOWED_LABELS = {"instance", "check", "status", "kind", "version", "le"}


def samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def test_promtool_accepts_the_exposition(site: Site) -> None:
    response = site.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    checked = check_metrics(response.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_metrics_agree_with_the_page(site: Site) -> None:
    found = samples(site.get("/metrics").text)
    current = {
        (s.labels["instance"], s.labels["check"]): s.labels["status"]
        for s in found["twofauth_check_status"]
        if s.value == 1
    }
    page = site.get("/api/v1/status").json()
    for inst in page["instances"]:
        for check in inst["checks"]:
            assert current[(inst["name"], check["name"])] == check["status"]
    problems = {
        (s.labels["instance"], s.labels["check"]): s.labels["kind"] for s in found["twofauth_check_problem"]
    }
    assert problems == {("office", c): "server_error" for c in ("live", "ready", "totp")}
    assert {s.labels["instance"] for s in found["twofauth_clock_skew_seconds"]} >= {"home", "family"}
    assert {s.labels["version"] for s in found["twofauth_instance_info"]} == {"8.0.1"}


def test_latency_histogram_run_counts_and_scheduler_figures(site: Site) -> None:
    found = samples(site.get("/metrics").text)
    counts = {
        (s.labels["instance"], s.labels["check"]): s.value
        for s in found["twofauth_check_latency_seconds_count"]
    }
    assert len(counts) == 9 and all(v >= 1 for v in counts.values())
    assert any(s.labels["le"] == "+Inf" for s in found["twofauth_check_latency_seconds_bucket"])
    runs = {(s.labels["instance"], s.labels["status"]) for s in found["twofauth_monitor_runs_total"]}
    assert ("office", "down") in runs and ("home", "up") in runs
    assert found["twofauth_monitor_scheduler_lag_seconds_count"][0].value >= 9
    assert found["twofauth_monitor_last_run_timestamp_seconds"][0].value > 0
    assert found["twofauth_monitor_database_writable"][0].value == 1


def test_labels_are_bounded_and_no_secret_appears(site: Site) -> None:
    text = site.get("/metrics").text
    assert simulator.DEFAULT_TOKEN not in text and simulator.DEFAULT_CANARY_SECRET not in text
    assert site.sim.url not in text  # not even the shown base URL: instance names only
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, sample


def test_openmetrics_when_the_scraper_asks(site: Site) -> None:
    response = site.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


class _Alerts:
    def collect(self):
        family = GaugeMetricFamily("twofauth_alerts_open", "Alerts currently open", labels=["instance"])
        family.add_metric(["home"], 1.0)
        yield family


def test_the_collectors_handed_to_the_metrics_are_read_at_every_scrape(tmp_path) -> None:
    settings = config.from_mapping({"instances": [{"name": "home", "url": "http://10.0.0.1"}]}, env={})
    text = metrics.MonitorMetrics(Monitor(settings, None), [_Alerts()]).exposition(None)[0].decode()
    assert 'twofauth_alerts_open{instance="home"} 1.0' in text
    assert check_metrics(text).returncode == 0
    # another monitor's metrics do not see them: no collector is shared through a module global
    other = metrics.MonitorMetrics(Monitor(settings, None))
    assert "twofauth_alerts_open" not in other.exposition(None)[0].decode()


@pytest.mark.parametrize("accept", [None, "text/plain"])
def test_the_metrics_add_one_listener(accept) -> None:
    settings = config.from_mapping({"instances": [{"name": "home", "url": "http://10.0.0.1"}]}, env={})
    monitor = Monitor(settings, None)
    scrape = metrics.MonitorMetrics(monitor)
    assert monitor.listeners == [scrape.observe]
    assert b"twofauth_monitor_start_time_seconds" in scrape.exposition(accept)[0]


def test_an_instance_removed_by_a_reload_leaves_the_latency_histogram() -> None:
    def settings(*names: str) -> config.Settings:
        return config.from_mapping(
            {"instances": [{"name": n, "url": "http://10.0.0.1"} for n in names]}, env={}
        )

    monitor = Monitor(settings("home", "office"), None)
    scrape = metrics.MonitorMetrics(monitor)
    for name in ("home", "office"):
        scrape.observe(Result(name, "live", Status.UP, latency_ms=12.0), None, False)
    assert (
        'twofauth_check_latency_seconds_count{check="live",instance="office"} 1.0'
        in scrape.exposition(None)[0].decode()
    )
    monitor.settings = settings("home")  # what Monitor.apply leaves after a SIGHUP reload
    text = scrape.exposition(None)[0].decode()
    assert 'instance="office"' not in text
    assert 'twofauth_check_latency_seconds_count{check="live",instance="home"} 1.0' in text
