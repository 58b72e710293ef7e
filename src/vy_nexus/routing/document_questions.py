"""Whether a request about a handed-over document asks what the document says (a question for the experts that
answer questions) or asks for work on the text itself (summarise, rewrite, translate, count: the writing expert's).

A document handed over with the task (``--input notes.txt``, ``{"documents": ...}``, or pasted into the text) is
evidence for every expert that works on documents; which of them a request needs depends on what it asks. A
request is a **question about the document** when it reads as a question — it ends with ``?``, opens with a
question word or an auxiliary ("what", "who", "when", "how", "does", "is", "can", ...), asks one inside a request
("tell me who objected", "I want to know when"), or asks what the text says ("does it say", "according to this")
— and names no work on the text as text (``WORK_ON_THE_TEXT``: summarising, rewriting, editing, translating,
counting, critiquing, drafting from it, or programming or charting with it). Cheap by design: two regular
expressions over the request, run only for tasks that carry a document.
"""

from __future__ import annotations

import re

from vy_nexus.routing.pasted import split_pasted
from vy_nexus.routing.payload import DOCUMENT
from vy_nexus.tasks import Task

QUESTION_TASK_TYPE = "question"
"""The task type a question about a handed-over document is routed as (the research expert declares it)."""

QUESTION_OPENING = re.compile(
    r"^\W*(?:what|what's|whats|who|who's|whom|whose|when|when's|where|where's|which|why|how|how's|does|do|did|is|"
    r"are|was|were|has|have|had|can|could|will|would|should|shall|may|might|must|isn't|aren't|doesn't|didn't)\b"
)
ASKS_WHAT_IT_SAYS = re.compile(
    r"\b(?:tell\s+me|know|find\s+out|ask(?:ing)?|wonder(?:ing)?|explain)\s+(?:who|whom|whose|what|when|where|which|"
    r"why|how|whether|if)\b|\b(?:does|do|did)\s+(?:it|this|that|they|the\s+\w+)\s+(?:say|mention|state|claim|tell|"
    r"give|list|name)\b|\baccording\s+to\b"
)
WORK_ON_THE_TEXT = re.compile(
    r"\b(?:summar(?:y|ies|ise[sd]?|ize[sd]?|ising|izing)|tl;?\s?dr|shorten\w*|condense\w*|abridge\w*|rewrit\w*|"
    r"reword\w*|rephras\w*|paraphras\w*|proof-?read\w*|edit|editing|simplif\w*|easier\s+to\s+read|translat\w*|"
    r"spell\w*|typos?|grammar|grammatical\w*|punctuat\w*|tone|wording|worded|readab\w*|word\s*count|"
    r"reading\s+(?:time|ease|level)|how\s+many\s+(?:words|sentences|characters|paragraphs|lines|pages)|"
    r"how\s+long\s+is\s+(?:this|it|the\s+(?:text|document|article|essay|piece|note|notes|letter|email|story))"
    r"(?:\s+(?:text|document|article|essay|piece))?(?=\W*$)|(?:make|turn|convert|format)\s+(?:this|it)|"
    r"(?:polish|improve|check|correct|fix|review|critique)\s+(?:this|it|my)|(?:writing|the|my|its)\s+style|"
    r"(?:more|less|too)\s+(?:in)?formal\w*|formal\s+enough|bullet\w*\s+(?:points?|list|the|this|it)|"
    r"feedback\s+on|what\s+do\s+you\s+think\s+(?:of|about)|well\s+written|my\s+writing|any\s+(?:errors|mistakes)|"
    r"(?:title|headline)s?\s+for|write|draft\s+(?:a|an|me|my)|compose|(?:reply|respond)\s+to\s+(?:this|it)|"
    r"python|javascript|code|script|regex|sql|chart|graph|spreadsheet|csv|plot\s+(?:this|it|the))\b"
)
"""Requests for work on the text as text, or with it as material, rather than for what it says."""


def asks_about_the_document(request: str) -> bool:
    """Whether ``request`` (the words addressed to vy-nexus, without the document) asks what a handed-over document
    says, rather than for work on the text (see the module docstring)."""
    text = " ".join(request.lower().split())
    if not text or WORK_ON_THE_TEXT.search(text):
        return False
    return text.endswith("?") or bool(QUESTION_OPENING.match(text) or ASKS_WHAT_IT_SAYS.search(text))


def document_request(task: Task, kind: str | None, pasted: tuple[str, ...]) -> str | None:
    """The request about the document ``task`` hands over, given the kind of its input (``payload_kind``) and of
    the material pasted in its text (``pasted_kinds``): for an ``--input`` document the task text, for a pasted one
    the words around it; ``None`` when it hands over no document."""
    if kind == DOCUMENT:
        return task.description
    if DOCUMENT in pasted:
        return split_pasted(task.description).request
    return None


def is_question_about_a_document(task: Task, kind: str | None, pasted: tuple[str, ...]) -> bool:
    """Whether ``task`` hands over a document (``kind`` and ``pasted`` as in ``document_request``) and asks what
    it says."""
    request = document_request(task, kind, pasted)
    return request is not None and asks_about_the_document(request)
