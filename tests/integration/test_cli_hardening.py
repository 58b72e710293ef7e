"""Regressions from trying vy-nexus as a new user and as an adversary (issue 16): hostile or broken input at the
command line gives a clear message and the right exit code, never a traceback; user text is printed literally."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vy_nexus.interfaces.cli import app

runner = CliRunner()


def invoke(home: Path, *args: str, input: str | bytes | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_a_stale_malformed_stop_file_does_not_break_run(home: Path) -> None:
    (home / "STOP").write_bytes(b"\xff\xfe")
    code, _, err = invoke(home, "run", "sum this data", "--input", "-", "--json", input='[{"v": 2}]')
    assert code == 0, err
    assert not (home / "STOP").exists()


def test_input_names_with_markup_are_reported_literally(home: Path) -> None:
    for name in ("[/]", "notes[draft].txt"):
        code, _, err = invoke(home, "run", "x", "--input", name)
        assert code == 2 and f"input file not found: {name}" in err, err


def test_table_cells_with_markup_are_printed_literally(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "marked.csv"
    data.write_text("region,units\n[red]north[/red],3\n[/],4\n")
    code, out, err = invoke(home, "run", "total units by region", "--input", str(data))
    assert code == 0, err
    assert "[red]north[/red]" in out and "[/]" in out


def test_markup_in_keys_names_and_times_is_reported_literally(home: Path) -> None:
    cases = [
        (("configure", "[/]"), 2, "unknown config key '[/]'"),
        (("configure", "a[/]", "x", "--yes"), 2, "unknown config key 'a[/]'"),
        (("logs", "--since", "[/]"), 2, "cannot read the time '[/]'"),
        (("approvals", "approve", "[/]"), 3, "no approval request with id '[/]'"),
        (("create-expert", "--name", "[/]", "--capabilities", "x"), 2, "the expert name '[/]'"),
    ]
    for args, exit_code, message in cases:
        code, _, err = invoke(home, *args)
        assert code == exit_code and message in err, (args, err)


def test_route_labels_with_markup_are_listed_literally(home: Path) -> None:
    (home / "routes.yaml").write_text('routes:\n  - name: "[/]"\n    target: "[red]x"\n    utterances: ["a b c"]\n')
    (home / "config.yaml").write_text("routing:\n  semantic:\n    routes_file: routes.yaml\n")
    code, out, err = invoke(home, "routes", "list")
    assert code == 0, err
    assert "[/]" in out and "[red]x (not registered)" in out


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there once the probe is closed


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_an_unreachable_reasoning_server_exits_with_the_backend_code(home: Path, backend: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}" + ("/v1" if backend == "openai" else "")
    (home / "config.yaml").write_text(f"reasoning_core:\n  provider: {backend}\n  base_url: {url}\n")
    code, out, err = invoke(home, "run", "tell me a joke", "--expert", "general")
    assert code == 5, (out, err)
    assert "general needs the reasoning core" in out


@pytest.mark.slow  # the embedded backend (default runs swap it for a scripted one)
@pytest.mark.parametrize("problem", ["model-missing", "model-not-gguf", "prompt-too-long"])
def test_an_embedded_model_problem_exits_with_the_backend_code(home: Path, problem: str) -> None:
    core = {
        "model-missing": f"model_path: {home / 'missing.gguf'}",
        "model-not-gguf": f"model_path: {home / 'config.yaml'}",
        "prompt-too-long": "context_window: 128",
    }[problem]
    (home / "config.yaml").write_text(f"reasoning_core:\n  {core}\n")
    (home / "long.txt").write_text("word " * 1000)
    code, out, err = invoke(home, "run", "tell me about this", "--expert", "general", "--input", str(home / "long.txt"))
    assert code == 5, (out, err)


def test_a_file_that_is_not_a_database_exits_with_the_bad_input_code(home: Path, tmp_path: Path) -> None:
    fake = tmp_path / "sales.db"
    fake.write_bytes(b"not a database at all " * 200)
    code, out, _ = invoke(home, "run", "total units by region", "--input", str(fake))
    assert code == 2 and "file is not a database" in " ".join(out.split())


def test_files_in_the_home_that_are_not_utf8_are_named(home: Path) -> None:
    (home / "config.yaml").write_bytes(b"logging:\n  level: \xff\n")
    for args in (("status",), ("configure", "logging.level", "info", "--yes")):
        code, _, err = invoke(home, *args)
        assert code == 2 and f"{home / 'config.yaml'} is not UTF-8 text" in err, err
    (home / "config.yaml").unlink()
    (home / "governance").mkdir()
    (home / "governance" / "approvals.json").write_bytes(b"\xff")
    code, _, err = invoke(home, "approvals")
    assert code == 6 and "approvals.json is corrupt" in err
    (home / "api").mkdir()
    (home / "api" / "keys.json").write_bytes(b'{"keys": [\xff]}')  # was a UnicodeDecodeError traceback
    code, _, err = invoke(home, "keys", "list")
    assert code == 6 and "keys.json is corrupt (UnicodeDecodeError)" in err and "Traceback" not in err


def test_a_state_file_that_is_not_utf8_is_moved_aside(home: Path) -> None:
    (home / "sovereign_state.json").write_bytes(b"\xff\xfe")
    code, _, err = invoke(home, "pulse")
    assert code == 6 and "not UTF-8 text" in err and "moved to" in err
    assert len(list(home.glob("sovereign_state.json.corrupt-*"))) == 1
    code, out, err = invoke(home, "pulse")
    assert code == 0 and "job 1.1" in out, err


def test_a_home_that_is_a_file_or_empty_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    for home, message in ((str(tmp_path / "afile"), "is not a directory"), ("", "the home directory is empty")):
        result = runner.invoke(app, ["--home", home, "run", "x", "--input", "-"], input="[]")
        assert result.exit_code == 2 and message in result.stderr, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]  # nothing written into the current directory


def test_a_time_too_far_back_is_refused(home: Path) -> None:
    code, _, err = invoke(home, "logs", "--since", "99999999d")
    assert code == 2 and "too far back" in err


def test_routes_fit_refuses_bad_options_and_bad_lines_before_writing(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "hi there", "intent": "greet"}\n{"text": "bye now", "intent": "leave"}\n')
    code, _, err = invoke(home, "routes", "fit", "--data", str(data), "--c", "-1")
    assert code == 2 and "must be a positive number" in err
    assert not list(home.rglob("routes*"))  # refused before the routes file was written
    data.write_bytes(b'{"text": "hi", "intent": "greet"}\n\xff\n')
    code, _, err = invoke(home, "routes", "fit", "--data", str(data))
    assert code == 2 and "train.jsonl:2: not UTF-8 text" in err
    data.write_text('{"text": "hi", "intent": 3}\n')
    code, _, err = invoke(home, "routes", "fit", "--data", str(data))
    assert code == 2 and "field 'intent' must be a string, not int" in err


def test_deeply_nested_json_input_is_refused(home: Path, tmp_path: Path) -> None:
    for depth in (300, 100_000):
        deep = tmp_path / f"deep{depth}.json"
        deep.write_text("[" * depth + "]" * depth)
        code, _, err = invoke(home, "run", "sum", "--input", str(deep))
        assert code == 2 and "nested deeper than 100 levels" in err, err
    code, _, err = invoke(home, "run", "sum", "--input", "-", "--json", input="null")
    assert "nested" not in err


def test_an_empty_input_is_refused_not_invented(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "notes.txt"
    empty.write_text("  \n")
    code, _, err = invoke(home, "run", "summarise this", "--input", str(empty))
    assert code == 2 and f"{empty} is empty" in err
    code, _, err = invoke(home, "run", "summarise this", "--input", "-", input="")
    assert code == 2 and "stdin is empty" in err


def test_an_input_that_is_not_a_regular_file_is_named_as_such(home: Path, tmp_path: Path) -> None:
    code, _, err = invoke(home, "run", "x", "--input", str(tmp_path))
    assert code == 2 and "is a directory" in err
    code, _, err = invoke(home, "run", "x", "--input", os.devnull)
    assert code == 2 and "is not a regular file" in err


def test_a_csv_with_a_quoted_delimiter_is_still_a_table(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "sales.csv"
    data.write_text('region,units\nnorth,"1,200"\nsouth,300\nwest,5\n')
    code, out, _ = invoke(home, "run", "total units by region", "--input", str(data), "--json")
    result = json.loads(out)
    assert code == 0 and result["experts"] == ["data-analysis"]
    assert result["output"]["result"][0] == {"region": "north", "sum_units": 1200}


def test_reading_stdin_from_a_terminal_says_what_it_waits_for(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    leader, follower = pty.openpty()
    os.write(leader, b'[{"v": 2}, {"v": 5}]\n\x04')  # Ctrl-D on a new line: end of input
    with os.fdopen(follower, "rb", buffering=0) as raw, io.TextIOWrapper(raw) as terminal:
        monkeypatch.setattr(sys, "stdin", terminal)
        with pytest.raises(SystemExit) as ended:
            app(["--home", str(home), "run", "sum", "--input", "-", "--json"])
    os.close(leader)
    captured = capsys.readouterr()
    assert ended.value.code == 0, captured.err
    assert "press Ctrl-D" in captured.err and json.loads(captured.out)["output"]["columns"]["v"]["sum"] == 7


def test_column_statistics_fit_80_columns_without_splitting_numbers(home: Path) -> None:
    data = Path(__file__).parents[2] / "examples" / "sales.csv"
    result = runner.invoke(app, ["--home", str(home), "run", "total units by region", "--input", str(data)],
                           env={"COLUMNS": "80"})  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any("stdev=4.60435" in line for line in lines)  # one number, one line
    assert any(line.lstrip().startswith("units") and "sum=46" in line for line in lines)
    assert any(line.startswith("strategy: ") for line in lines)  # under the table, not squeezed into its width


def test_the_experts_fit_80_columns_with_every_id_whole(home: Path) -> None:
    result = runner.invoke(app, ["--home", str(home), "experts"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    firsts = {line.split()[0] for line in lines if line and not line.startswith(" ")}
    assert {"data-analysis", "research", "writing", "code", "general"} <= firsts
    assert any("Data Analysis Expert · v0.2.0 · priority 10 · builtin" in line for line in lines)


def test_the_routing_decision_prints_before_the_streamed_answer(home: Path) -> None:
    code, out, err = invoke(home, "run", "tell me a joke", "--expert", "general")
    assert code == 0, err
    assert out.index("Routing decision") < out.index("A scripted answer") < out.index("general · single")
    assert out.count("Routing decision") == 1


def test_a_decision_governance_amends_prints_once_as_it_runs_before_the_answer(home: Path) -> None:
    # Before: the router's choice (writing) first, then the general expert's answer, then a second table.
    (home / "config.yaml").write_text("governance:\n  min_routing_confidence: 0.99\n")
    code, out, err = invoke(home, "run", "write a short poem about rain")
    assert code == 0, err
    assert out.count("Routing decision") == 1
    decision = out[out.index("Routing decision") : out.index("A scripted answer")]
    assert "general" in decision and "(fallback)" in decision and "so the general expert takes it" in decision
    assert "writing" in decision  # the router's choice, named in the reason


def test_an_answer_cut_at_the_token_limit_is_marked(home: Path) -> None:
    (home / "config.yaml").write_text("reasoning_core:\n  max_tokens: 2\n")
    code, out, _ = invoke(home, "run", "tell me a joke", "--expert", "general")
    assert code == 0 and "general: the answer was cut at the token limit (2 tokens" in " ".join(out.split())


def test_an_ensemble_shows_each_experts_output_under_its_name(home: Path, tmp_path: Path) -> None:
    code = tmp_path / "mean.py"
    code.write_text("def mean(xs):\n    return sum(xs) / len(xs)\n")
    args = ["run", "check this", "--input", str(code), "-e", "code", "-e", "general", "--aggregation", "ensemble"]
    status, out, err = invoke(home, *args)
    assert status == 0, err
    assert "Valid Python: 2 lines" in out and '{"summary"' not in out and '"analysis"' not in out
    assert out.index("code ──") < out.index("Valid Python") < out.index("general ──")
    assert "functions=mean" in out


STREAM_THEN_STOP = """
import asyncio

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.builtin.thinking import think


