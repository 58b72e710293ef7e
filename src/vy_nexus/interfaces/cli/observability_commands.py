"""Observability commands: ``vy-nexus logs`` and ``vy-nexus metrics report|export|prometheus``."""

from __future__ import annotations

import collections
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import typer
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from vy_nexus.errors import ConfigError
from vy_nexus.events import Level
from vy_nexus.interfaces.cli.common import console, err_console, handle_errors, print_json, state
from vy_nexus.observability.journal import LEVELS, STRUCTURED_FILENAME
from vy_nexus.observability.logquery import LogEntry, LogFilter, QueryStats, follow, query
from vy_nexus.observability.metrics_names import RAW_TABLES
from vy_nexus.observability.timeutil import parse_time

if TYPE_CHECKING:  # SQLAlchemy loads only for the commands that read a database (CLI cold start)
    from vy_nexus.observability.metrics_db import MetricsDatabase
    from vy_nexus.observability.metricsquery import ExportFormat, GroupStats, LlmStats, MetricsReport, ProcessStats

G = TypeVar("G", bound="GroupStats")

_LEVEL_COLOURS = {"debug": "bright_black", "info": "green", "warn": "yellow", "error": "red"}


def _level(value: str | None) -> Level | None:
    if value is None:
        return None
    lowered = "warn" if value.lower() == "warning" else value.lower()
    for known in LEVELS:
        if known == lowered:
            return known
    raise ConfigError(f"unknown log level {value!r}; choose one of {', '.join(LEVELS)}")


def _optional_time(value: str | None) -> float | None:
    return None if value is None else parse_time(value)


def format_entry(entry: LogEntry, *, colour: bool = False) -> str:
    """One line for people: time, level, component, task/expert, message."""
    level = f"{entry.level.upper():<5}"
    if colour:
        level = typer.style(level, fg=_LEVEL_COLOURS.get(entry.level))
    context = ""
    task_id = entry.record.get("task_id")
    expert_id = entry.record.get("expert_id")
    if task_id:
        context += f" task={task_id}"
    if expert_id:
        context += f" expert={expert_id}"
    process = entry.record.get("process")
    if process:  # from the cluster's journal table: which process wrote it
        context += f" process={process}"
    return f"{entry.timestamp} {level} {entry.component:<12}{context} {entry.message}"


def _report_damage(stats: QueryStats) -> None:
    if stats.malformed:
        err_console.print(Text(f"skipped {stats.malformed} malformed line(s)", style="yellow"))
    if stats.partial_tail:
        err_console.print(
            Text(f"skipped a partial last line ({stats.partial_tail} bytes): a write was cut short", style="yellow")
        )


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


NO_WIDTH_LIMIT = 10_000
"""The width a table is measured at to learn how wide it wants to be (rich measures within the terminal's width)."""


def _fitted(title: str, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]], labels: int = 1) -> Table:
    """A table of ``rows`` (label cells, then one cell per column after the labels) as wide as the terminal allows;
    when it would be wider, each row becomes its labels on a line, then ``column=value`` pairs that wrap between
    pairs, never inside a name or a number (rich shortened "provider" to "provid…" and stacked headers 3 deep)."""
    table = Table(title=title, header_style="bold")
    for position, column in enumerate(columns):
        table.add_column(column, justify="left" if position < labels else "right")
    for label, cells in rows:
        table.add_row(*label.split("\0"), *cells)
    natural = Measurement.get(console, console.options.update_width(NO_WIDTH_LIMIT), table).maximum
    if natural <= console.width:
        return table
    from vy_nexus.interfaces.cli.render import mapping_table

    named = [column.replace(" ", "_") for column in columns[labels:]]  # a pair holds no space: no break inside
    stacked = {" / ".join(label.split("\0")): dict(zip(named, cells, strict=True)) for label, cells in rows}
    return mapping_table(title, stacked)


def _group_table(title: str, groups: Sequence[G], extra: Sequence[tuple[str, Callable[[G], str]]] = ()) -> Table:
    """Count, success rate and duration percentiles per group, then the ``extra`` columns."""
    keys = list(groups[0].group) if groups else []
    columns = [*keys, "count", "success", "p50 ms", "p95 ms", "p99 ms", *(name for name, _ in extra)]
    rows = [
        (
            "\0".join(group.group[key] or "-" for key in keys),
            [
                str(group.stats.count),
                f"{group.stats.success_rate:.1%}",
                _ms(group.stats.p50_ms),
                _ms(group.stats.p95_ms),
                _ms(group.stats.p99_ms),
                *(cell(group) for _, cell in extra),
            ],
        )
        for group in groups
    ]
    return _fitted(title, columns, rows, labels=len(keys))


_TTFT: tuple[tuple[str, Callable[[LlmStats], str]], ...] = (("TTFT p50 ms", lambda group: _ms(group.ttft_p50_ms)),)
"""The LLM table's time to first token column (``--json`` also has the p95)."""


PROCESS_ROWS = 20
"""The human report lists at most this many processes (the most recently seen); ``--json`` lists them all."""


