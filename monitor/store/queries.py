"""The read side of the history. Long windows read rollups, never raw rows."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlite_utils import Database

from monitor.models import DAY, HOUR
from monitor.store.schema import RESULTS_SELECT

_RESULTS = RESULTS_SELECT.format(raw="raw_results")
# through the small index of failures only, not each check's every row
_FAILURES = """(select * from raw_results indexed by raw_results_failures
    where series in (select id from series where instance = ?) and status != 0 order by at desc limit ?)"""
_COUNTS = ("count", "up", "degraded", "down", "maintenance")
_SUMS = (*_COUNTS, "latency_sum", "latency_n")


def uptime_ratio(row: dict[str, Any]) -> float | None:
    """Share of runs outside maintenance that were up or degraded (the service worked); None without data.

    Runs during maintenance are left out of both sides of the ratio.
    """
    counted = (row.get("count") or 0) - (row.get("maintenance") or 0)
    if counted <= 0:
        return None
    working = min((row.get("up") or 0) + (row.get("degraded") or 0), counted)
    return working / counted


class Queries:
    db: Database

    def recent_results(
        self, instance: str, check: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest `limit` results of an instance (or of one of its checks), newest first."""
        rows = self._raw_newest(instance, check, "", [], limit)
        for row in rows:
            row["steps"] = json.loads(row["steps"] or "[]")
        return rows

    def failures(self, instance: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = list(
            self.db.query(
                RESULTS_SELECT.format(raw=_FAILURES) + " order by r.at desc",
                [instance, limit],
            )
        )
        for row in rows:
            row["steps"] = json.loads(row["steps"] or "[]")
        return rows

    def _raw_newest(
        self, instance: str, check: str | None, where: str, args: list[Any], limit: int
    ) -> list[dict[str, Any]]:
        """The newest `limit` raw results matching `where`, newest first: each check's read back
        along its (series, id) key, then merged by start time."""
        series = [
            n
            for (n,) in self.db.execute(
                'select id from series where instance = ? and (? is null or "check" = ?)',
                [instance, check, check],
            )
        ]
        rows: list[dict[str, Any]] = []
        for n in series:
            rows += self.db.query(
                f"{_RESULTS} where r.series = ? {where} order by r.id desc limit ?", [n, *args, limit]
            )
        if len(series) > 1:
            rows.sort(key=lambda row: row["started_at"], reverse=True)
        return rows[:limit]

    def incidents(
        self, instance: str | None = None, *, since: float | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
        if instance:
            where.append("instance = ?")
            args.append(instance)
        if since is not None:
            where.append("(ended_at is null or ended_at >= ?)")
            args.append(since)
        return list(
            self.db.query(
                f"select * from incidents where {' and '.join(where)} order by started_at desc limit ?",
                [*args, limit],
            )
        )

    def first_seen(self, instance: str | None = None) -> dict[tuple[str, str], float]:
        """When each check's history begins: its first raw result, or, once those are pruned, the
        start of its first daily rollup (uptime windows count only the time since)."""
        where, args = ("where instance = ?", [instance]) if instance else ("", [])
        out = {}
        for inst, check, first_day in self.db.conn.execute(
            f'select instance, "check", min(bucket) from rollups_daily {where} group by instance, "check"',
            args,
        ):
            row = self.db.conn.execute(
                'select min(started_at) from results where instance = ? and "check" = ?', (inst, check)
            ).fetchone()
            first = row[0] if row and row[0] is not None else None
            out[(inst, check)] = first if first is not None and first < first_day + DAY else float(first_day)
        return out

    def main_cause(
        self, instance: str, check: str, start: float, end: float | None
    ) -> tuple[str, str] | None:
        """The kind most failing runs of a check had in [start, end] and that kind's latest message
        (one run's, so kind and message never mix two runs); None once the raw results are pruned."""
        row = self.db.execute(
            """select kind, message, count(*) as runs, max(started_at) as last from results
               where instance = ? and "check" = ? and started_at >= ? and started_at < ?
                 and status != 'up' and maintenance = 0
               group by kind order by runs desc, last desc limit 1""",
            (instance, check, start, end if end is not None else float("inf")),
        ).fetchone()
        return (row[0], row[1] or "") if row else None

    def rollups(
        self, instance: str, check: str | None, start: float, *, daily: bool, end: float | None = None
    ) -> list[dict[str, Any]]:
        table = "rollups_daily" if daily else "rollups_hourly"
        where, args = ["instance = ?", "bucket >= ?"], [instance, start]
        if check:
            where.append('"check" = ?')
            args.append(check)
        if end is not None:
            where.append("bucket < ?")
            args.append(end)
        return list(self.db.query(f"select * from {table} where {' and '.join(where)} order by bucket", args))

    def uptime(
        self, instance: str, check: str | None, window: float, now: float | None = None
    ) -> dict[str, Any]:
        """Counts and uptime over the last `window` seconds, from hourly rollups up to 35 days, else daily."""
        now = time.time() if now is None else now
        daily = window > 35 * DAY
        size = DAY if daily else HOUR
        start = (now - window) // size * size
        table = "rollups_daily" if daily else "rollups_hourly"
        where, args = ["instance = ?", "bucket >= ?"], [instance, start]
        if check:
            where.append('"check" = ?')
            args.append(check)
        row = self.db.execute(
            f"""select coalesce(sum(count),0), coalesce(sum(up),0), coalesce(sum(degraded),0),
                       coalesce(sum(down),0), coalesce(sum(maintenance),0),
                       coalesce(sum(latency_sum),0), coalesce(sum(latency_n),0)
                from {table} where {" and ".join(where)}""",
            args,
        ).fetchone()
        out = dict(
            zip(
                ("count", "up", "degraded", "down", "maintenance", "latency_sum", "latency_n"),
                row,
                strict=True,
            )
        )
        out["uptime"] = uptime_ratio(out)
        out["latency_avg"] = out["latency_sum"] / out["latency_n"] if out["latency_n"] else None
        return out

    def daily_bars(
        self, instance: str, check: str | None, days: int = 90, now: float | None = None
    ) -> list[dict[str, Any]]:
        """One entry per UTC day, oldest first, with uptime, incident count and downtime seconds."""
        now = time.time() if now is None else now
        today = int(now // DAY * DAY)
        start = today - (days - 1) * DAY
        by_day: dict[int, dict[str, Any]] = {}
        for row in self.rollups(instance, check, start, daily=True):
            day = by_day.setdefault(
                row["bucket"], {"count": 0, "up": 0, "degraded": 0, "down": 0, "maintenance": 0}
            )
            for key in ("count", "up", "degraded", "down", "maintenance"):
                day[key] += row[key]
        where, args = ["instance = ?", "(ended_at is null or ended_at >= ?)"], [instance, start]
        if check:
            where.append('"check" = ?')
            args.append(check)
        incidents = list(
            self.db.query(
                f"select status, started_at, ended_at from incidents where {' and '.join(where)}", args
            )
        )
        bars = []
        for i in range(days):
            day_start = start + i * DAY
            counts = by_day.get(day_start, {"count": 0, "up": 0, "degraded": 0, "down": 0, "maintenance": 0})
            n_incidents, downtime = 0, 0.0
            for inc in incidents:
                s, e = inc["started_at"], inc["ended_at"] or now
                overlap = min(e, day_start + DAY) - max(s, day_start)
                if overlap > 0 or day_start <= s < day_start + DAY:
                    n_incidents += 1
                    if inc["status"] == "down":
                        downtime += max(0.0, overlap)
            bars.append(
                {
                    "day": day_start,
                    **counts,
                    "uptime": uptime_ratio(counts),
                    "incidents": n_incidents,
                    "downtime_s": round(downtime),
                }
            )
        return bars

    def daily_bars_all(self, days: int = 90, now: float | None = None) -> dict[str, list[dict[str, Any]]]:
        """`daily_bars` of every instance (all checks together) in two queries, for the index page."""
        now = time.time() if now is None else now
        today = int(now // DAY * DAY)
        start = today - (days - 1) * DAY
        counts: dict[str, list[list[int]]] = {}
        for inst, bucket, *sums in self.db.conn.execute(
            """select instance, bucket, sum(count), sum(up), sum(degraded), sum(down), sum(maintenance)
               from rollups_daily where bucket >= ? group by instance, bucket""",
            (start,),
        ):
            index = (bucket - start) // DAY
            if 0 <= index < days:
                if inst not in counts:
                    counts[inst] = [[0] * 5 for _ in range(days)]
                counts[inst][index] = sums
        incidents: dict[str, list[list[float]]] = {}
        for inst, status, started, ended in self.db.conn.execute(
            "select instance, status, started_at, ended_at from incidents where ended_at is null or ended_at >= ?",
            (start,),
        ):
            per_day = incidents.setdefault(inst, [[0, 0.0] for _ in range(days)])
            end = ended or now
            first = max(0, int((started - start) // DAY))
            last = min(days - 1, int((end - start) // DAY))
            for index in range(first, last + 1):  # only the days the incident touches
                day_start = start + index * DAY
                per_day[index][0] += 1
                if status == "down":
                    per_day[index][1] += max(0.0, min(end, day_start + DAY) - max(started, day_start))
        out: dict[str, list[dict[str, Any]]] = {}
        empty = [0] * 5
        for inst in set(counts) | set(incidents):
            rows = counts.get(inst)
            inc = incidents.get(inst)
            bars = []
            for index in range(days):
                day: dict[str, Any] = dict(zip(_COUNTS, rows[index] if rows else empty, strict=True))
                day["day"] = start + index * DAY
                day["uptime"] = uptime_ratio(day)
                day["incidents"] = inc[index][0] if inc else 0
                day["downtime_s"] = round(inc[index][1]) if inc else 0
                bars.append(day)
            out[inst] = bars
        return out

    # --- status page: grouped reads over every instance, aggregated in SQL from rollups ----------

    def uptime_windows(
        self, windows: dict[str, float], now: float | None = None, instance: str | None = None
    ) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
        """Counts and uptime per (instance, check) for several windows at once (one instance's, or
        every instance's): one scan of the hourly rollups for the windows up to 35 days and one of
        the daily rollups for the longer ones."""
        now = time.time() if now is None else now
        out: dict[str, dict[tuple[str, str], dict[str, Any]]] = {name: {} for name in windows}
        for daily in (False, True):
            names = [n for n, w in windows.items() if (w > 35 * DAY) == daily]
            if not names:
                continue
            size = DAY if daily else HOUR
            starts = [(now - windows[n]) // size * size for n in names]
            table = "rollups_daily" if daily else "rollups_hourly"
            columns = ", ".join(
                f"sum(case when bucket >= {start:.0f} then {col} else 0 end)"
                for start in starts
                for col in ("count", "up", "degraded", "down", "maintenance", "latency_sum", "latency_n")
            )
            where, args = ["bucket >= ?"], [min(starts)]  # type: list[str], list[Any]
            if instance:
                where.append("instance = ?")
                args.append(instance)
            for inst, check, *sums in self.db.conn.execute(
                f'select instance, "check", {columns} from {table} where {" and ".join(where)} '
                'group by instance, "check"',
                args,
            ):
                for i, name in enumerate(names):
                    row = dict(zip(_SUMS, sums[i * 7 : i * 7 + 7], strict=True))
                    row["uptime"] = uptime_ratio(row)
                    row["latency_avg"] = row["latency_sum"] / row["latency_n"] if row["latency_n"] else None
                    out[name][(inst, check)] = row
        return out

    def latency_buckets(
        self, instance: str | None, start: float, step: float, *, daily: bool
    ) -> list[dict[str, Any]]:
        """Average, min and max latency per instance and check in buckets of `step` seconds from `start`."""
        table = "rollups_daily" if daily else "rollups_hourly"
        where, args = ["bucket >= ?", "latency_n > 0"], [start]  # type: list[str], list[Any]
        if instance:
            where.append("instance = ?")
            args.append(instance)
        rows = self.db.conn.execute(
            f"""select instance, "check", cast((bucket - ?) / ? as integer) as i, min(bucket) as t,
                       sum(latency_sum) / sum(latency_n) as avg, min(latency_min) as min,
                       max(latency_max) as max
                from {table} where {" and ".join(where)}
                group by instance, "check", i order by instance, "check", i""",
            [start, float(step), *args],
        )
        keys = ("instance", "check", "i", "t", "avg", "min", "max")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def results_window(
        self, instance: str, check: str | None, start: float, end: float, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """The newest `limit` raw results in [start, end), oldest first, without steps."""
        rows = self._raw_newest(instance, check, "and r.at >= ? and r.at < ?", [start, end], limit)
        keys = ("check", "started_at", "status", "kind", "message", "latency_ms", "http_status", "version")
        out = [{**{k: row[k] for k in keys}, "maintenance": row["maintenance"]} for row in rows]
        out.reverse()
        return out
