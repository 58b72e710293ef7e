"""The state a new home starts with: this system's own phases, each job checked by a command run in the home.

Verification commands are argument lists (never shell lines) and may start with a program variable that the heartbeat
expands at run time (see ``pulse.expand_command``): ``{python}`` (this interpreter), ``{vy-nexus}`` (this
installation's CLI) and ``{sqlite3}`` (the sqlite3 CLI, or an equivalent Python one-liner when it is not installed).
They are the seed's checks adapted to this project: the journal has structured lines, the metrics database has
rows, the CLI offers its commands.
"""

from __future__ import annotations

from vy_nexus.foundation.state import Job, Meta, Phase, SovereignState

_STRUCTURED = "research_logs/structured.jsonl"


def _job(job_id: str, task: str, description: str, *verification: str, cyclic: bool = False) -> Job:
    return Job(
        id=job_id,
        task=task,
        description=description,
        verification=list(verification),
        status="cyclic" if cyclic else "pending",
    )


def default_state() -> SovereignState:
    phases = [
        Phase(
            id=1,
            name="Nervous system",
            description="Journal, metrics and state on disk: the system can see itself.",
            jobs=[
                _job(
                    "1.1",
                    "Structured journal",
                    "research_logs/structured.jsonl holds machine-readable lines with a level",
                    "grep",
                    "-c",
                    '"level":',
                    _STRUCTURED,
                ),
                _job(
                    "1.2",
                    "Human journal",
                    "research_logs/daily.md exists and is not empty",
                    "test",
                    "-s",
                    "research_logs/daily.md",
                ),
                _job(
                    "1.3",
                    "Configuration loads",
                    "the home's config.yaml is valid and the system builds from it",
                    "{vy-nexus}",
                    "status",
                    "--json",
                ),
            ],
        ),
        Phase(
            id=2,
            name="Reasoning core",
            description="A local language model answers for the experts.",
            jobs=[
                _job(
                    "2.1",
                    "Reasoning core configured",
                    "reasoning_core.provider is readable from the configuration",
                    "{vy-nexus}",
                    "configure",
                    "reasoning_core.provider",
                ),
                _job(
                    "2.2",
                    "Reasoning core used",
                    "the journal has recorded at least one LLM call",
                    "grep",
                    "-c",
                    '"kind":"llm.completed"',
                    _STRUCTURED,
                ),
            ],
        ),
        Phase(
            id=3,
            name="MoIE architecture",
            description="Experts, gating and the expert scaffold.",
            jobs=[
                _job("3.1", "Experts registered", "the registry lists experts", "{vy-nexus}", "experts", "--json"),
                _job(
                    "3.2",
                    "Gating routes tasks",
                    "the gating engine picks an expert for a code task",
                    "{vy-nexus}",
                    "route",
                    "fix this python function",
                    "--json",
                ),
                _job(
                    "3.3",
                    "Expert scaffold",
                    "vy-nexus create-expert is available",
                    "{vy-nexus}",
                    "create-expert",
                    "--help",
                ),
            ],
        ),
        Phase(
            id=4,
            name="Command & control",
            description="Governance, approvals, the kill switch, tasks run end to end.",
            jobs=[
                _job(
                    "4.1",
                    "Governance approvals",
                    "the approvals store is readable",
                    "{vy-nexus}",
                    "approvals",
                    "list",
                    "--json",
                ),
                _job("4.2", "Kill switch", "vy-nexus stop is available", "{vy-nexus}", "stop", "--help"),
                _job(
                    "4.3",
                    "Tasks run end to end",
                    "the journal has recorded an aggregated task result",
                    "grep",
                    "-c",
                    '"kind":"task.aggregated"',
                    _STRUCTURED,
                ),
            ],
        ),
        Phase(
            id=5,
            name="Intelligence & optimization",
            description="Metrics feed back into routing and operations.",
            jobs=[
                _job(
                    "5.1",
                    "Metrics recorded",
                    "metrics/performance.db answers a count over every recorded metric",
                    "{sqlite3}",
                    "metrics/performance.db",
                    "SELECT COUNT(*) FROM metrics;",
                ),
                _job(
                    "5.2",
                    "Heartbeat",
                    "the heartbeat keeps checking the system (recurring)",
                    "{vy-nexus}",
                    "pulse",
                    "--status",
                    "--json",
                    cyclic=True,
                ),
            ],
        ),
    ]
    return SovereignState(meta=Meta(current_phase=1), phases=phases)
