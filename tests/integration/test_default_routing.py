"""The default routing of a fresh install, end to end with the real MiniLM encoder and the packaged route model:
code and tables pasted as text, `route` showing what `run` executes, `routes eval` on {text, accept} data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.llm import ScriptedBackend
from vy_nexus.config import load_settings
from vy_nexus.interfaces.cli import app
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

runner = CliRunner()
EVAL_SAMPLE = Path(__file__).parents[1] / "fixtures" / "routing" / "accept_sample.jsonl"
HUMANEVAL_STYLE = '''from typing import List


def separate_groups(text: str) -> List[str]:
    """ Input is a string of nested parentheses groups. Separate them into strings and return the list.
    >>> separate_groups('( ) (( )) (( )( ))')
    ['()', '(())', '(()())']
    """
'''


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("default-routing")


@pytest.fixture(scope="module")
def system(home: Path) -> Iterator[VyNexus]:
    """A system with the default settings (no environment overrides) and a scripted reasoning core."""
    vy = VyNexus(load_settings(home, environ={}), observe=False, load_plugins=False, llm=ScriptedBackend("ok"))
    yield vy
    vy.stop()


def invoke(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    # The suite's environment routes by keyword (tests/conftest.py); these commands must see the default.
    unset: dict[str, str | None] = {"VY_NEXUS_ROUTING__STRATEGY": None}
    result = runner.invoke(app, ["--home", str(home), *args], env={**unset, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def test_the_default_is_hybrid_with_the_packaged_model(system: VyNexus) -> None:
    assert system.gating.strategy.name == "hybrid"
    decision = system.route(Task(description="what is quantum superposition?"))
    assert decision.expert_ids == ["research"] and decision.confidence >= 0.7
    semantic = system.gating.strategy.semantic  # type: ignore[attr-defined]
    assert "shipped with vy-nexus" in semantic.model_note


@pytest.mark.parametrize(
    "text",
    [
        HUMANEVAL_STYLE,
        "int main() {\n    int *p = malloc(4);\n    free(p);\n    free(p);\n}\nwhy does this abort?",
        "```js\nconst total = items.reduce((a, b) => a + b);\n```",
    ],
)
def test_code_pasted_as_text_goes_to_the_code_expert(system: VyNexus, text: str) -> None:
    preview = system.preview(Task(description=text))
    assert preview.decision.expert_ids == ["code"], preview.decision.reason


@pytest.mark.parametrize(
    "text",
    [
        "region,units\nnorth,120\nsouth,80\neast,95\nwest,60",
        "| month | visits |\n|---|---|\n| may | 1200 |\n| june | 1350 |\n| july | 990 |\n\nwhat happened in july?",
        'here you go: [{"team": "a", "score": 3}, {"team": "b", "score": 5}, {"team": "a", "score": 4}]',
    ],
)
def test_a_table_pasted_as_text_goes_to_data_analysis(system: VyNexus, text: str) -> None:
    preview = system.preview(Task(description=text))
    assert preview.decision.expert_ids == ["data-analysis"], preview.decision.reason


@pytest.mark.parametrize(
    "text",
    [
        "write a haiku about autumn",
        "hello there",
        "review this function for bugs\ndef f(xs):\n    return xs[len(xs)]",
        "an ambiguous note about things",
    ],
)
def test_route_shows_the_decision_run_executes(system: VyNexus, text: str) -> None:
    preview = system.preview(Task(description=text))
    result = system.run(Task(description=text))
    assert result.decision is not None
    assert result.decision.expert_ids == preview.decision.expert_ids
    assert result.decision.fallback == preview.decision.fallback


MIXED = (
    "write a blog post that explains this python snippet",
    "research and draft an essay about rust's memory model",
    "summarise the numbers in this report for my boss in a friendly email",
    "a short note about things",
)


def test_route_shows_governance_rerouting_with_its_reason(home: Path, system: VyNexus) -> None:
    # A task gating is not sure about (the ruling depends on the confidence, the confidence on the model).
    text, routed = next(
        (t, d)
        for t in MIXED
        if (d := system.route(Task(description=t))).confidence < 0.999 and d.expert_ids != ["general"]
    )
    strict = {"VY_NEXUS_GOVERNANCE__MIN_ROUTING_CONFIDENCE": "0.999"}
    code, out, _ = invoke(home, "route", text, "--json", env=strict)
    assert code == 0
    shown = json.loads(out)
    assert shown["routed"]["expert_ids"] == routed.expert_ids and shown["expert_ids"] == ["general"]
    assert shown["amended"] is True and "below 1.00" in shown["governance"]["reason"]
    code, out, _ = invoke(home, "route", text, env=strict)
    out = " ".join(out.split())
    assert code == 0 and f"gating chose {routed.expert_ids[0]}" in out and "rerouted to general" in out
    deny = {**strict, "VY_NEXUS_GOVERNANCE__LOW_CONFIDENCE_ACTION": "deny"}
    code, out, _ = invoke(home, "route", text, env=deny)
    assert code == 0 and "run would not start: denied by routing_confidence" in " ".join(out.split())
    settings = load_settings(home, environ={"VY_NEXUS_ROUTING__STRATEGY": "hybrid", **strict})
    with VyNexus(settings, observe=False, load_plugins=False, llm=ScriptedBackend("ok")) as vy:
        assert vy.run(Task(description=text)).experts == ["general"]


def test_route_says_why_it_returned_fewer_experts(home: Path) -> None:
    code, out, _ = invoke(home, "route", "write a haiku about autumn", "--experts", "3", "--json")
    assert code == 0
    shown = json.loads(out)
    assert len(shown["routed"]["expert_ids"]) < 3
    assert "asked for 3 experts" in shown["routed"]["reason"] and "cleared the threshold 0.30" in shown["reason"]


def test_routes_eval_scores_decisions_on_accept_data(home: Path) -> None:
    code, out, err = invoke(home, "routes", "eval", "--data", str(EVAL_SAMPLE), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["strategy"] == "hybrid" and report["examples"] == 20
    assert report["top1"] >= 0.8 and report["executed"] <= report["top1"] + 0.1
    assert set(report["per_expert"]) == {"code", "data-analysis", "research", "writing", "general"}
    assert report["latency_ms"]["p50"] > 0
    code, out, _ = invoke(home, "routes", "eval", "--data", str(EVAL_SAMPLE), "--strategy", "keyword")
    assert code == 0 and "routing decisions (keyword, 20 tasks)" in out and "top-1 (gating)" in out


def test_routes_eval_names_bad_accept_data(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "accept": []}\n', encoding="utf-8")
    code, _, err = invoke(home, "routes", "eval", "--data", str(bad))
    assert code == 2 and "'accept' must be an expert id or a non-empty list" in " ".join(err.split())
    bad.write_text('{"text": "hi", "accept": ["wizard"]}\n', encoding="utf-8")
    code, _, err = invoke(home, "routes", "eval", "--data", str(bad))
    assert code == 2 and "unregistered expert(s): wizard" in " ".join(err.split())
    code, _, err = invoke(home, "routes", "eval", "--data", str(EVAL_SAMPLE), "--strategy", "magic")
    assert code == 2 and "unknown strategy 'magic'" in err


INVOICE_EXPERT = """
from vy_nexus.experts.base import BaseExpert, ExpertOutput


