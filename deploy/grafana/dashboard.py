"""The Grafana dashboard for 2fauth-monitor, built with grafana-foundation-sdk.

    python deploy/grafana/dashboard.py > deploy/grafana/2fauth-monitor.json

The JSON is committed; tests/test_grafana_dashboard.py regenerates it and fails if it differs, and
checks that every query names metrics the monitor exports. Panels: status by check, uptime, latency,
problems by kind, days to certificate and token expiry per instance, and the monitors themselves.
Variables pick the Prometheus data source, the locations (several monitors) and the instances.
"""

from __future__ import annotations

import json
import sys

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

UID = "twofauth-monitor"
SOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
# every query is narrowed to the chosen locations and instances; ".*" also matches series without a
# location (a single monitor with no `location:`)
SEL = 'instance=~"$instance", location=~"$location"'


def query(expr: str, legend: str, ref: str = "A") -> prom.Dataquery:
    return prom.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(SOURCE)


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in steps])
    )


def status_mapping() -> list[model.ValueMapping]:
    result = model.ValueMappingResult
    return [
        model.ValueMap(
            options={
                "0": result(text="Up", color="green", index=0),
                "1": result(text="Degraded", color="orange", index=1),
                "2": result(text="Down", color="red", index=2),
            }
        )
    ]


def variables() -> list[db.DatasourceVariable | db.QueryVariable]:
    def labels(name: str, label: str, promql: str) -> db.QueryVariable:
        return (
            db.QueryVariable(name)
            .label(label)
            .datasource(SOURCE)
            .query({"query": promql, "refId": f"{name}-values"})
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(model.VariableOption(selected=True, text="All", value="$__all"))
        )

    return [
        db.DatasourceVariable("datasource").label("Prometheus").type("prometheus"),
        labels("location", "Location", "label_values(twofauth_check_status, location)"),
        labels(
            "instance", "Instance", 'label_values(twofauth_check_status{location=~"$location"}, instance)'
        ),
    ]


def panels() -> list[tuple[str, list]]:
    status = (
        statetimeline.Panel()
        .title("Status by check")
        .description("Each check's status as each monitor sees it: up, degraded or down.")
        .with_target(
            query(
                "sum without (status) ("
                f'(twofauth_check_status{{status="up", {SEL}}} == 1) * 0'
                f' or (twofauth_check_status{{status="degraded", {SEL}}} == 1)'
                f' or (twofauth_check_status{{status="down", {SEL}}} == 1) * 2)',
                "{{instance}} {{check}} {{location}}",
            )
        )
        .mappings(status_mapping())
        .thresholds(thresholds((None, "green"), (1, "orange"), (2, "red")))
        .show_value(common.VisibilityMode.NEVER)
        .height(8)
        .span(16)
    )
    uptime = (
        stat.Panel()
        .title("Uptime over the time range")
        .description("Share of check runs that worked (up or degraded), as the status page counts it.")
        .with_target(
            query(
                f'sum by (instance) (increase(twofauth_monitor_runs_total{{status=~"up|degraded", {SEL}}}[$__range]))'
                f" / sum by (instance) (increase(twofauth_monitor_runs_total{{{SEL}}}[$__range]))",
                "{{instance}}",
            )
        )
        .unit("percentunit")
        .decimals(2)
        .min(0)
        .max(1)
        .thresholds(thresholds((None, "red"), (0.99, "orange"), (0.999, "green")))
        .height(8)
        .span(8)
    )
    latency = (
        timeseries.Panel()
        .title("Latency (95th percentile)")
        .description("How long each check takes, from the monitor's latency histogram.")
        .with_target(
            query(
                "histogram_quantile(0.95, sum by (instance, check, location, le) "
                f"(rate(twofauth_check_latency_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                "{{instance}} {{check}} {{location}}",
            )
        )
        .unit("s")
        .min(0)
        .height(8)
        .span(12)
    )
    kinds = (
        timeseries.Panel()
        .title("Problems by kind")
        .description("Checks not up, by why: connect, timeout, tls, server_error, otp_mismatch...")
        .with_target(
            query(f"sum by (instance, kind) (twofauth_check_problem{{{SEL}}})", "{{instance}} {{kind}}")
        )
        .draw_style(common.GraphDrawStyle.BARS)
        .min(0)
        .decimals(0)
        .height(8)
        .span(12)
    )
    expiry = (
        bargauge.Panel()
        .title("Days to expiry")
        .description(
            "TLS certificate and the monitor's token, per instance (the soonest over the locations)."
        )
        .with_target(
            query(
                f"min by (instance) (twofauth_certificate_expiry_timestamp_seconds{{{SEL}}} - time()) / 86400",
                "{{instance}} certificate",
            )
        )
        .with_target(
            query(
                f"min by (instance) (twofauth_token_expiry_timestamp_seconds{{{SEL}}} - time()) / 86400",
                "{{instance}} token",
                "B",
            )
        )
        .decimals(1)
        .min(0)
        .max(90)
        .thresholds(thresholds((None, "red"), (3, "orange"), (14, "green")))
        .height(8)
        .span(12)
    )
    skew = (
        timeseries.Panel()
        .title("Clock skew")
        .description("The 2FAuth server's clock minus the monitor's, from the TOTP flow.")
        .with_target(query(f"twofauth_clock_skew_seconds{{{SEL}}}", "{{instance}} {{location}}"))
        .unit("s")
        .height(8)
        .span(12)
    )
    since_last = (
        stat.Panel()
        .title("Since each monitor's last check")
        .description("A monitor that stops running checks is stalled (alert TwoFAuthMonitorStalled).")
        .with_target(
            query(
                'time() - max by (location) (twofauth_monitor_last_run_timestamp_seconds{location=~"$location"})',
                "{{location}}",
            )
        )
        .unit("s")
        .thresholds(thresholds((None, "green"), (300, "orange"), (600, "red")))
        .height(6)
        .span(12)
    )
    scheduler = (
        timeseries.Panel()
        .title("Scheduler lag and database")
        .description("How late runs start, and results waiting to be written (both near 0 when healthy).")
        .with_target(
            query(
                'max by (location) (twofauth_monitor_scheduler_lag_max_seconds{location=~"$location"})',
                "lag {{location}}",
            )
        )
        .with_target(
            query(
                'max by (location) (twofauth_monitor_database_pending_results{location=~"$location"})',
                "pending results {{location}}",
                "B",
            )
        )
        .min(0)
        .height(6)
        .span(12)
    )
    return [
        ("Instances", [status, uptime, latency, kinds, expiry, skew]),
        ("The monitors", [since_last, scheduler]),
    ]


def build() -> str:
    board = (
        db.Dashboard("2FAuth monitor")
        .uid(UID)
        .description("2fauth-monitor's checks of 2FAuth instances, from one or several monitors (locations).")
        .tags(["2fauth", "2fauth-monitor"])
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .variables(variables())  # type: ignore[arg-type]
    )
    for title, row in panels():
        board = board.with_row(db.Row(title))
        for panel in row:
            board = board.with_panel(panel.datasource(SOURCE))
    return json.dumps(board.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(build())
