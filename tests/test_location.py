"""`location:`: every sample of /metrics carries it, so one Prometheus can scrape several monitors."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor import config
from monitor.models import Result, Status
from monitor.scheduler import Monitor
from monitor.web import metrics
from tests.prom import check_metrics

INSTANCES = [{"name": "home", "url": "http://10.0.0.1"}]


def _scrape(settings: config.Settings) -> str:
    monitor = Monitor(settings, None)
    scrape = metrics.MonitorMetrics(monitor)
    scrape.observe(Result("home", "live", Status.UP, latency_ms=12.0), None, False)
    return scrape.exposition(None)[0].decode()


def _locations(text: str) -> set[str | None]:
    return {
        sample.labels.get("location")
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_every_sample_carries_the_location_and_promtool_accepts_it() -> None:
    text = _scrape(config.from_mapping({"location": "vps-paris", "instances": INSTANCES}, env={}))
    assert _locations(text) == {"vps-paris"}
    assert (
        'twofauth_check_latency_seconds_count{check="live",instance="home",location="vps-paris"} 1.0' in text
    )
    checked = check_metrics(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_a_location_the_labels_stay_as_they_were() -> None:
    assert _locations(_scrape(config.from_mapping({"instances": INSTANCES}, env={}))) == {None}


def test_monitor_location_overrides_the_file_and_works_without_one() -> None:
    env = {"MONITOR_LOCATION": "home"}
    assert config.from_mapping({"location": "vps", "instances": INSTANCES}, env=env).location == "home"
    assert config.from_env({"TWOFAUTH_URL": "http://10.0.0.1", **env}).location == "home"


@pytest.mark.parametrize("bad", ["", "two words", "a" * 64, 'x"y'])
def test_a_bad_location_is_a_one_line_error(bad: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping({"location": bad, "instances": INSTANCES}, env={})
    (line,) = err.value.problems
    assert line.startswith("location: must be 1 to 63 letters")
