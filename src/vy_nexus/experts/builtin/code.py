"""The code expert: checks Python source for syntax errors and describes its structure."""

from __future__ import annotations

import ast
import re
from typing import Any, ClassVar

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.tasks import Task

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


def analyse_python(source: str) -> dict[str, Any]:
    """Syntax check plus a structural summary (functions, classes, imports, line count)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return {
            "valid": False,
            "error": exc.msg,
            "line": exc.lineno,
            "column": exc.offset,
            "text": (exc.text or "").rstrip("\n"),
        }
    functions = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    classes = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    imports: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imports.append(node.module)
    return {
        "valid": True,
        "lines": len(source.splitlines()),
        "functions": functions,
        "classes": classes,
        "imports": sorted(set(imports)),
    }


class CodeExpert(BaseExpert):
    id = "code"
    name = "Code Expert"
    version = "0.1.0"
    description = "Checks, explains and reviews source code (Python syntax and structure)."
    capabilities = (
        "code", "python", "function", "class", "bug", "debug", "syntax", "refactor", "program", "script",
        "compile", "implement", "unit test", "algorithm", "javascript", "java", "rust", "go", "sql query",
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
            return ExpertOutput(
                {"summary": "No code found: pass code as the input payload or in a ```python fenced block."},
                confidence=0.3,
            )
        report = analyse_python(source)
        if report["valid"]:
            summary = (
                f"Valid Python: {report['lines']} lines, {len(report['functions'])} functions, "
                f"{len(report['classes'])} classes."
            )
            confidence = 0.9
        else:
            summary = f"Syntax error at line {report['line']}, column {report['column']}: {report['error']}"
            confidence = 0.95
        return ExpertOutput({"summary": summary, "analysis": report}, confidence=confidence)