class StreamThenStop(BaseExpert):
    id = "stream-then-stop"
    name = "Streams, then asks everything to stop"
    capabilities = ("interrupt",)

    async def execute(self, task):
        await think(self.context, expert_id=self.id, system="s", prompt="p")
        (self.context.settings.home / "STOP").write_text("enough")
        await asyncio.sleep(30)
        return ExpertOutput("never")
"""


def test_an_interrupted_run_prints_its_error_on_a_new_line(home: Path) -> None:
    (home / "experts").mkdir()
    (home / "experts" / "stream_then_stop.py").write_text(STREAM_THEN_STOP)
    (home / "config.yaml").write_text("safety:\n  stop_poll_seconds: 0.02\n  grace_period_seconds: 0\n")
    result = runner.invoke(app, ["--home", str(home), "run", "x", "--expert", "stream-then-stop"])
    assert result.exit_code == 4, result.output
    assert "A scripted answer from the test reasoning core.\nerror: task cancelled" in result.output


def test_one_result_is_not_called_an_ensemble(home: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"  # general fails: only code's result is left
    (home / "config.yaml").write_text(f"reasoning_core:\n  provider: ollama\n  base_url: {url}\n")
    args = ["run", "check this", "--input", "-", "-e", "code", "-e", "general", "--aggregation", "ensemble", "--json"]
    code, out, _ = invoke(home, *args, input="x = 1\n")
    result = json.loads(out)
    assert code == 0 and result["experts"] == ["code"] and result["method"] == "single"


def test_the_create_expert_hint_is_a_command_that_reaches_the_new_expert(home: Path) -> None:
    code, out, _ = invoke(home, "create-expert", "--name", "CsvTool", "--capabilities", "csv,table")
    assert code == 0 and "--expert csv-tool" in out and "sends this example to 'data-analysis'" in " ".join(out.split())
    code, out, _ = invoke(home, "create-expert", "--name", "Zebra", "--capabilities", "zebra")
    assert code == 0 and "vy-nexus route 'Work on this zebra'" in out


def test_a_failing_heartbeat_verification_exits_non_zero(home: Path) -> None:
    state = {"meta": {"current_phase": 1}, "phases": [{"id": 1, "name": "p", "jobs": [{"id": "1.1", "task": "t",
             "verification": ["false"]}]}]}  # fmt: skip
    (home / "sovereign_state.json").write_text(json.dumps(state))
    code, out, _ = invoke(home, "pulse")
    assert code == 1 and "job 1.1: failed" in out


def test_logs_limit_shows_the_newest_entries(home: Path) -> None:
    (home / "research_logs").mkdir()
    lines = [
        json.dumps(
            {"timestamp": f"2026-01-01T00:00:0{i}.000000Z", "level": "info", "component": "c", "message": f"m{i}"}
        )
        for i in range(5)
    ]
    (home / "research_logs" / "structured.jsonl").write_text("\n".join(lines) + "\n")
    code, out, _ = invoke(home, "logs", "-n", "2")
    assert code == 0 and [line.split()[-1] for line in out.splitlines()] == ["m3", "m4"]


def test_metrics_export_json_writes_lists_as_lists(home: Path) -> None:
    invoke(home, "run", "sum this data", "--input", "-", input='[{"v": 2}]')
    code, out, _ = invoke(home, "metrics", "export", "--table", "routing", "--format", "json")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and row["experts"] == ["data-analysis"] and isinstance(row["confidences"], dict)


def test_configure_prints_a_whole_number_as_typed(home: Path) -> None:
    code, out, _ = invoke(home, "configure", "routing.cache.ttl_seconds", "600", "--yes")
    assert code == 0 and "routing.cache.ttl_seconds = 600 " in out
    code, out, _ = invoke(home, "configure", "routing.cache.ttl_seconds")
    assert code == 0 and out.strip() == "600"


def test_help_shows_no_type_placeholders_for_flags() -> None:
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0 and "--json" in result.stdout and "<bool>" not in result.stdout


def test_a_command_group_without_a_subcommand_prints_its_help(home: Path) -> None:
    for group in ("routes", "cache", "metrics", "tasks"):
        result = runner.invoke(app, ["--home", str(home), group])
        assert "Missing command" not in result.output and "Commands" in result.output, (group, result.output)


@pytest.mark.slow  # runs the generated tests in a pytest subprocess
def test_generated_tests_pass_when_another_expert_shares_the_sample_capability(home: Path) -> None:
    code, _, err = invoke(home, "create-expert", "--name", "CsvTool", "--capabilities", "csv,table")
    assert code == 0, err
    test_file = home / "experts" / "tests" / "test_csv_tool.py"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "VY_NEXUS_HOME": str(home)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_metrics_export_to_a_full_or_closed_stdout_is_a_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(home, "run", "sum this data", "--input", "-", input='[{"v": 2}]')
    with Path("/dev/full").open("w") as full:
        monkeypatch.setattr(sys, "stdout", full)
        with pytest.raises(SystemExit) as ended:
            app(["--home", str(home), "metrics", "export"])
        monkeypatch.setattr(sys, "stdout", None)
        with pytest.raises(SystemExit) as closed:
            app(["--home", str(home), "metrics", "export"])
        monkeypatch.undo()
        with contextlib.suppress(OSError):  # what the failed write left in the buffer
            full.close()
    err = capsys.readouterr().err
    assert ended.value.code == 2 and "cannot write the export to stdout: No space left on device" in err
    assert closed.value.code == 2 and "stdout is closed" in err


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another socket holds for the test."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


def test_serve_on_a_taken_port_is_a_clear_error_before_anything_loads(home: Path, taken_port: int) -> None:
    port = taken_port
    code, _, err = invoke(home, "serve", "--port", str(port))
    assert code == 2, err
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in err
    assert "Traceback" not in err and not (home / "tasks").exists()


@pytest.mark.parametrize(
    ("host", "reason"), [("nosuch.invalid", "unknown host"), ("192.0.2.1", "cannot assign requested address")]
)
def test_serve_on_an_address_it_cannot_have_names_it(home: Path, host: str, reason: str) -> None:
    code, _, err = invoke(home, "serve", "--host", host, "--port", "8000")
    assert code == 2 and f"cannot listen on {host}:8000: {reason}" in err, err


@pytest.mark.parametrize(("host", "shown"), [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]")])
def test_serve_says_where_it_listens(host: str, shown: str, caplog: pytest.LogCaptureFixture) -> None:
    from vy_nexus.interfaces.api.server import announce, listen

    with listen(host, 0) as listener, caplog.at_level("INFO", logger="uvicorn.error"):
        announce(listener)
        port = listener.getsockname()[1]
    assert f"Uvicorn running on http://{shown}:{port} (Press CTRL+C to quit)" in caplog.text


@pytest.mark.slow  # starts a server process
def test_start_on_a_taken_port_says_why_the_server_exited(home: Path, taken_port: int) -> None:
    port = taken_port
    code, _, err = invoke(home, "start", "--port", str(port))
    assert code == 6, err
    assert f"the server exited at once: cannot listen on 127.0.0.1:{port}: address already in use" in err
    assert not (home / "api" / "server.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--context", "[1]"), "error: the task context must be a JSON object, not a list"),
        (("--context", "{bad"), "error: the task context is not valid JSON: Expecting property name"),
        (("--priority", "urgent"), "priority: must be one of low, medium, high, critical, not 'urgent'"),
        (("--deadline", "soon"), "error: cannot read the deadline 'soon'"),
        (("--deadline", "2001-01-01T00:00"), "error: the deadline 2001-01-01T00:00:00+00:00 has passed already"),
    ],
)
def test_run_names_a_bad_context_priority_or_deadline(home: Path, args: tuple[str, ...], message: str) -> None:
    code, _, err = invoke(home, "run", "sum this data", *args)
    assert code == 2 and message in err, err


def test_route_reads_the_input_as_run_does(home: Path) -> None:
    code, out, err = invoke(home, "route", "what does this show", "--input", "-", "--json", input="a;b\n1;2\n3;4\n")
    assert code == 0 and json.loads(out)["expert_ids"] == ["data-analysis"], err
    code, _, err = invoke(home, "route", "what does this show", "--input", str(home / "absent.csv"))
    assert code == 2 and "input file not found" in err


def test_run_and_route_take_a_context(home: Path) -> None:
    code, out, err = invoke(home, "route", "anything at all", "--context", '{"experts": ["code"]}', "--json")
    assert code == 0 and json.loads(out)["expert_ids"] == ["code"], err
    code, out, err = invoke(
        home, "run", "sum this data", "--input", "-", "--json", "--context", '{"note": 1}', "--deadline", "5m",
        input='[{"v": 2}]',
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = invoke(home, "tasks", "list", "--json")
    record = json.loads(invoke(home, "tasks", "show", json.loads(out)["items"][0]["id"], "--json")[1])
    assert record["task"]["context"] == {"note": 1} and record["task"]["deadline"] is not None