def _process_table(processes: list[ProcessStats]) -> Table:
    shown = sorted(processes, key=lambda p: -p.last_seen)[:PROCESS_ROWS]
    more = len(processes) - len(shown)
    title = "Processes (host:pid)" + (f", the {len(shown)} seen last of {len(processes)}" if more else "")
    columns = ["process", "expert runs", "success", "p50 ms", "LLM calls", "samples", "CPU avg", "RSS max MiB"]
    rows = [
        (
            process.process,
            [
                str(process.expert_runs),
                f"{process.expert_successes / process.expert_runs:.1%}" if process.expert_runs else "-",
                _ms(process.expert_p50_ms),
                str(process.llm_calls),
                str(process.samples),
                "-" if process.cpu_percent_avg is None else f"{process.cpu_percent_avg:.1f}%",
                "-" if process.rss_bytes_max is None else f"{process.rss_bytes_max / 2**20:.0f}",
            ],
        )
        for process in sorted(shown, key=lambda p: p.process)
    ]
    return _fitted(title, columns, rows)


def render_report(report: MetricsReport) -> None:
    if not report.experts and not report.tasks and (report.routing is None or not report.routing.decisions):
        console.print("no metrics recorded yet (run some tasks first)")
    if report.tasks:
        console.print(_group_table("Tasks by type", report.tasks))
    if report.experts:
        console.print(_group_table("Experts by task type", report.experts))
    routing = report.routing
    if routing is not None and routing.decisions:
        table = Table(title="Routing", show_header=False)
        table.add_column("key", style="bold")
        table.add_column("value")
        table.add_row("decisions", str(routing.decisions))
        table.add_row("cache hit rate", f"{routing.cache_hit_rate:.1%}")
        table.add_row("fallback rate", f"{routing.fallback_rate:.1%}")
        oos = routing.out_of_scope_rate
        table.add_row("out-of-scope rate", "-" if math.isnan(oos) else f"{oos:.1%}")
        table.add_row(
            "latency p50/p95/p99 ms",
            f"{_ms(routing.latency_p50_ms)} / {_ms(routing.latency_p95_ms)} / {_ms(routing.latency_p99_ms)}",
        )
        table.add_row("strategies", ", ".join(f"{k}: {v}" for k, v in routing.strategies.items()))
        table.add_row(
            "confidence",
            "  ".join(f"{b['from']:.1f}+:{b['count']}" for b in routing.confidence_histogram if b["count"]),
        )
        console.print(table)
    if report.llm:
        console.print(_group_table("LLM calls", report.llm, _TTFT))
    if len(report.processes) > 1:
        console.print(_process_table(report.processes))
    system = report.system
    if system is not None and system.samples:
        console.print(
            f"system: {system.samples} samples · CPU avg {system.cpu_percent_avg or 0:.1f}% max "
            f"{system.cpu_percent_max or 0:.1f}% · memory max {system.memory_percent_max or 0:.1f}% · RSS max "
            f"{(system.rss_bytes_max or 0) / 2**20:.0f} MiB · disk {system.disk_percent_last or 0:.1f}% used · "
            f"queue depth max {system.queue_depth_max}",
            highlight=False,
        )


