"""RoutingCache: an LRU cache with a TTL for routing decisions.

The key hashes everything routing depends on: the task type, the description (normalised when it is a plain
one-line request, exact when it carries pasted material, see ``routing_text_key``), the routing-relevant
context, the number of experts asked for and the registry version. Registering, replacing or unregistering an
expert bumps the registry version and also clears the cache, so a stale decision is never served.

Counters: hits, misses, LRU evictions, TTL expirations and invalidations, read as one consistent snapshot with
``stats()`` (``VyNexus.status()["routing"]["cache"]`` shows it). Metrics get hits and misses per decision from the
``task.routed`` event (``cache_hit``); evictions/expirations are gauges an exporter reads from ``stats()`` — the
hot path publishes nothing extra. The cache lives in process memory: a new process starts empty.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vy_nexus.routing.pasted import is_plain_request
from vy_nexus.routing.payload import payload_kind
from vy_nexus.tasks import RoutingDecision, Task

ROUTING_CONTEXT_KEYS = ("experts", "expert", "capabilities", "language")
"""Context keys that change a routing decision; other context (user ids, payload hints) does not."""


def normalise_text(text: str) -> str:
    """Lower case, whitespace runs collapsed to one space, no leading or trailing space."""
    return " ".join(text.lower().split())


def routing_text_key(text: str) -> str:
    """The text as the cache key sees it: a plain one-line request normalised (routing reads it as words, so
    "Fix the  BUG" and "fix the bug" share an entry), anything else exactly as given. Routing reads the line
    structure and case of pasted material (a CSV run, a Markdown table, indented code, ``SELECT ... FROM``):
    collapsed onto one line, a pasted table is no longer a table. The two forms are tagged so they never meet."""
    if is_plain_request(text):
        return f"n{normalise_text(text)}"
    return f"x{text}"


def routing_key(task: Task, registry_version: int, top_k: int) -> str:
    """A 128-bit hex digest of everything a routing decision depends on.

    The common case (no routing-relevant context) skips JSON entirely, which keeps a cache hit in single-digit
    microseconds. Fields are length-prefixed, so no choice of type or text can collide with another split.
    """
    relevant = [(key, task.context[key]) for key in ROUTING_CONTEXT_KEYS if key in task.context]
    context = json.dumps(relevant, sort_keys=True, default=str, separators=(",", ":")) if relevant else ""
    text = routing_text_key(task.description)
    kind = payload_kind(task.input) or ""
    material = (
        f"{len(task.type)}:{task.type}|{len(text)}:{text}|{len(context)}:{context}|{kind}|{top_k}|{registry_version}"
    )
    return hashlib.blake2b(material.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int
    expirations: int
    invalidations: int
    size: int
    max_size: int
    ttl_seconds: float

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "invalidations": self.invalidations,
            "size": self.size,
            "max_size": self.max_size,
            "ttl_seconds": self.ttl_seconds,
            "hit_rate": round(self.hit_rate, 4),
        }


class RoutingCache:
    """Thread-safe LRU + TTL cache of routing decisions, with hit/miss/eviction counters.

    Two ordered dicts instead of cachetools' ``TTLCache``: one in use order (least recently used first, for
    eviction), one in write order, which is expiry order because every entry lives ``ttl_seconds``. A put costs
    about a tenth of ``TTLCache``'s (it runs on every uncached routing decision).
    """

    def __init__(self, max_size: int = 1000, ttl_seconds: float = 300.0, timer: Callable[[], float] = time.monotonic):
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._by_use: OrderedDict[str, RoutingDecision] = OrderedDict()
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._timer = timer
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._expirations = 0
        self._invalidations = 0
        self.ttl_seconds = ttl_seconds
        self.max_size = max_size

    def get(self, key: str) -> RoutingDecision | None:
        with self._lock:
            expires_at = self._expiry.get(key)
            if expires_at is None or expires_at <= self._timer():
                if expires_at is not None:
                    self._expire(self._timer())
                self._misses += 1
                return None
            self._by_use.move_to_end(key)
            self._hits += 1
            return self._by_use[key]

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has a live entry; counts neither a hit nor a miss."""
        with self._lock:
            expires_at = self._expiry.get(key)  # type: ignore[call-overload]
            return expires_at is not None and expires_at > self._timer()

    def put(self, key: str, decision: RoutingDecision) -> None:
        with self._lock:
            now = self._timer()
            self._expire(now)
            self._by_use[key] = decision
            self._by_use.move_to_end(key)
            self._expiry[key] = now + self.ttl_seconds
            self._expiry.move_to_end(key)
            if len(self._by_use) > self.max_size:
                oldest, _ = self._by_use.popitem(last=False)
                del self._expiry[oldest]
                self._evictions += 1

    def _expire(self, now: float) -> None:
        expiry = self._expiry
        while expiry:
            key, expires_at = next(iter(expiry.items()))
            if expires_at > now:
                return
            del expiry[key]
            del self._by_use[key]
            self._expirations += 1

    def invalidate(self) -> None:
        """Drop every entry (experts changed)."""
        with self._lock:
            self._by_use.clear()
            self._expiry.clear()
            self._invalidations += 1

    clear = invalidate

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._timer())
            return len(self._by_use)

    def stats(self) -> CacheStats:
        with self._lock:
            self._expire(self._timer())
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                expirations=self._expirations,
                invalidations=self._invalidations,
                size=len(self._by_use),
                max_size=self.max_size,
                ttl_seconds=self.ttl_seconds,
            )
