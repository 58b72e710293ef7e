"""The code expert: exact ast checks without the LLM; LLM reviews grounded in them; generate → parse → repair."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fakes.llm import ScriptedBackend, context_with, run_expert
from vy_nexus.errors import ExpertExecutionError
from vy_nexus.experts.builtin.code import CodeExpert, analyse, analyse_python, extract_code
from vy_nexus.reasoning.llm import Message
from vy_nexus.tasks import Task


def test_check_mode_is_exact_and_never_asks_the_llm() -> None:
    backend = ScriptedBackend("should not be used")
    task = Task(description="check my python code", input="import os\nclass A:\n    def f(self):\n        pass\n")
    output = run_expert(CodeExpert(), task, context_with(backend)).output
    assert output["analysis"] == {
        "valid": True, "looks_like_code": True, "lines": 4, "functions": ["f"], "classes": ["A"], "imports": ["os"]
    }  # fmt: skip
    assert output["summary"] == "Valid Python: 4 lines, 1 function, 1 class; 1 warning (see findings)."
    assert output["findings"] == [{"line": 1, "severity": "warning", "message": "'os' imported but unused"}]
    assert backend.calls == [] and "review" not in output


def test_syntax_errors_are_located_exactly() -> None:
    report = analyse_python("def broken(:\n    pass\n")
    assert report["valid"] is False and report["line"] == 1 and report["column"] == 12
    assert report["text"] == "def broken(:"


def test_review_sends_code_and_analysis_and_returns_the_llms_review() -> None:
    backend = ScriptedBackend("Division by zero when xs is empty; guard with `if not xs`.")
    task = Task(description="Check this code for bugs: ```python\ndef mean(xs):\n    return sum(xs) / len(xs)\n```")
    result = run_expert(CodeExpert(), task, context_with(backend))
    assert result.output["review"] == "Division by zero when xs is empty; guard with `if not xs`."
    assert result.output["analysis"]["functions"] == ["mean"]
    assert result.output["reasoning"]["provider"] == "scripted"
    prompt = backend.last_prompt
    assert "return sum(xs) / len(xs)" in prompt and "parses; 2 lines; defines mean." in prompt
    assert result.confidence == pytest.approx(0.9)


def test_review_degrades_to_the_analysis_when_the_llm_fails() -> None:
    backend = ScriptedBackend("x " * 100, delay=0.01)
    context = context_with(backend, timeout_seconds=0.05)
    result = run_expert(CodeExpert(), Task(description="review this", input="x = (1,\n"), context)
    assert result.output["analysis"]["valid"] is False
    assert "did not finish" in result.output["reasoning_error"] and "review" not in result.output
    assert result.confidence == pytest.approx(0.75)


def test_generate_extracts_and_checks_the_code() -> None:
    answer = "Here you go:\n```python\ndef reverse(text):\n    return text[::-1]\n```\nSlicing reverses it."
    result = run_expert(CodeExpert(), Task(description="write a function that reverses a string"),
                        context_with(ScriptedBackend(answer)))  # fmt: skip
    output = result.output
    assert output["code"] == "def reverse(text):\n    return text[::-1]"
    assert output["analysis"]["valid"] is True and output["analysis"]["functions"] == ["reverse"]
    assert output["summary"].startswith("Generated Valid Python") and output["attempts"] == 1


def test_generated_code_with_a_syntax_error_gets_one_repair_round() -> None:
    replies = iter(["```python\ndef f(:\n  pass\n```", "```python\ndef f():\n    pass\n```"])
    prompts: list[str] = []

    def reply(messages: Sequence[Message]) -> str:
        prompts.append(messages[-1].content)
        return next(replies)

    output = run_expert(CodeExpert(), Task(description="write f"), context_with(ScriptedBackend(reply))).output
    assert output["code"] == "def f():\n    pass" and output["analysis"]["valid"] and output["attempts"] == 2
    assert "syntax error at line 1" in prompts[1]


def test_unrepairable_code_is_reported_not_hidden() -> None:
    result = run_expert(CodeExpert(), Task(description="write f"), context_with(ScriptedBackend("def f(:")))
    assert result.output["analysis"]["valid"] is False
    assert result.output["summary"].startswith("Generated code does not compile: Syntax error at line 1")
    assert result.confidence == pytest.approx(0.3)


def test_generate_needs_a_reasoning_core() -> None:
    output = run_expert(CodeExpert(), Task(description="write a sorting function"), context_with(None)).output
    assert output["summary"].startswith("No code found")
    backend = ScriptedBackend("x", delay=0.2)
    context = context_with(backend, timeout_seconds=0.05)
    with pytest.raises(ExpertExecutionError, match="code needs the reasoning core to write code"):
        run_expert(CodeExpert(), Task(description="write a sorting function"), context)


def test_extract_code_sources() -> None:
    assert extract_code(Task(description="x", input={"code": "a = 1"})) == "a = 1"
    assert extract_code(Task(description="see ```py\nb = 2\n```")) == "b = 2\n"
    assert extract_code(Task(description="no code here")) is None


@pytest.mark.parametrize(
    ("source", "error", "text"),
    [
        ("def f(a, a):\n    pass\n", "duplicate argument 'a' in function definition", "def f(a, a):"),
        ("x = 1\nreturn x\n", "'return' outside function", "return x"),
        ("break\n", "'break' outside loop", "break"),
    ],
)
def test_code_that_parses_but_does_not_compile_is_not_valid(source: str, error: str, text: str) -> None:
    output = run_expert(CodeExpert(), Task(description="check this", input=source), context_with(None)).output
    assert output["analysis"]["valid"] is False and output["analysis"]["error"] == error
    assert output["analysis"]["text"] == text and output["summary"].startswith("Syntax error at line")
    assert analyse_python("a = 1\0")["error"] == "source code string cannot contain null bytes"


def test_data_given_to_the_code_expert_is_said_not_to_be_code() -> None:
    csv = "region,product,units\nnorth,widget,12\nsouth,gadget,9\n"
    result = run_expert(CodeExpert(), Task(description="check this", input=csv), context_with(None))
    assert result.output["summary"].startswith("Not Python code: 3 lines of bare values")
    assert result.output["analysis"]["looks_like_code"] is False and result.confidence == pytest.approx(0.3)
    assert analyse_python("print(1)\n")["looks_like_code"] is True


def test_generated_code_that_does_not_compile_gets_the_repair_round() -> None:
    replies = iter(["```python\ndef f(a, a):\n    return a\n```", "```python\ndef f(a, b):\n    return a\n```"])
    prompts: list[str] = []

    def reply(messages: Sequence[Message]) -> str:
        prompts.append(messages[-1].content)
        return next(replies)

    output = run_expert(CodeExpert(), Task(description="write f"), context_with(ScriptedBackend(reply))).output
    assert output["code"] == "def f(a, b):\n    return a" and output["attempts"] == 2
    assert "duplicate argument 'a'" in prompts[1]


@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("JavaScript", "function add(a, b) {\n  return a + b\n}\nconsole.log(add(1, 2))\n"),
        ("TypeScript", "interface User {\n  name: string;\n}\nconst u: User = {name: 'x'};\n"),
        ("C", '#include <stdio.h>\nint main(void) { printf("hi"); return 0; }\n'),
        ("Java", "public class A {\n  public static void main(String[] a) { System.out.println(1); }\n}\n"),
        ("Go", 'package main\n\nimport "fmt"\n\nfunc main() {\n\tx := 1\n\tfmt.Println(x)\n}\n'),
        ("Rust", 'fn main() {\n    let mut x = 1;\n    println!("{}", x);\n}\n'),
        ("SQL", "SELECT name, count(*) FROM users GROUP BY name;\n"),
    ],
)
def test_code_in_another_language_is_named_not_called_a_python_syntax_error(language: str, source: str) -> None:
    # Before: "Syntax error at line 1, column 10: invalid syntax" at confidence 0.95 for a valid JavaScript file.
    output = run_expert(CodeExpert(), Task(description="check this code", input=source), context_with(None))
    assert output.output["analysis"]["language"] == language and output.output["analysis"]["valid"] is None
    assert output.output["summary"].startswith(f"{language} code, ") and "not checked" in output.output["summary"]
    assert output.confidence == 0.5


def test_a_review_of_another_language_asks_for_that_language() -> None:
    backend = ScriptedBackend("`a + b` concatenates strings; convert with Number().")
    source = "function add(a, b) {\n  return a + b\n}\nconsole.log(add('1', 2))\n"
    output = run_expert(CodeExpert(), Task(description="review this code", input=source), context_with(backend))
    assert output.output["review"].startswith("`a + b`")
    system, prompt = backend.calls[0][0][0].content, backend.last_prompt
    assert "senior JavaScript reviewer" in system and "```javascript\n" in prompt and "not compiled" in prompt


def test_broken_python_with_one_foreign_habit_is_still_a_python_syntax_error() -> None:
    report = analyse("x = {'a': 1}\nif x['a'] === 1:\n    print(x)\n")
    assert report["valid"] is False and report["line"] == 2


def test_an_answer_without_python_is_not_called_generated_code() -> None:
    # Before: "Generated Not Python code: 1 lines of bare values ..." at confidence 0.75.
    prose = run_expert(CodeExpert(), Task(description="write a sorter"), context_with(ScriptedBackend("sorted")))
    assert prose.output["summary"].startswith("The answer holds no Python code to check: Not Python code")
    assert prose.confidence == 0.3
    assert analyse_python("x = 1\n")["lines"] == 1
    one = run_expert(CodeExpert(), Task(description="check", input="def f():\n    pass\n"), context_with(None))
    assert one.output["summary"] == "Valid Python: 2 lines, 1 function, 0 classes."
