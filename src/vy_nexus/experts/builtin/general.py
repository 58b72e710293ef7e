"""The general expert: the fallback that takes any task."""

from __future__ import annotations

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.builtin.writing import text_statistics
from vy_nexus.tasks import Task


class GeneralExpert(BaseExpert):
    id = "general"
    name = "General Expert"
    version = "0.1.0"
    description = "Handles any task no specialist claims; answers conversationally with the reasoning core."
    capabilities = ("general", "chat", "help", "hello", "conversation")
    task_types = ("chat", "conversation")
    examples = ("hello, what can you do", "tell me a fun fact")
    priority = 0

    async def execute(self, task: Task) -> ExpertOutput:
        stats = text_statistics(task.description)
        return ExpertOutput(
            {
                "answer": "No specialist claimed this task and no reasoning core answered it.",
                "request_words": stats["words"],
            },
            confidence=0.3,
        )
