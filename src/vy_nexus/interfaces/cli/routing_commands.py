"""Routing commands: ``vy-nexus routes fit|eval|list`` and ``vy-nexus cache stats|clear`` (``routes train|rollback``
live in training_commands.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from vy_nexus.interfaces.cli import training_commands
from vy_nexus.interfaces.cli.common import console, handle_errors, print_json, state

routes_app = typer.Typer(
    help="Semantic routes: fit them on labeled examples, evaluate them, list them.", no_args_is_help=True
)
cache_app = typer.Typer(help="The routing cache and the on-disk embedding cache.", no_args_is_help=True)

LABEL_FIELD_HELP = "JSON field holding the label (e.g. intent or domain)."
STRATEGIES = ("keyword", "semantic", "hybrid")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


@routes_app.command("fit")
@handle_errors
def fit_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Labeled JSON Lines: one {text, <label>} per line."),
    label_field: str = typer.Option("intent", "--label-field", help=LABEL_FIELD_HELP),
    oos_data: Path | None = typer.Option(None, "--oos-data", help="Extra out-of-scope examples (JSON Lines)."),
    oos_label: str = typer.Option("oos", "--oos-label", help="Label that marks out-of-scope examples."),
    target: str | None = typer.Option(None, "--target", help="Expert id that new routes send tasks to."),
    holdout: float = typer.Option(0.2, "--holdout", help="Share of each route's examples held out to calibrate."),
    c: float = typer.Option(10.0, "--c", help="Inverse L2 strength of the logistic-regression head."),
    max_in_scope_loss: float = typer.Option(
        0.01, "--max-in-scope-loss", help="In-scope accuracy the out-of-scope cut may cost (0.01 = 1 point)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Learn routes, a classifier, a calibrated temperature and an out-of-scope cut from labeled examples.

    Example: vy-nexus routes fit --data train.jsonl --label-field intent --target general
    """
    from vy_nexus.routing.routes import read_labeled
    from vy_nexus.routing.training import fit_routes

    system = state(ctx).system(observe=False)
    examples = read_labeled(data, label_field)
    oos = read_labeled(oos_data, label_field) if oos_data is not None else []
    with console.status("embedding utterances and fitting routes..."):
        outcome = fit_routes(
            system.settings,
            system.registry,
            examples,
            oos_examples=oos,
            target=target,
            oos_label=oos_label,
            holdout=holdout,
            c=c,
            max_in_scope_loss=max_in_scope_loss,
        )
    if as_json:
        print_json(outcome.as_dict())
        return
    report = outcome.model.report
    console.print(
        Text.assemble(f"fitted {outcome.routes} routes ({outcome.new_routes} new) → ", (outcome.model.kind, "bold"))
    )
    for key in ("held_out_accuracy_centroid", "held_out_accuracy_head", "held_out_oos_recall"):
        if key in report:
            console.print(f"  {key.replace('_', ' ')}: {_pct(report[key])}")
    console.print(
        f"  temperature {outcome.model.temperature:.3f}, out-of-scope cut {outcome.model.rejection_threshold:.3f}"
    )
    console.print(f"  routes: {outcome.routes_file}\n  model:  {outcome.model_file}")
    if outcome.untargeted:
        shown = ", ".join(outcome.untargeted[:5]) + (" ..." if len(outcome.untargeted) > 5 else "")
        console.print(
            Text.assemble(
                (f"{len(outcome.untargeted)} route(s) target no registered expert ({shown}):", "yellow"),
                " fine for `routes eval`; set their `target` (or refit with --target) before routing.strategy"
                " semantic/hybrid",
            )
        )


