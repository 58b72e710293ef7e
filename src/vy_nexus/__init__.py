"""vy-nexus: MOIE-OS, a local-first Mixture of Intelligent Experts task router.

Import from here; the submodules are the implementation. Names load on first use (PEP 562), so importing one
submodule does not import the whole system.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vy_nexus._lazy import lazy_exports

if TYPE_CHECKING:
    from vy_nexus.config import Settings, load_settings
    from vy_nexus.errors import (
        ConfigError,
        ExpertError,
        ExpertExecutionError,
        ExpertRegistrationError,
        ExpertTimeoutError,
        GovernanceError,
        InputError,
        PayloadTooLargeError,
        ReasoningError,
        RoutingError,
        SafetyError,
        StateError,
        TaskError,
        UnknownExpertError,
        VyNexusError,
    )
    from vy_nexus.events import Event, EventBus
    from vy_nexus.execution.governance import AdminAction, Governance, Policy, Ruling, TaskRequest, Verdict
    from vy_nexus.experts.base import BaseExpert, ExpertContext, ExpertOutput
    from vy_nexus.experts.registry import ExpertRegistry
    from vy_nexus.foundation.safe_fs import SafeFileSystem
    from vy_nexus.foundation.safety import SafetyHandler, Severity
    from vy_nexus.routing.cache import RoutingCache
    from vy_nexus.routing.gating import GatingEngine
    from vy_nexus.system import VyNexus
    from vy_nexus.tasks import AggregatedResult, ExpertResult, Priority, RoutingDecision, Task

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("Settings", "load_settings"), "vy_nexus.config"),
    **dict.fromkeys(
        (
            "ConfigError",
            "ExpertError",
            "ExpertExecutionError",
            "ExpertRegistrationError",
            "ExpertTimeoutError",
            "GovernanceError",
            "InputError",
            "PayloadTooLargeError",
            "ReasoningError",
            "RoutingError",
            "SafetyError",
            "StateError",
            "TaskError",
            "UnknownExpertError",
            "VyNexusError",
        ),
        "vy_nexus.errors",
    ),
    **dict.fromkeys(("Event", "EventBus"), "vy_nexus.events"),
    **dict.fromkeys(
        ("AdminAction", "Governance", "Policy", "Ruling", "TaskRequest", "Verdict"), "vy_nexus.execution.governance"
    ),
    **dict.fromkeys(("BaseExpert", "ExpertContext", "ExpertOutput"), "vy_nexus.experts.base"),
    "ExpertRegistry": "vy_nexus.experts.registry",
    "SafeFileSystem": "vy_nexus.foundation.safe_fs",
    **dict.fromkeys(("SafetyHandler", "Severity"), "vy_nexus.foundation.safety"),
    "RoutingCache": "vy_nexus.routing.cache",
    "GatingEngine": "vy_nexus.routing.gating",
    "VyNexus": "vy_nexus.system",
    **dict.fromkeys(("AggregatedResult", "ExpertResult", "Priority", "RoutingDecision", "Task"), "vy_nexus.tasks"),
}

__version__ = "0.1.0"
"""The one place the version is written: the wheel's metadata reads it from here (pyproject.toml, tool.hatch.version),
so no command pays for an importlib.metadata lookup to print it."""

__all__ = sorted([*_EXPORTS, "__version__"])

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return __all__
