"""The code expert: writes code with the reasoning core, then checks it; checks, explains and reviews given code.

Modes, chosen from the task:
* **check** (code given, no request for words): exact analysis only: ``compile()`` finds every error the compiler
  would (``def f(a, a)``, ``return`` outside a function, not only what ``ast.parse`` refuses), then functions,
  classes, imports and line count. Text that parses but does nothing (CSV rows, a bare word) is reported as not
  code. Needs no LLM.
* **review** (code given and the task asks to review, explain, find bugs, improve...): the analysis, plus the
  reasoning core's review grounded in it.
* **generate** (no code given): the reasoning core writes Python, the expert compiles it; an error earns one repair
  round with the error message; a repair that compiles replaces both ``code`` and ``answer``.

Code in another language (JavaScript, TypeScript, C, C++, Java, C#, Go, Rust, SQL, shell) is named as such, not
reported as a Python syntax error: nothing is compiled, and a review goes to the reasoning core as that language.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import Any, ClassVar

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.builtin.code_findings import BUG, compile_warnings, find_problems
from vy_nexus.experts.builtin.thinking import fenced_code, mentions, require, think
from vy_nexus.tasks import Task

REVIEW_WORDS = (
    "review", "explain", "bug", "bugs", "improve", "why", "fix", "refactor", "critique", "wrong", "issue", "issues",
    "understand", "describe", "comment",
)  # fmt: skip
REVIEW_SYSTEM = (
    "You are a senior Python reviewer. Be concrete and brief: list real problems (bugs, edge cases, style) "
    "and how to fix them. Do not repeat the code."
)
GENERATE_SYSTEM = (
    "You are a Python programmer. Answer with one complete Python code block in ```python fences, "
    "then at most two sentences of explanation."
)

NOT_CODE_CONFIDENCE = 0.3
OTHER_LANGUAGE_CONFIDENCE = 0.5
"""Code named as another language: that much is known, nothing about whether it is right."""
LANGUAGE_MARKERS: dict[str, tuple[str, ...]] = {
    "JavaScript": (
        r"\bfunction\s*\w*\s*\([^)]*\)\s*\{",
        r"\b(?:const|let|var)\s+\w+\s*=",
        r"=>\s*[{(\w]",
        r"\bconsole\.log\(",
        r"\brequire\(['\"]",
        r"^\s*export\s+(?:default|function|const|class)\b",
        r"===|!==",
    ),
    "TypeScript": (
        r"^\s*(?:export\s+)?interface\s+\w+\s*\{",
        r"\b(?:const|let)\s+\w+\s*:\s*\w+(?:\[\])?\s*=",
        r":\s*(?:string|number|boolean)\b[,)=;]",
    ),
    "C": (r"\bint\s+main\s*\(", r"\bprintf\s*\(", r"\bmalloc\s*\(", r"^\s*#include\s*<std\w*\.h>"),
    "C++": (r"\bstd::\w+", r"^\s*#include\s*<(?:iostream|vector|string|map)>", r"\bcout\s*<<", r"\btemplate\s*<"),
    "Java": (
        r"\bpublic\s+(?:static\s+)?(?:final\s+)?(?:class|void|int|String)\b",
        r"\bSystem\.out\.print",
        r"^\s*import\s+java\.",
    ),
    "C#": (r"^\s*using\s+System\b", r"\bConsole\.Write(?:Line)?\(", r"\bnamespace\s+\w+"),
    "Go": (r"^\s*package\s+\w+\s*$", r"\bfunc\s+(?:\(\w+\s+\*?\w+\)\s*)?\w+\s*\(", r"\bfmt\.\w+\(", r":="),
    "Rust": (
        r"\bfn\s+\w+\s*(?:<[^>]*>)?\s*\(",
        r"\blet\s+mut\b",
        r"\bprintln!\(",
        r"^\s*(?:pub\s+)?(?:struct|impl|enum)\s+\w+",
        r"->\s*\w+\s*\{",
    ),
    "SQL": (
        r"(?i)^\s*select\b[\s\S]*\bfrom\b",
        r"(?i)^\s*(?:insert\s+into|update\s+\w+\s+set|delete\s+from|create\s+table)\b",
    ),
    "shell": (
        r"^#!\s*/(?:usr/)?bin/(?:env\s+)?(?:ba|z)?sh\b",
        r"^\s*(?:echo|export|cd|sudo|apt-get|fi|done)\b",
        r"\$\{\w+\}|\$\(\w",
    ),
}
"""Lines that Python never compiles and a language's code often holds: two markers name the language."""
DECISIVE_MARKERS = re.compile(
    r"^\s*#include\s*[<\"]|^#!|(?i:^\s*(?:select\b[\s\S]*\bfrom|insert\s+into|create\s+table)\b)", re.MULTILINE
)
"""One of these is enough: a C-family include, a shebang, an SQL statement."""
MAX_LINE_SHOWN = 200
FENCED_CODE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def extract_code(task: Task) -> str | None:
    """Code from the input payload (a string or ``{"code": ...}``) or from a fenced block in the description."""
    payload = task.input
    if isinstance(payload, dict) and isinstance(payload.get("code"), str):
        return str(payload["code"])
    if isinstance(payload, str) and payload.strip():
        return payload
    match = FENCED_CODE.search(task.description)
    return match.group(1) if match else None


