"""Events other components publish so their work shows up in the journal and the metrics.

* ``config.changed``: a config key was changed (``vy-nexus configure KEY VALUE``); journaled as a decision.
* ``llm.completed``: one LLM call finished (or failed). The LLM backends call ``publish_llm_completed``; the metrics
  collector stores it in the ``llm`` table and turns it into the OpenTelemetry GenAI metrics
  ``gen_ai_client_operation_duration_seconds`` and ``gen_ai_client_token_usage``.
"""

from __future__ import annotations

from typing import Any

from vy_nexus.events import EventBus

LLM_COMPLETED = "llm.completed"
CONFIG_CHANGED = "config.changed"


def publish_llm_completed(
    events: EventBus,
    *,
    provider: str,
    model: str,
    duration_ms: float,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    operation: str = "chat",
    error: str | None = None,
    error_type: str | None = None,
    expert_id: str | None = None,
    time_to_first_token_ms: float | None = None,
    finish_reason: str | None = None,
) -> None:
    """Tell observers about one LLM call. ``operation`` follows GenAI naming: chat, text_completion, embeddings."""
    if error is None:
        message = f"{provider}/{model} {operation} in {duration_ms:.0f} ms ({input_tokens}→{output_tokens} tokens)"
    else:
        message = f"{provider}/{model} {operation} failed after {duration_ms:.0f} ms: {error}"
    events.publish(
        LLM_COMPLETED,
        "reasoning",
        message,
        level="info" if error is None else "error",
        category="thought" if error is None else "error",  # the reasoning core thinking
        expert_id=expert_id,
        metadata={
            "provider": provider,
            "model": model,
            "operation": operation,
            "duration_ms": duration_ms,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "time_to_first_token_ms": time_to_first_token_ms,
            "finish_reason": finish_reason,
            "error": error,
            "error_type": error_type or (None if error is None else "error"),
        },
    )


def publish_config_changed(events: EventBus, *, key: str, previous: Any, value: Any, source: str = "cli") -> None:
    """Tell observers that ``key`` changed from ``previous`` to ``value``."""
    events.publish(
        CONFIG_CHANGED,
        "config",
        f"{key} changed from {previous!r} to {value!r} ({source})",
        category="decision",
        phase="config",
        metadata={"key": key, "previous": previous, "value": value, "source": source},
    )
