"""vy-nexus: MOIE-OS, a local-first Mixture of Intelligent Experts task router.

Import from here; the submodules are the implementation.
"""

from importlib.metadata import PackageNotFoundError, version

from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import (
    ConfigError,
    ExpertError,
    ExpertExecutionError,
    ExpertRegistrationError,
    ExpertTimeoutError,
    GovernanceError,
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

try:
    __version__ = version("vy-nexus")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "AdminAction",
    "AggregatedResult",
    "BaseExpert",
    "ConfigError",
    "Event",
    "EventBus",
    "ExpertContext",
    "ExpertError",
    "ExpertExecutionError",
    "ExpertOutput",
    "ExpertRegistrationError",
    "ExpertRegistry",
    "ExpertResult",
    "ExpertTimeoutError",
    "GatingEngine",
    "Governance",
    "GovernanceError",
    "Policy",
    "Priority",
    "ReasoningError",
    "RoutingCache",
    "RoutingDecision",
    "RoutingError",
    "Ruling",
    "SafeFileSystem",
    "SafetyError",
    "SafetyHandler",
    "Settings",
    "Severity",
    "StateError",
    "Task",
    "TaskError",
    "TaskRequest",
    "UnknownExpertError",
    "Verdict",
    "VyNexus",
    "VyNexusError",
    "__version__",
    "load_settings",
]