INERT_EXPRESSIONS = (ast.Name, ast.Constant, ast.Tuple, ast.Attribute, ast.BinOp, ast.UnaryOp, ast.Compare)
"""Statements of these alone do nothing: a "program" made only of them is data that happens to parse (CSV rows)."""


def guess_language(source: str) -> str | None:
    """The language ``source`` (which did not compile as Python) is written in, when its markers say so clearly."""
    scores: dict[str, int] = {}
    for language, markers in LANGUAGE_MARKERS.items():
        hits = sum(1 for marker in markers if re.search(marker, source, re.MULTILINE))
        if hits:
            scores[language] = hits
    if not scores:
        return None
    best = max(scores, key=lambda language: (scores[language], language == "TypeScript"))
    return best if scores[best] >= 2 or DECISIVE_MARKERS.search(source) else None


def analyse(source: str) -> dict[str, Any]:
    """``analyse_python``, or, for code that does not compile as Python and reads as another language, which one
    (``valid`` is then ``None``: not checked)."""
    report = analyse_python(source)
    if report["valid"]:
        return report
    language = guess_language(source)
    if language is None:
        return report
    return {"valid": None, "language": language, "lines": len(source.splitlines()), "python_error": report["error"]}


def analyse_python(source: str) -> dict[str, Any]:
    """Compile check plus a structural summary (functions, classes, imports, line count). ``looks_like_code`` is
    ``False`` for text that compiles but only holds bare values (CSV rows, a word)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tree = ast.parse(source)
            compile(tree, "<input>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        lines = source.splitlines()
        text = exc.text or (lines[exc.lineno - 1] if exc.lineno and exc.lineno <= len(lines) else "")
        return {
            "valid": False,
            "error": exc.msg,
            "line": exc.lineno,
            "column": exc.offset,
            "text": text.rstrip("\n")[:MAX_LINE_SHOWN],
        }
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes; nesting deeper than the compiler goes
        reason = "nested too deeply to compile" if isinstance(exc, RecursionError | MemoryError) else str(exc)
        return {"valid": False, "error": reason, "line": None, "column": None, "text": ""}
    functions = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    classes = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    imports: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imports.append(node.module)
    inert = all(isinstance(s, ast.Expr) and isinstance(s.value, INERT_EXPRESSIONS) for s in tree.body)
    return {
        "valid": True,
        "looks_like_code": not inert,
        "lines": len(source.splitlines()),
        "functions": functions,
        "classes": classes,
        "imports": sorted(set(imports)),
        "findings": [] if inert else [f.as_dict() for f in find_problems(tree, compile_warnings(caught))],
    }


class CodeExpert(BaseExpert):
    id = "code"
    name = "Code Expert"
    version = "0.2.0"
    description = "Checks, explains and reviews source code (Python syntax and structure)."
    capabilities = (
        "code",
        "python",
        "function",
        "class",
        "bug",
        "debug",
        "syntax",
        "refactor",
        "program",
        "script",
        "compile",
        "implement",
        "unit test",
        "algorithm",
        "javascript",
        "java",
        "rust",
        "go",
        "sql query",
    )
    task_types = ("code", "coding", "programming")
    examples: ClassVar[tuple[str, ...]] = (
        "write a python function that reverses a string",
        "why does this code raise a syntax error",
        "review my function for bugs",
    )
    priority = 10

    async def execute(self, task: Task) -> ExpertOutput:
        source = extract_code(task)
        if source is None:
            return await self._generate(task)
        report = analyse(source)
        findings = report.pop("findings", [])
        output: dict[str, Any] = {"summary": _summary(report, findings), "analysis": report}
        if findings:
            output["findings"] = findings
        confidence = 0.9 if report["valid"] else 0.95
        if report.get("looks_like_code") is False:
            confidence = NOT_CODE_CONFIDENCE
        language = report.get("language", "Python")
        if report["valid"] is None:
            confidence = OTHER_LANGUAGE_CONFIDENCE
        if not mentions(task.description, REVIEW_WORDS):
            return ExpertOutput(output, confidence=confidence)
        fence = language.lower().replace("#", "sharp").replace("+", "p")
        thought = await think(
            self.context,
            expert_id=self.id,
            system=REVIEW_SYSTEM.replace("Python", language),
            prompt=f"{task.description}\n\n```{fence}\n{source}\n```\n\nStatic analysis: {_facts(report, findings)}",
            temperature=0.2,
        )
        if thought.response is not None:
            output["review"] = thought.text
        output.update(thought.provenance())
        return ExpertOutput(output, confidence=confidence if thought.response else confidence - 0.2)

    async def _generate(self, task: Task) -> ExpertOutput:
        thought = await think(
            self.context, expert_id=self.id, system=GENERATE_SYSTEM, prompt=task.description, temperature=0.2
        )
        if thought.response is None and thought.error == "no reasoning core is configured":
            return ExpertOutput(
                {"summary": "No code found: pass code as the input payload or in a ```python fenced block."},
                confidence=0.3,
            )
        response = require(thought, expert_id=self.id, task_id=task.id, what="write code")
        code = fenced_code(response.text) or response.text.strip()
        report = analyse_python(code)
        answer = response.text.strip()
        attempts = [thought]
        if not report["valid"]:
            repair = await think(
                self.context,
                expert_id=self.id,
                system=GENERATE_SYSTEM,
                prompt=(
                    f"Task: {task.description}\n\nThis code does not compile: {_structure(report)}"
                    f"\n\n```python\n{code}\n```\n\nReturn the corrected code."
                ),
            )
            repaired = fenced_code(repair.text) or repair.text.strip()
            if repair.response is not None and analyse_python(repaired)["valid"]:
                code, report = repaired, analyse_python(repaired)
                answer = repair.text.strip()  # the text around the code shown, not around the broken first try
                attempts.append(repair)
        findings = report.pop("findings", [])
        written = report["valid"] is True and report["looks_like_code"]
        if written:
            lead = "Generated "
        elif report["valid"] is False:
            lead = "Generated code does not compile: "
        else:  # prose, bare values or another language: no Python was written
            lead = "The answer holds no Python code to check: "
        output = {
            "summary": lead + _summary(report, findings),
            "code": code,
            "analysis": report,
            "answer": answer,
            "attempts": len(attempts),
        }
        if findings:
            output["findings"] = findings
        output.update(attempts[-1].provenance())
        return ExpertOutput(output, confidence=0.75 if written else 0.3)


def _summary(report: dict[str, Any], findings: list[dict[str, Any]]) -> str:
    summary = _verdict(report)
    if not findings:
        return summary
    bugs = sum(1 for finding in findings if finding["severity"] == BUG)
    counts = [_counted(n, noun) for n, noun in ((bugs, "likely bug"), (len(findings) - bugs, "warning")) if n]
    return f"{summary[:-1]}; {' and '.join(counts)} (see findings)."


def _verdict(report: dict[str, Any]) -> str:
    if report["valid"] is None:
        return (
            f"{report['language']} code, {report['lines']} lines: vy-nexus compiles Python only, so it was not checked."
        )
    if report["valid"] and not report["looks_like_code"]:
        return (
            f"Not Python code: {report['lines']} lines of bare values that define and do nothing"
            " (data such as CSV rows, or prose?)."
        )
    if report["valid"]:
        functions, classes = len(report["functions"]), len(report["classes"])
        return (
            f"Valid Python: {_counted(report['lines'], 'line')}, {_counted(functions, 'function')},"
            f" {_counted(classes, 'class')}."
        )
    if report["line"] is None:
        return f"Cannot compile: {report['error']}"
    return f"Syntax error at line {report['line']}, column {report['column']}: {report['error']}"


def _counted(number: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("s") else "s")
    return f"{number} {noun if number == 1 else plural}"


def _facts(report: dict[str, Any], findings: list[dict[str, Any]]) -> str:
    facts = _structure(report)
    for finding in findings:
        facts += f"\nLine {finding['line']} ({finding['severity']}): {finding['message']}."
    return facts


def _structure(report: dict[str, Any]) -> str:
    if report["valid"] is None:
        return f"{report['language']} code of {report['lines']} lines; not compiled (only Python is)."
    if not report["valid"] and report["line"] is None:
        return f"cannot compile: {report['error']}."
    if not report["valid"]:
        return f"syntax error at line {report['line']}, column {report['column']}: {report['error']}."
    if not report["looks_like_code"]:
        return "compiles, but holds only bare values: probably data or prose, not code."
    names = ", ".join(report["functions"] + report["classes"]) or "none"
    return f"parses; {report['lines']} lines; defines {names}."
