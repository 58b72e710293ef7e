"""Live output for ``vy-nexus run``: the routing decision once it is made, then streamed tokens as they arrive,
headed by the expert and backend producing them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console, RenderableType
from rich.text import Text

from vy_nexus.events import Event
from vy_nexus.reasoning.llm import TokenEvent
from vy_nexus.tasks import AggregatedResult, RoutingDecision


class RoutingPrinter:
    """An event subscriber that prints the decision a task runs with before any answer streams: the router's
    (``task.routed``) once governance allowed it, or the one governance amended it to (``task.governed``: a
    low-confidence task goes to the fallback expert). Printing the router's first showed one expert, then another
    one's answer."""

    def __init__(self, console: Console, render: Callable[[RoutingDecision], RenderableType]) -> None:
        self.console = console
        self.render = render
        self.shown: RoutingDecision | None = None
        self._routed: RoutingDecision | None = None

    def __call__(self, event: Event) -> None:
        if self.shown is not None or event.task_id is None:
            return
        meta = event.metadata
        if event.kind == "task.routed":
            self._routed = RoutingDecision(
                task_id=event.task_id,
                expert_ids=list(meta["experts"]),
                confidences=dict(meta["confidences"]),
                strategy=str(meta["strategy"]),
                reason=str(meta["reason"]),
                fallback=bool(meta.get("fallback")),
                out_of_scope=bool(meta.get("out_of_scope")),
                cache_hit=bool(meta.get("cache_hit")),
                latency_ms=float(meta.get("latency_ms") or 0.0),
            )
        elif event.kind == "task.governed" and self._routed is not None:
            amended = meta.get("decision")
            self.shown = RoutingDecision.from_dict(amended) if isinstance(amended, dict) else self._routed
            self.console.print(self.render(self.shown))


class TokenPrinter:
    """A token callback (see ``reasoning.streaming.stream_tokens_to``) that prints each token without buffering."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.tokens = 0
        self.texts: list[str] = []
        """The full text of each streamed answer, so the final result need not print it again."""
        self._current: tuple[str | None, str, str] | None = None

    def __call__(self, event: TokenEvent) -> None:
        source = (event.expert_id, event.provider, event.model)
        if source != self._current:
            if self._current is not None:
                self.console.print()
            self.console.print(
                Text.assemble(
                    (event.expert_id or "llm", "bold cyan"), " ", (f"· {event.provider}/{event.model}", "dim")
                )
            )
            self._current = source
            self.texts.append("")
        self.tokens += 1
        self.texts[-1] += event.text
        self.console.print(event.text, end="", markup=False, highlight=False, soft_wrap=True)
        self.console.file.flush()

    def finish(self) -> None:
        if self._current is not None:
            self.console.print()
            self._current = None


def truncation_notes(result: AggregatedResult) -> list[str]:
    """A note for each answer the backend cut at the token limit (``finish_reason`` ``length``)."""
    from vy_nexus.reasoning.token_limits import cut_at_token_limit

    return [
        f"{expert_id}: the answer was cut at the token limit ({tokens} tokens;"
        " raise reasoning_core.max_tokens for longer answers)"
        for expert_id, tokens in cut_at_token_limit(result)
    ]


def backends_used(result: AggregatedResult) -> list[str]:
    """``expert: provider/model`` for each expert whose output names the reasoning backend that answered."""
    used = []
    for item in result.results:
        output: Any = item.output
        reasoning = output.get("reasoning") if isinstance(output, dict) else None
        if isinstance(reasoning, dict):
            used.append(f"{item.expert_id}: {reasoning.get('provider')}/{reasoning.get('model')}")
    return used
