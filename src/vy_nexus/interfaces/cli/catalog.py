"""Every top-level command: its name, the module that defines it and its one-line help, as plain data.

``vy-nexus --help`` lists this table without importing a single command module, and running a command imports only
the module that defines it (see lazy_group.py). tests/unit/test_cli_catalog.py checks the table against the
commands the modules really define: same names, same modules, same first paragraph of help.
"""

from __future__ import annotations

from dataclasses import dataclass

_PACKAGE = "vy_nexus.interfaces.cli"


@dataclass(frozen=True)
class CommandEntry:
    name: str
    module: str
    """The module whose ``register(app)`` adds the command (or the command group) to ``app``."""
    help: str
    """The first paragraph of the command's help, on one line."""


def _entries(module: str, *commands: tuple[str, str]) -> tuple[CommandEntry, ...]:
    return tuple(CommandEntry(name, f"{_PACKAGE}.{module}", help) for name, help in commands)


COMMANDS: tuple[CommandEntry, ...] = (
    *_entries(
        "core_commands",
        ("run", "Route a task to the best expert(s), run them and print the result."),
        (
            "route",
            "Show which expert(s) `run` would use for a task, with confidences and the reasoning (governance's"
            " low-confidence fallback included). Runs nothing.",
        ),
        ("experts", "List the registered experts, their capabilities and where each came from."),
        ("status", "Show the home directory, experts, routing, reasoning core and executor."),
        (
            "configure",
            "Read or change one config key; the file is validated, written atomically and keeps its comments.",
        ),
    ),
    *_entries(
        "observability_commands",
        ("logs", "Search the structured journal; streams, so millions of lines are fine."),
    ),
    *_entries(
        "scaffold_commands",
        (
            "create-expert",
            "Generate a new expert: its module, a pytest file that passes as generated, and a Markdown doc.",
        ),
    ),
    *_entries(
        "foundation_commands",
        ("stop", "Kill switch: ask every running vy-nexus of this home to shut down gracefully."),
        ("pulse", "Heartbeat: verify the current phase's first pending job; advance the phase when all its jobs hold."),
    ),
    *_entries(
        "server_commands",
        ("serve", "Run the REST API (and the OpenAI-compatible /v1) in the foreground until stopped."),
        ("start", "Start the server in the background (pid file in <home>/api/); `vy-nexus stop` stops it."),
        ("shell", "An interactive shell (prompt `moie-os>`) with history and tab completion over these commands."),
        (
            "query",
            "The seed's query command: `query tasks` (tasks list), `query experts`, `query metrics` (metrics report).",
        ),
    ),
    *_entries(
        "worker_commands",
        (
            "worker",
            "Run experts for a cluster: take expert calls from executor.broker_url and store their results in"
            " store.url. Uses the same config and experts (built-ins, experts directory, plugins) as the server.",
        ),
    ),
    *_entries(
        "observability_commands",
        (
            "metrics",
            "Performance metrics (metrics/performance.db, or the PostgreSQL store): report, export, Prometheus.",
        ),
    ),
    *_entries(
        "routing_commands",
        ("routes", "Semantic routes: fit them on labeled examples, evaluate them, list them."),
        ("cache", "The routing cache and the on-disk embedding cache."),
    ),
    *_entries(
        "foundation_commands",
        (
            "approvals",
            "Approval requests for destructive actions (shutdown, unregistering experts, config changes).",
        ),
    ),
    *_entries(
        "tasks_commands", ("tasks", "Tasks in the task store: list them, show one with its history, cancel one.")
    ),
    *_entries("server_commands", ("keys", "API keys for the server: create (shown once), list, revoke.")),
)

BY_NAME: dict[str, CommandEntry] = {entry.name: entry for entry in COMMANDS}
