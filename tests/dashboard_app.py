"""The system and settings the dashboard's tests serve: the scripted LLM, an expert that always crashes (to raise the
"expert failing" alert), a second code expert (so two experts can be chosen) and a house rule that refuses tasks
mentioning "forbidden", quoting them (so a refusal and its user text show in the why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakes.llm import ScriptedBackend
from spine_experts import CrashingExpert, make_expert
from vy_nexus.config import Settings, load_settings
from vy_nexus.execution.governance import Policy, Ruling, TaskRequest, Verdict
from vy_nexus.system import VyNexus


class HouseRule(Policy):
    name = "house_rule"

    def check_task(self, request: TaskRequest) -> Ruling:
        text = request.task.description
        if "forbidden" in text:
            return Ruling(Verdict.DENIED, self.name, f"no forbidden work here (the task said: {text})")
        return Ruling(Verdict.ALLOWED, self.name, "nothing forbidden")


def dashboard_system(settings: Settings, llm: ScriptedBackend | None = None) -> VyNexus:
    """``llm``: the reasoning core's backend (default: two tokens 10 ms apart)."""
    system = VyNexus(settings, llm=llm or ScriptedBackend("streamed answer", delay=0.01), load_plugins=False)
    system.register(CrashingExpert(), source="test")
    system.register(make_expert("second-opinion", ("python", "code"), output={"summary": "fine"}), source="test")
    system.governance.policies.append(HouseRule())
    return system


def dashboard_settings(home: Path, *, sample_seconds: float = 15.0, api: dict[str, Any] | None = None) -> Settings:
    """``api``: the ``api.*`` keys to set (a rate limit, a body limit)."""
    return load_settings(
        home,
        api=api or {},
        store={"flush_interval_seconds": 0.02},
        logging={"flush_interval_seconds": 0.05},
        executor={"max_retries": 0},
        alerts={"expert_failures": 2, "error_rate": 1.0},
        routing={"strategy": "keyword"},
        metrics={"system_sample_seconds": sample_seconds},
    )
