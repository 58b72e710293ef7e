"""Live output for ``vy-nexus run``: streamed tokens as they arrive, headed by the expert and backend producing them."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from vy_nexus.reasoning.llm import TokenEvent
from vy_nexus.tasks import AggregatedResult


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


def backends_used(result: AggregatedResult) -> list[str]:
    """``expert: provider/model`` for each expert whose output names the reasoning backend that answered."""
    used = []
    for item in result.results:
        output: Any = item.output
        reasoning = output.get("reasoning") if isinstance(output, dict) else None
        if isinstance(reasoning, dict):
            used.append(f"{item.expert_id}: {reasoning.get('provider')}/{reasoning.get('model')}")
    return used
