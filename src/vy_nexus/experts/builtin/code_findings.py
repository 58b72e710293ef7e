"""Problems in Python source that are certain or nearly so, found without running it: the code expert's review
grounded in facts instead of in a small model's guesses.

Three sources, each precise rather than exhaustive (a review that cries wolf is not read):

* **pyflakes** (names): undefined names (a ``NameError`` when the line runs), a name used before its assignment in
  a function, duplicate arguments, unused imports and variables, redefinitions, f-strings with nothing to fill in.
* **the compiler's warnings**: ``is`` with a literal, an assertion that is always true (``assert (x, "msg")``),
  invalid escape sequences.
* **a few patterns that are bugs wherever they appear**: division by ``len(p)`` of a parameter ``p`` that the
  function never tests (an empty argument raises ``ZeroDivisionError``; certain when the module itself calls it
  with an empty literal), a mutable default argument, a bare ``except:``, an ``except Exception`` that only ``pass``-es,
  ``== None``.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BUG = "bug"
"""Raises or misbehaves when the line runs."""
WARNING = "warning"
"""Legal and sometimes meant, usually a mistake or a trap."""

PYFLAKES_BUGS = frozenset({"UndefinedName", "UndefinedLocal", "UndefinedExport", "DuplicateArgument"})
PYFLAKES_IGNORED = frozenset(
    {"ImportStarUsage", "ImportStarUsed", "ImportStarNotPermitted", "DoctestSyntaxError", "IsLiteral"}
)
"""Star imports make every later name "possibly undefined" (the finding about the star says it all); the compiler
already warns about ``is`` with a literal."""
MUTATING_METHODS = frozenset(
    {"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem", "remove", "clear", "discard"}
)
MUTABLE_CALLS = frozenset({"list", "dict", "set", "bytearray"})
EMPTY_LITERALS = (ast.List, ast.Tuple, ast.Set, ast.Dict)
MAX_FINDINGS = 20


@dataclass(frozen=True, slots=True)
class Finding:
    line: int
    severity: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "severity": self.severity, "message": self.message}


def compile_warnings(caught: list[warnings.WarningMessage]) -> list[Finding]:
    """The compiler's ``SyntaxWarning``/``DeprecationWarning`` about the source, as findings."""
    return [
        Finding(item.lineno or 0, WARNING, str(item.message))
        for item in caught
        if issubclass(item.category, SyntaxWarning | DeprecationWarning)
    ]


def find_problems(tree: ast.Module, compiled: Sequence[Finding] = ()) -> list[Finding]:
    """Every finding for the parsed module ``tree`` (plus ``compiled``: the compiler's warnings), in line order,
    at most ``MAX_FINDINGS``."""
    found = [*compiled, *_pyflakes(tree), *_patterns(tree)]
    unique = {(f.line, f.message): f for f in found}
    return sorted(unique.values(), key=lambda f: (f.line, f.severity != BUG))[:MAX_FINDINGS]


def _pyflakes(tree: ast.Module) -> list[Finding]:
    from pyflakes.checker import Checker

    findings: list[Finding] = []
    for message in Checker(tree, filename="<input>").messages:
        kind = type(message).__name__
        if kind in PYFLAKES_IGNORED:
            continue
        text = message.message % message.message_args
        findings.append(Finding(message.lineno, BUG if kind in PYFLAKES_BUGS else WARNING, text))
    return findings


def _patterns(tree: ast.Module) -> list[Finding]:
    findings: list[Finding] = []
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    empty_calls = _calls_with_an_empty_literal(tree)
    for function in functions:
        findings.extend(_mutable_defaults(function))
        findings.extend(_unguarded_length_divisions(function, empty_calls.get(function.name, [])))
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler):
            findings.extend(_swallowing(node))
        elif isinstance(node, ast.Compare):
            findings.extend(_none_by_equality(node))
    return findings


def _mutable_defaults(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Finding]:
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
    pairs += [(arg, default) for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True) if default]
    findings = []
    for arg, default in pairs:
        mutable = isinstance(default, ast.List | ast.Dict | ast.Set) or (
            isinstance(default, ast.Call) and isinstance(default.func, ast.Name) and default.func.id in MUTABLE_CALLS
        )
        if not mutable:
            continue
        shared = f"the default of '{arg.arg}' in {function.name}() is one {ast.unparse(default)} shared by every call"
        if _mutated(function, arg.arg):
            message = f"{shared}, and {function.name}() changes it: each call sees what earlier calls left in it"
            findings.append(Finding(default.lineno, BUG, f"{message} (use None and create it inside)"))
        else:
            findings.append(Finding(default.lineno, WARNING, f"{shared} (use None and create it inside)"))
    return findings


