"""The expert registry: who is registered, indexed by capability, with a version that changes on every change."""

from __future__ import annotations

import difflib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from vy_nexus.errors import ExpertRegistrationError, UnknownExpertError
from vy_nexus.experts.base import BaseExpert, check_declaration

ChangeListener = Callable[[str, str], None]
"""Called with (action, expert_id) after register/unregister/update."""


@dataclass(frozen=True, slots=True)
class Registration:
    expert: BaseExpert
    source: str


class ExpertRegistry:
    """Thread-safe registry with capability and task-type indexes, so routing never scans every expert."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Registration] = {}
        self._by_capability: dict[str, set[str]] = {}
        self._by_task_type: dict[str, set[str]] = {}
        self._version = 0
        self._listeners: list[ChangeListener] = []
        self.problems: list[str] = []
        """Experts that could not be loaded (broken plugins), for ``vy-nexus experts`` to report."""

    @property
    def version(self) -> int:
        """Increases on every registration change; caches key on it."""
        return self._version

    def on_change(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def register(self, expert: BaseExpert, *, source: str = "builtin", replace: bool = False) -> None:
        check_declaration(expert)
        with self._lock:
            existing = self._entries.get(expert.id)
            if existing is not None and not replace:
                raise ExpertRegistrationError(
                    f"an expert with id '{expert.id}' is already registered (from {existing.source})",
                    expert_id=expert.id,
                )
            if existing is not None:
                self._unindex(existing.expert)
            self._entries[expert.id] = Registration(expert, source)
            self._index(expert)
            self._version += 1
        self._notify("updated" if existing else "registered", expert.id)

    def unregister(self, expert_id: str) -> BaseExpert:
        with self._lock:
            removed = self._entries.pop(expert_id, None)
            if removed is None:
                raise self._unknown(expert_id)
            self._unindex(removed.expert)
            self._version += 1
        self._notify("unregistered", expert_id)
        return removed.expert

    def get(self, expert_id: str) -> BaseExpert:
        entry = self._entries.get(expert_id)
        if entry is None:
            raise self._unknown(expert_id)
        return entry.expert

    def source(self, expert_id: str) -> str:
        entry = self._entries.get(expert_id)
        if entry is None:
            raise self._unknown(expert_id)
        return entry.source

    def __contains__(self, expert_id: object) -> bool:
        return expert_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[BaseExpert]:
        with self._lock:
            experts = [entry.expert for entry in self._entries.values()]
        return iter(experts)

    def list(self) -> list[BaseExpert]:
        return sorted(self, key=lambda e: (-e.priority, e.id))

    def by_capability(self, capability: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._by_capability.get(capability.lower(), ()))

    def by_task_type(self, task_type: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._by_task_type.get(task_type.lower(), ()))

    def capabilities(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._by_capability)

    def stats(self) -> dict[str, Any]:
        sources: dict[str, int] = defaultdict(int)
        for entry in self._entries.values():
            sources[entry.source.split(":", 1)[0]] += 1
        return {
            "experts": len(self._entries),
            "capabilities": len(self._by_capability),
            "version": self._version,
            "by_source": dict(sources),
            "problems": list(self.problems),
        }

    def _index(self, expert: BaseExpert) -> None:
        for cap in expert.capabilities:
            self._by_capability.setdefault(cap.lower(), set()).add(expert.id)
        for task_type in expert.task_types:
            self._by_task_type.setdefault(task_type.lower(), set()).add(expert.id)

    def _unindex(self, expert: BaseExpert) -> None:
        for index, keys in (
            (self._by_capability, expert.capabilities),
            (self._by_task_type, expert.task_types),
        ):
            for key in keys:
                ids = index.get(key.lower())
                if ids is not None:
                    ids.discard(expert.id)
                    if not ids:
                        del index[key.lower()]

    def _notify(self, action: str, expert_id: str) -> None:
        for listener in list(self._listeners):
            listener(action, expert_id)

    def _unknown(self, expert_id: str) -> UnknownExpertError:
        close = difflib.get_close_matches(expert_id, list(self._entries), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return UnknownExpertError(f"no expert with id '{expert_id}'{hint}", expert_id=expert_id)
