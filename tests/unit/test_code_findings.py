"""The code expert's exact findings: bugs a review must name whatever the model says, and no false alarms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fakes.llm import ScriptedBackend, context_with, run_expert
from vy_nexus.experts.builtin.code import CodeExpert, analyse_python


def findings(source: str) -> list[dict[str, Any]]:
    report = analyse_python(source)
    assert report["valid"] is True, report
    found: list[dict[str, Any]] = report["findings"]
    return found


def test_the_readme_example_division_by_an_empty_list_is_a_bug_with_its_caller() -> None:
    found = findings((Path(__file__).parents[2] / "examples" / "mean.py").read_text(encoding="utf-8"))
    assert found == [
        {
            "line": 3,
            "severity": "bug",
            "message": "sum(values) / len(values) raises ZeroDivisionError when 'values' is empty, and nothing "
            "checks it: mean([]) on line 6 does exactly that",
        }
    ]


@pytest.mark.parametrize(
    "guarded",
    [
        "def mean(xs):\n    if not xs:\n        return 0.0\n    return sum(xs) / len(xs)\n",
        "def mean(xs):\n    return sum(xs) / len(xs) if xs else None\n",
        "def mean(xs):\n    assert xs, 'empty'\n    return sum(xs) / len(xs)\n",
        "def mean(xs):\n    try:\n        return sum(xs) / len(xs)\n"
        "    except ZeroDivisionError:\n        return 0.0\n",
        "def mean(xs):\n    return sum(xs) / (len(xs) or 1)\n",
        "def mean(xs):\n    n = len(xs) or 1\n    return sum(xs) / n\n",
        "def ratio(total, parts):\n    return total / len(PARTS)\nPARTS = [1]\n",
    ],
)
def test_a_guarded_division_or_one_not_by_a_parameter_is_no_finding(guarded: str) -> None:
    assert findings(guarded) == []


def test_a_division_by_an_unchecked_parameter_length_is_a_bug_even_without_a_caller() -> None:
    found = findings("def mean(xs):\n    return sum(xs) // len(xs)\n")
    assert found[0]["severity"] == "bug" and found[0]["line"] == 2
    assert "line" not in found[0]["message"].split("nothing checks it")[1]


def test_undefined_names_are_bugs_and_unused_imports_warnings() -> None:
    found = findings("import os\n\ndef greet():\n    return f'hi {nme}'\n")
    assert {"line": 4, "severity": "bug", "message": "undefined name 'nme'"} in found
    assert {"line": 1, "severity": "warning", "message": "'os' imported but unused"} in found


def test_a_mutable_default_is_a_bug_only_when_the_function_changes_it() -> None:
    changed = findings("def add(item, into=[]):\n    into.append(item)\n    return into\n")
    assert changed[0]["severity"] == "bug" and "changes it" in changed[0]["message"]
    read_only = findings("def first(items=[]):\n    return items[:1]\n")
    assert read_only[0]["severity"] == "warning" and "shared by every call" in read_only[0]["message"]
    assert findings("def f(x=None):\n    x = [] if x is None else x\n    return x\n") == []


def test_the_compilers_warnings_are_findings_once() -> None:
    found = findings("def f(x):\n    assert (x, 'message')\n    return x is 1\n")
    messages = [f["message"] for f in found]
    assert "assertion is always true, perhaps remove parentheses?" in messages
    assert sum("with a literal" in m for m in messages) == 1  # the compiler's, not pyflakes' too


def test_swallowed_errors_and_none_by_equality_are_warnings() -> None:
    found = findings(
        "def f(x):\n    try:\n        return int(x)\n    except:\n        pass\n"
        "    try:\n        return float(x)\n    except Exception:\n        pass\n"
        "    try:\n        return complex(x)\n    except ValueError:\n        pass\n    return x == None\n"
    )
    assert [(f["line"], f["severity"]) for f in found] == [(4, "warning"), (8, "warning"), (14, "warning")]
    assert "KeyboardInterrupt" in found[0]["message"] and "Exception: pass" in found[1]["message"]
    assert "is None" in found[2]["message"]  # a narrow `except ValueError: pass` is an idiom, not a finding


def test_clean_code_and_data_have_no_findings() -> None:
    assert findings("import math\n\ndef area(r: float) -> float:\n    return math.pi * r * r\n") == []
    assert findings("1, 2, 3\n4, 5, 6\n") == []  # bare values: not code, nothing to review


def test_a_star_import_is_one_finding_not_one_per_name() -> None:
    found = findings("from os.path import *\nprint(join('a', 'b'), exists('c'))\n")
    assert len(found) <= 1


def test_the_review_gives_the_model_the_findings_and_the_user_the_exact_list() -> None:
    backend = ScriptedBackend("Guard the empty list.")
    source = "def mean(xs):\n    return sum(xs) / len(xs)\n\nprint(mean([]))\n"
    result = run_expert(CodeExpert(), _task("review this code for bugs", source), context_with(backend))
    assert "Line 2 (bug): sum(xs) / len(xs) raises ZeroDivisionError" in backend.last_prompt
    assert result.output["summary"] == "Valid Python: 4 lines, 1 function, 0 classes; 1 likely bug (see findings)."
    assert result.output["findings"][0]["line"] == 2 and "findings" not in result.output["analysis"]


def test_generated_code_shows_its_findings() -> None:
    backend = ScriptedBackend("```python\ndef total(xs):\n    return sum(x for x in xs) + missing\n```")
    output = run_expert(CodeExpert(), _task("write a python function that totals a list"), context_with(backend)).output
    assert output["findings"] == [{"line": 2, "severity": "bug", "message": "undefined name 'missing'"}]
    assert output["summary"].endswith("; 1 likely bug (see findings).")


def _task(description: str, source: str | None = None) -> Any:
    from vy_nexus.tasks import Task

    return Task(description=description, input=source)