class InvoiceExpert(BaseExpert):
    id = "invoice"
    name = "Invoice checker"
    description = "Checks invoices for missing fields and wrong totals."
    capabilities = ("invoice", "invoices")

    async def execute(self, task):
        return ExpertOutput({"summary": "checked"}, confidence=0.9)
"""


@pytest.fixture(scope="module")
def fitted_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Routes fitted next to the built-ins, with a hand-written expert that declares no examples."""
    home = tmp_path_factory.mktemp("fitted-next-to-built-ins")
    (home / "experts").mkdir()
    (home / "experts" / "invoice.py").write_text(INVOICE_EXPERT, encoding="utf-8")
    train = Path(__file__).parents[1] / "fixtures" / "routing" / "train.jsonl"
    code, out, err = invoke(home, "routes", "fit", "--data", str(train), "--target", "research", "--json")
    assert code == 0, err
    # The 5 built-in experts' routes + 8 intents + the invoice expert's, from its description and capabilities.
    assert json.loads(out)["routes"] == 14
    return home


def test_a_hand_written_expert_without_examples_is_routed_by_its_capabilities(fitted_home: Path) -> None:
    for text in ("does this invoice add up", "review the invoices from march"):
        code, out, err = invoke(fitted_home, "route", text, "--json")
        assert code == 0 and json.loads(out)["expert_ids"] == ["invoice"], err


def test_fitting_your_routes_next_to_the_built_ins_reuses_their_shipped_vectors(fitted_home: Path) -> None:
    tmp_path = fitted_home
    code, out, _ = invoke(tmp_path, "cache", "stats", "--json")
    assert json.loads(out)["embedding_cache"]["vectors"] < 300  # only the 212 new texts were embedded
    code, out, _ = invoke(tmp_path, "route", "set a timer for ten minutes", "--json")
    assert code == 0 and json.loads(out)["routed"]["capabilities"][0] == "timer"
    code, out, _ = invoke(tmp_path, "route", "HTTP 500 from my flask endpoint, here's the traceback", "--json")
    assert code == 0 and json.loads(out)["expert_ids"] == ["code"]