def _export(
    database: MetricsDatabase, table: str, export_format: ExportFormat, start: float | None, output: Path | None
) -> None:
    from vy_nexus.observability.metricsquery import export_table

    if output is None:
        if sys.stdout is None:  # started with stdout closed (>&-)
            raise ConfigError("cannot write the export: stdout is closed; use --output FILE")
        try:
            export_table(database, table, export_format, sys.stdout, since=start)
            sys.stdout.flush()
        except OSError as exc:  # a full disk (/dev/full), a closed pipe
            raise ConfigError(f"cannot write the export to stdout: {exc.strerror or exc}") from None
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as handle:
            count = export_table(database, table, export_format, handle, since=start)
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror}") from exc
    err_console.print(f"{count} rows → {output}", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def logs(
        ctx: typer.Context,
        level: str | None = typer.Option(None, "--level", "-l", help="Minimum level: debug, info, warn, error."),
        component: str | None = typer.Option(None, "--component", "-c", help="Only this component (gating, ...)."),
        since: str | None = typer.Option(None, "--since", help="From this time: 30m, 1h, 2d or ISO 8601 (UTC)."),
        until: str | None = typer.Option(None, "--until", help="Up to this time: 30m, 1h, 2d or ISO 8601 (UTC)."),
        task: str | None = typer.Option(None, "--task", "-t", help="Only entries of this task id."),
        grep: str | None = typer.Option(None, "--grep", "-g", help="Only lines containing this text (any case)."),
        limit: int | None = typer.Option(
            None, "--limit", "-n", min=1, help="Only the newest N entries (with --follow: stop after N new ones)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the matching JSON lines as they are."),
        follow_file: bool = typer.Option(False, "--follow", "-f", help="Keep waiting for new entries (Ctrl-C ends)."),
        local: bool = typer.Option(
            False, "--local", help="With a PostgreSQL store: read this machine's structured.jsonl, not the cluster's."
        ),
    ) -> None:
        """Search the structured journal; streams, so millions of lines are fine.

        It reads research_logs/structured.jsonl, or, with a PostgreSQL store.url, the journal every process of the
        cluster ships there (each entry names its process).

        Example: vy-nexus logs --level warn --since 1h --component coordinator
        """
        settings = state(ctx).settings()
        path = settings.logs_dir / STRUCTURED_FILENAME
        flt = LogFilter(
            level=_level(level),
            component=component,
            since=_optional_time(since),
            until=_optional_time(until),
            task_id=task,
            grep=grep,
        )
        stats = QueryStats()
        entries: Iterable[LogEntry]
        database: MetricsDatabase | None = None
        if settings.shared_database_url is not None and settings.logging.ship_to_store and not local:
            from vy_nexus.observability.journal_table import follow_table, query_table
            from vy_nexus.observability.metrics_db import MetricsDatabase

            database = MetricsDatabase.for_settings(settings)
            if follow_file:
                entries = follow_table(database, flt, stats=stats)
            else:
                entries = query_table(database, flt, stats, newest=limit)
        elif follow_file:
            entries = follow(path, flt, stats=stats)
        else:  # like tail: the newest, still in time order; the scan streams, only N entries are kept
            entries = query(path, flt, stats) if limit is None else collections.deque(query(path, flt, stats), limit)
        shown = 0
        out = sys.stdout
        colour = out.isatty()
        try:
            for entry in entries:
                out.write((entry.raw if as_json else format_entry(entry, colour=colour)) + "\n")
                shown += 1
                if follow_file:
                    out.flush()
                if follow_file and limit is not None and shown >= limit:
                    break
        except KeyboardInterrupt:  # --follow ends with Ctrl-C
            pass
        finally:
            out.flush()
            if database is not None:
                database.close()
        if database is not None:
            if not follow_file and not stats.lines:
                err_console.print(f"no journal entries yet in {database.label}", highlight=False)
        elif not follow_file and not path.exists():
            err_console.print(f"no journal yet at {path}", highlight=False)
        _report_damage(stats)

    metrics_app = typer.Typer(
        help="Performance metrics (metrics/performance.db, or the PostgreSQL store): report, export, Prometheus.",
        no_args_is_help=True,
    )

    @metrics_app.command("report")
    @handle_errors
    def report(
        ctx: typer.Context,
        since: str | None = typer.Option(None, "--since", help="From this time: 30m, 1h, 2d or ISO 8601 (UTC)."),
        expert: str | None = typer.Option(None, "--expert", "-e", help="Only this expert's executions."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Per expert and task type: count, success rate, p50/p95/p99 duration; routing; system; LLM calls.

        Example: vy-nexus metrics report --since 1d --expert code
        """
        from vy_nexus.observability.metrics_db import MetricsDatabase
        from vy_nexus.observability.metricsquery import build_report

        settings = state(ctx).settings()
        database = MetricsDatabase.for_settings(settings)
        try:
            result = build_report(database, since=_optional_time(since), expert=expert)
        finally:
            database.close()
        if as_json:
            print_json(result.as_dict())
            return
        render_report(result)
        if database.shared:  # say which cluster's numbers these are
            console.print(Text(f"metrics of every process recording in {database.label}", style="dim"))

    @metrics_app.command("export")
    @handle_errors
    def export(
        ctx: typer.Context,
        table: str = typer.Option("executions", "--table", help=f"One of: {', '.join(RAW_TABLES)}."),
        fmt: str = typer.Option("csv", "--format", help="csv (with a header) or json (one object per line)."),
        since: str | None = typer.Option(None, "--since", help="From this time: 30m, 1h, 2d or ISO 8601 (UTC)."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    ) -> None:
        """Export the raw rows of one metrics table as CSV or JSON lines.

        Example: vy-nexus metrics export --table routing --format json --since 1d -o routing.jsonl
        """
        settings = state(ctx).settings()
        if fmt not in ("csv", "json"):
            raise ConfigError(f"unknown export format {fmt!r}; choose csv or json")
        export_format = cast("ExportFormat", fmt)
        start = _optional_time(since)
        from vy_nexus.observability.metrics_db import MetricsDatabase

        database = MetricsDatabase.for_settings(settings)
        try:
            _export(database, table, export_format, start, output)
        finally:
            database.close()

    @metrics_app.command("prometheus")
    @handle_errors
    def prometheus(
        ctx: typer.Context,
        since: str | None = typer.Option(None, "--since", help="Only rows from this time: 30m, 1h, 2d or ISO."),
    ) -> None:
        """Print the Prometheus exposition (text format) of what the metrics database recorded.

        Example: vy-nexus metrics prometheus | grep vy_nexus_expert_duration_seconds_count
        """
        settings = state(ctx).settings()
        from vy_nexus.observability.metrics_db import MetricsDatabase
        from vy_nexus.observability.prometheus import PrometheusMetrics

        metrics = PrometheusMetrics()
        database = MetricsDatabase.for_settings(settings)
        try:
            metrics.replay(database, since=_optional_time(since))
        finally:
            database.close()
        sys.stdout.write(metrics.exposition().decode("utf-8"))

    app.add_typer(metrics_app, name="metrics")