@routes_app.command("eval")
@handle_errors
def eval_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Labeled JSON Lines to evaluate on."),
    label_field: str = typer.Option("intent", "--label-field", help=LABEL_FIELD_HELP),
    oos_data: Path | None = typer.Option(None, "--oos-data", help="Extra out-of-scope examples (JSON Lines)."),
    oos_label: str = typer.Option("oos", "--oos-label", help="Label that marks out-of-scope examples."),
    latency_sample: int = typer.Option(200, "--latency-sample", min=0, help="Queries timed one at a time."),
    strategy: str | None = typer.Option(
        None, "--strategy", help="With {text, accept} data: route with this strategy (keyword, semantic, hybrid)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Accuracy, out-of-scope recall and precision, calibration error and latency of the current routes.

    With {"text": ..., "accept": [expert ids]} lines, it scores the decisions `run` would execute instead:
    top-1 of gating, top-1 after governance, out-of-scope rate, latency.

    Example: vy-nexus routes eval --data val.jsonl --label-field domain
    """
    from vy_nexus.routing.decision_eval import is_accept_file
    from vy_nexus.routing.routes import read_labeled
    from vy_nexus.routing.training import evaluate_routes

    if is_accept_file(data):
        _eval_decisions(ctx, data, strategy, as_json)
        return
    system = state(ctx).system(observe=False)
    examples = read_labeled(data, label_field)
    if oos_data is not None:
        examples += read_labeled(oos_data, label_field)
    with console.status("routing the examples..."):
        report, _ = evaluate_routes(
            system.settings,
            system.registry,
            examples,
            label_field=label_field,
            oos_label=oos_label,
            latency_sample=latency_sample,
        )
    if as_json:
        print_json(report.as_dict())
        return
    table = Table(title=f"routing evaluation ({report.model_kind}, {report.labels} labels by {label_field})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("examples (in-scope / out-of-scope)", f"{report.examples} ({report.in_scope} / {report.out_of_scope})"),
        ("accuracy (in-scope, with rejection)", _pct(report.accuracy)),
        ("closed-set accuracy", _pct(report.closed_set_accuracy)),
        ("out-of-scope recall", _pct(report.oos_recall)),
        ("out-of-scope precision", _pct(report.oos_precision)),
        ("calibration error (ECE)", "-" if report.ece is None else f"{report.ece:.4f}"),
        ("mean confidence", "-" if report.mean_confidence is None else f"{report.mean_confidence:.3f}"),
    ]
    rows += [(f"latency {name} (ms)", f"{value:.2f}") for name, value in report.latency_ms.items()]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)


def _eval_decisions(ctx: typer.Context, data: Path, strategy: str | None, as_json: bool) -> None:
    from vy_nexus.errors import ConfigError
    from vy_nexus.routing.decision_eval import check_experts, evaluate_decisions, read_accept
    from vy_nexus.system import VyNexus

    settings = state(ctx).settings()
    if strategy is not None:
        if strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
        settings.routing.strategy = strategy  # type: ignore[assignment]  # checked above
        settings.given_keys |= {"routing.strategy"}
    system = VyNexus(settings, observe=False)
    examples = read_accept(data)
    check_experts(examples, {expert.id for expert in system.registry})
    with console.status("routing the examples..."):
        report = evaluate_decisions(examples, system.preview, strategy=system.gating.strategy.name)
    if as_json:
        print_json(report.as_dict())
        return
    table = Table(title=f"routing decisions ({report.strategy}, {report.examples} tasks)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        ("top-1 (gating)", _pct(report.top1)),
        ("top-1 (executed, after governance)", _pct(report.executed)),
        ("out of scope (fallback expert)", _pct(report.out_of_scope_rate)),
        ("rerouted by governance", _pct(report.rerouted_rate)),
    ]
    rows += [(f"top-1 where {expert} is acceptable", _pct(value)) for expert, value in report.per_expert.items()]
    rows += [(f"latency {name} (ms)", f"{value:.2f}") for name, value in report.latency_ms.items()]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for miss in report.misses:
        console.print(
            Text.assemble(
                ("miss", "yellow"),
                f" {miss['executed']} (routed {miss['routed']} {miss['confidence']:.2f}),"
                f" accept {', '.join(miss['accept'])}: {miss['text'][:100]!r}",
            )
        )


@routes_app.command("list")
@handle_errors
def list_command(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """The routes semantic routing uses: experts' examples plus the routes file.

    Example: vy-nexus routes list --json
    """
    from vy_nexus.routing.training import strategy_for

    system = state(ctx).system(observe=False)
    strategy = strategy_for(system.settings, system.registry)
    routes = strategy.routes(check=False)
    fitted = strategy.load_model(routes, fit_now=False) is not None  # listing never fits
    rows: list[dict[str, Any]] = [
        {
            "name": r.name,
            "target": r.expert_id,
            "registered": r.expert_id in system.registry,
            "utterances": len(r.utterances),
            "threshold": r.threshold,
        }
        for r in routes
    ]
    if as_json:
        data = {"routes_file": str(strategy.routes_file), "fitted": fitted, "model": strategy.model_note}
        print_json({**data, "routes": rows})
        return
    table = Table(title=f"{len(rows)} routes; model: {strategy.model_note}")
    for column in ("name", "target", "utterances", "threshold"):
        table.add_column(column)
    for row in rows:
        target = Text(str(row["target"])) if row["registered"] else Text(f"{row['target']} (not registered)", "red")
        table.add_row(
            str(row["name"]),
            target,
            str(row["utterances"]),
            "-" if row["threshold"] is None else str(row["threshold"]),
        )
    console.print(table)


@cache_app.command("stats")
@handle_errors
def cache_stats_command(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")
) -> None:
    """Routing-cache counters of this process and the size of the on-disk embedding cache.

    The routing cache lives in the memory of each vy-nexus process (API server, `run`): a fresh CLI process has
    routed nothing, so its counters are zero. A server's live counters are in `status` and the metrics.

    Example: vy-nexus cache stats --json
    """
    from vy_nexus.routing.embedding_cache import disk_stats

    system = state(ctx).system(observe=False)
    routing = system.cache.stats().as_dict() if system.cache is not None else None
    directory = system.settings.cache_dir / "embeddings"
    embeddings = disk_stats(directory)
    data = {
        "routing_cache": routing,
        "routing_cache_scope": "per process (in memory); this CLI process has routed nothing yet",
        "embedding_cache": {"directory": str(directory), **embeddings},
    }
    if as_json:
        print_json(data)
        return
    if routing is None:
        console.print("routing cache: disabled (routing.cache.enabled = false)")
    else:
        console.print(
            f"routing cache (per process, in memory; this CLI process has routed nothing): {routing['size']}/"
            f"{routing['max_size']} entries, ttl {routing['ttl_seconds']:.0f}s, hits {routing['hits']},"
            f" misses {routing['misses']}, evictions {routing['evictions']}"
        )
    damaged = f" ({embeddings['damaged']} damaged: rebuilt on next use)" if embeddings["damaged"] else ""
    console.print(
        f"embedding cache (on disk, {directory}): {embeddings['vectors']} vectors in"
        f" {embeddings['files']} file(s){damaged}, {embeddings['bytes'] / 1024:.0f} KiB"
    )


@cache_app.command("clear")
@handle_errors
def cache_clear_command(ctx: typer.Context) -> None:
    """Delete the on-disk utterance embeddings (recomputed on next use) and this process's routing cache.

    Example: vy-nexus cache clear
    """
    from vy_nexus.routing.embedding_cache import clear_disk

    system = state(ctx).system(observe=False)
    if system.cache is not None:
        system.cache.clear()
    removed = clear_disk(system.settings.cache_dir / "embeddings")
    console.print(f"removed {removed} embedding cache file(s); routing caches of running processes clear on restart")


training_commands.register(routes_app)


def register(app: typer.Typer) -> None:
    app.add_typer(routes_app, name="routes")
    app.add_typer(cache_app, name="cache")
