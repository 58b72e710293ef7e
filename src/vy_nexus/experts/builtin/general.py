"""The general expert: the fallback that takes any task and answers it conversationally with the reasoning core.

An answer about a document handed over as the input (prose: ``routing/payload.py``) is checked against it
(``grounding.py``): what it asserts that the document lacks is listed as ``unsupported`` and lowers the confidence
in proportion."""

from __future__ import annotations

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.builtin.grounding import check_grounding
from vy_nexus.experts.builtin.thinking import reasoning_core, require, think
from vy_nexus.experts.builtin.writing import text_statistics
from vy_nexus.routing.payload import DOCUMENT, payload_kind
from vy_nexus.tasks import Task

SYSTEM = "You are vy-nexus, a concise and helpful assistant. Answer directly; say so when you do not know."
MAX_INPUT_CHARS = 4000


class GeneralExpert(BaseExpert):
    id = "general"
    name = "General Expert"
    version = "0.2.0"
    description = "Handles any task no specialist claims; answers conversationally with the reasoning core."
    capabilities = ("general", "chat", "help", "hello", "conversation")
    task_types = ("chat", "conversation")
    examples = ("hello, what can you do", "tell me a fun fact")
    priority = 0

    async def execute(self, task: Task) -> ExpertOutput:
        if reasoning_core(self.context) is None:
            stats = text_statistics(task.description)
            return ExpertOutput(
                {
                    "answer": "No specialist claimed this task and no reasoning core answered it.",
                    "request_words": stats["words"],
                },
                confidence=0.3,
            )
        given = task.input[:MAX_INPUT_CHARS] if isinstance(task.input, str) and task.input.strip() else None
        prompt = f"{task.description}\n\n{given}" if given is not None else task.description
        thought = await think(self.context, expert_id=self.id, system=SYSTEM, prompt=prompt)
        response = require(thought, expert_id=self.id, task_id=task.id, what="answer")
        answer = response.text.strip()
        confidence = 0.6 if response.finish_reason == "stop" else 0.45
        if given is None or payload_kind(task.input) != DOCUMENT:  # a word or a value handed over is no source
            return ExpertOutput({"answer": answer, **thought.provenance()}, confidence=confidence)
        grounding = check_grounding(answer, given, request=task.description)
        output = {"answer": answer, "grounding": grounding.describe("the input"), **grounding.fields()}
        return ExpertOutput({**output, **thought.provenance()}, confidence=grounding.scaled(confidence))