def _mutated(function: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Name) and target.id == name and node.func.attr in MUTATING_METHODS:
                return True
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else []
        if isinstance(node, ast.AugAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == name:
                return True
            if isinstance(node, ast.AugAssign) and isinstance(target, ast.Name) and target.id == name:
                return True
    return False


def _unguarded_length_divisions(
    function: ast.FunctionDef | ast.AsyncFunctionDef, empty_calls: list[ast.Call]
) -> list[Finding]:
    parameters = {a.arg for a in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]}
    tested = _names_tested(function)
    findings = []
    for node in ast.walk(function):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod)):
            continue
        divisor = node.right
        if not (
            isinstance(divisor, ast.Call)
            and isinstance(divisor.func, ast.Name)
            and divisor.func.id == "len"
            and len(divisor.args) == 1
            and isinstance(divisor.args[0], ast.Name)
        ):
            continue
        name = divisor.args[0].id
        if name not in parameters or name in tested:
            continue
        message = f"{ast.unparse(node)} raises ZeroDivisionError when '{name}' is empty, and nothing checks it"
        callers = [call for call in empty_calls if _argument_for(function, call, name)]
        if callers:
            calls = ", ".join(f"{ast.unparse(call)} on line {call.lineno}" for call in callers[:3])
            message += f": {calls} does exactly that"
        findings.append(Finding(node.lineno, BUG, message))
    return findings


def _names_tested(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names that a condition of the function reads (``if values``, ``assert len(values)``, ``x if values else
    y``, ``values or default``, a ``try`` around the division): such a parameter is taken care of."""
    tests: list[ast.AST] = []
    for node in ast.walk(function):
        if isinstance(node, ast.If | ast.IfExp | ast.While | ast.Assert):
            tests.append(node.test)
        elif isinstance(node, ast.BoolOp):
            tests.append(node)
        elif isinstance(node, ast.Try) and any(_catches_zero_division(h) for h in node.handlers):
            tests.extend(node.body)
    return {n.id for test in tests for n in ast.walk(test) if isinstance(n, ast.Name)}


def _catches_zero_division(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = {n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)}
    return bool(names & {"ZeroDivisionError", "ArithmeticError", "Exception", "BaseException"})


def _calls_with_an_empty_literal(tree: ast.Module) -> dict[str, list[ast.Call]]:
    calls: dict[str, list[ast.Call]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            arguments = [*node.args, *(k.value for k in node.keywords)]
            if any(_empty_literal(a) for a in arguments):
                calls.setdefault(node.func.id, []).append(node)
    return calls


def _empty_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Dict):
        return not node.keys
    if isinstance(node, EMPTY_LITERALS):
        return not node.elts  # type: ignore[union-attr]
    return isinstance(node, ast.Constant) and node.value in ("", b"")


def _argument_for(function: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call, name: str) -> bool:
    """Whether ``call`` passes an empty literal as the parameter ``name`` of ``function``."""
    positional = [a.arg for a in [*function.args.posonlyargs, *function.args.args]]
    for index, argument in enumerate(call.args):
        if index < len(positional) and positional[index] == name and _empty_literal(argument):
            return True
    return any(k.arg == name and _empty_literal(k.value) for k in call.keywords)


def _swallowing(handler: ast.ExceptHandler) -> list[Finding]:
    if handler.type is None:
        return [
            Finding(
                handler.lineno,
                WARNING,
                "a bare 'except:' also catches KeyboardInterrupt and SystemExit (catch Exception, or what you expect)",
            )
        ]
    broad = {n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)} & {"Exception", "BaseException"}
    if broad and all(isinstance(statement, ast.Pass) for statement in handler.body):
        # A narrow ``except KeyError: pass`` is an idiom; swallowing every error is how bugs go unseen.
        caught = ast.unparse(handler.type)
        return [Finding(handler.lineno, WARNING, f"'except {caught}: pass' hides every error without a trace")]
    return []


def _none_by_equality(compare: ast.Compare) -> list[Finding]:
    for op, right in zip(compare.ops, compare.comparators, strict=True):
        if isinstance(op, ast.Eq | ast.NotEq) and isinstance(right, ast.Constant) and right.value is None:
            wanted = "is None" if isinstance(op, ast.Eq) else "is not None"
            return [
                Finding(
                    compare.lineno,
                    WARNING,
                    f"{ast.unparse(compare)}: compare with '{wanted}' (== calls the object's __eq__, which may lie)",
                )
            ]
    return []
