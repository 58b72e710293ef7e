"""``vy-nexus stop``, ``pulse`` and ``approvals`` (and ``configure``'s approval) through Typer's CliRunner."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vy_nexus.foundation.kill_switch import StopRequest
from vy_nexus.foundation.state import Job, Meta, Phase, SovereignState
from vy_nexus.interfaces.cli import app

runner = CliRunner()


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def approval_id(stderr: str) -> str:
    match = re.search(r"approvals approve ([0-9a-f]+)", stderr)
    assert match, stderr
    return match.group(1)


def write_state(home: Path, *verification: list[str]) -> None:
    jobs = [Job(id=f"1.{i + 1}", task=f"job {i + 1}", verification=v) for i, v in enumerate(verification)]
    state = SovereignState(meta=Meta(current_phase=1), phases=[Phase(id=1, name="sample", jobs=jobs)])
    (home / "sovereign_state.json").write_text(state.model_dump_json())


def test_stop_needs_approval_then_writes_the_stop_file(home: Path) -> None:
    code, _, err = invoke(home, "stop", "--reason", "maintenance")
    assert code == 3 and "needs approval" in err
    pending = approval_id(err)
    assert not (home / "STOP").exists()

    code, out, _ = invoke(home, "approvals", "list", "--json")
    (listed,) = json.loads(out)["approvals"]
    assert (
        listed["id"] == pending
        and listed["action"] == "system.shutdown"
        and listed["params"] == {"reason": "maintenance"}
    )
    code, out, _ = invoke(home, "approvals")
    assert code == 0 and pending in out

    code, out, _ = invoke(home, "approvals", "approve", pending, "--note", "fine")
    assert code == 0 and f"--approval {pending}" in out
    code, out, _ = invoke(home, "stop", "--reason", "maintenance", "--approval", pending)
    assert code == 0 and "stop requested" in out
    notice = StopRequest(home).read()
    assert notice is not None and notice.reason == "maintenance"

    code, _, err = invoke(home, "stop", "--reason", "maintenance", "--approval", pending)
    assert code == 3 and "consumed" in err
    code, out, _ = invoke(home, "approvals", "list", "--all", "--json")
    assert [a["status"] for a in json.loads(out)["approvals"]] == ["consumed"]
    audit = (home / "governance" / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["verdict"] for line in audit] == ["needs_approval", "approved", "allowed", "denied"]


def test_stop_with_yes_and_json(home: Path) -> None:
    code, out, _ = invoke(home, "stop", "--yes", "--json")
    assert code == 0
    assert json.loads(out) == {
        "stop_file": str(home / "STOP"),
        "reason": "stop requested from the command line",
        "server": {"running": False},  # no background server recorded
    }


def test_stop_without_approval_when_governance_allows_it(home: Path) -> None:
    (home / "config.yaml").write_text("governance:\n  require_approval_for_destructive: false\n")
    code, _, _ = invoke(home, "stop")
    assert code == 0 and (home / "STOP").exists()


def test_approvals_deny_and_errors(home: Path) -> None:
    code, out, _ = invoke(home, "approvals")
    assert code == 0 and "no pending approval requests" in out
    code, out, _ = invoke(home, "approvals", "list", "--all")
    assert "no approval requests" in out
    _, _, err = invoke(home, "stop")
    pending = approval_id(err)
    code, out, _ = invoke(home, "approvals", "list")
    assert pending in out and "system.shutdown" in out
    code, out, _ = invoke(home, "approvals", "deny", pending, "--json")
    assert code == 0 and json.loads(out)["status"] == "denied"
    code, _, err = invoke(home, "approvals", "approve", pending)
    assert code == 3 and "already denied" in err
    code, _, err = invoke(home, "approvals", "approve", "nope")
    assert code == 3 and "no approval request with id 'nope'" in err


def test_configure_needs_approval_when_not_interactive(home: Path) -> None:
    code, _, err = invoke(home, "configure", "logging.level", "debug")
    assert code == 3 and "config.set of 'logging.level'" in err
    assert not (home / "config.yaml").exists()
    pending = approval_id(err)
    invoke(home, "approvals", "approve", pending)
    code, _, err = invoke(home, "configure", "logging.level", "error", "--approval", pending)
    assert code == 3 and "is for config.set of 'logging.level'" in err  # approved for another value
    code, out, _ = invoke(home, "configure", "logging.level", "debug", "--approval", pending)
    assert code == 0 and "logging.level" in out
    assert yaml.safe_load((home / "config.yaml").read_text()) == {"logging": {"level": "debug"}}


def test_configure_checks_the_value_before_asking(home: Path) -> None:
    code, _, err = invoke(home, "configure", "--", "safety.critical_error_threshold", "-1")
    assert code == 2 and "safety.critical_error_threshold" in err
    code, out, _ = invoke(home, "approvals", "list", "--json")
    assert json.loads(out)["approvals"] == []


def test_pulse_status_on_a_fresh_home(home: Path) -> None:
    code, out, _ = invoke(home, "pulse", "--status", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["phases"][0]["name"] == "Nervous system" and len(info["phases"]) == 5
    code, out, _ = invoke(home, "pulse", "--status")
    assert code == 0 and "Structured journal" in out and "phase 1" in out


def test_pulse_never_runs_a_shell(home: Path) -> None:
    write_state(home, ["true; touch pwned"], ["echo", "ok"])
    code, out, _ = invoke(home, "pulse")
    assert code == 1 and "command not found: true; touch pwned" in out  # the job does not hold
    assert not (home / "pwned").exists()
    code, out, _ = invoke(home, "pulse", "--json")
    result = json.loads(out)
    assert result["job_id"] == "1.1" and result["passed"] is False
    assert not (home / "pwned").exists()


def test_pulse_beats_and_advances(home: Path) -> None:
    write_state(home, ["true"])
    code, out, _ = invoke(home, "pulse")
    assert code == 0 and "job 1.1: passed" in out
    code, out, _ = invoke(home, "pulse")
    assert "every phase holds" in out
    code, out, _ = invoke(home, "pulse", "--status")
    assert "completed" in out and "(holds)" in out


def test_first_pulse_on_a_new_home_sees_the_journal(home: Path) -> None:
    # The default state's job 1.1 greps research_logs/structured.jsonl: the beat flushes the journal before it checks.
    code, out, _ = invoke(home, "pulse")
    assert code == 0 and "job 1.1: passed" in out, out


def test_pulse_every_stops_on_the_stop_file(home: Path) -> None:
    (home / "config.yaml").write_text("safety:\n  stop_poll_seconds: 0.02\nheartbeat:\n  interval_minutes: 0.001\n")
    write_state(home, ["false"])

    def request_stop() -> None:  # once the loop runs: a request older than the system's start is stale
        deadline = time.monotonic() + 30
        while json.loads((home / "sovereign_state.json").read_text())["meta"]["last_heartbeat"] is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)  # a few more beats
        StopRequest(home).write("enough")

    stopper = threading.Thread(target=request_stop)
    stopper.start()
    code, out, _ = invoke(home, "pulse", "--loop")  # every heartbeat.interval_minutes
    stopper.join()
    assert code == 0
    assert out.count("job 1.1: failed") >= 2 and "heartbeat stopped" in out and "enough" in out
    state = json.loads((home / "sovereign_state.json").read_text())
    assert state["meta"]["last_shutdown_reason"].endswith("enough")


@pytest.mark.slow
def test_sigterm_stops_a_real_pulse_loop(home: Path) -> None:
    write_state(home, ["true"])
    env = {**os.environ, "VY_NEXUS_HOME": str(home)}
    command = [sys.executable, "-c", "from vy_nexus.interfaces.cli import main; main()", "pulse", "--every", "10"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while json.loads((home / "sovereign_state.json").read_text())["meta"]["last_heartbeat"] is None:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "heartbeat stopped: SIGTERM received" in out
    state = json.loads((home / "sovereign_state.json").read_text())
    assert state["meta"]["last_shutdown_reason"] == "SIGTERM received"


def test_an_interactive_confirmation_counts_as_approval(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vy_nexus.interfaces.cli.confirm.interactive", lambda: True)
    declined = runner.invoke(app, ["--home", str(home), "configure", "logging.level", "debug"], input="n\n")
    assert declined.exit_code == 3 and "cancelled: not confirmed" in declined.stderr
    assert not (home / "config.yaml").exists()
    accepted = runner.invoke(app, ["--home", str(home), "configure", "logging.level", "debug"], input="y\n")
    assert accepted.exit_code == 0 and "Set logging.level to 'debug'?" in accepted.stdout
    assert yaml.safe_load((home / "config.yaml").read_text()) == {"logging": {"level": "debug"}}
    audit = [json.loads(line) for line in (home / "governance" / "audit.jsonl").read_text().splitlines()]
    assert [(a["policy"], a["verdict"]) for a in audit] == [("cli_confirmation", "denied"), ("all", "allowed")]
    assert "interactive confirmation" in audit[1]["reason"]
    _, out, _ = invoke(home, "approvals", "list", "--all", "--json")
    assert json.loads(out)["approvals"] == []  # nothing was filed: a person answered


def test_pulse_loop_prints_json_lines(home: Path) -> None:
    (home / "config.yaml").write_text("safety:\n  stop_poll_seconds: 0.02\n")
    write_state(home, ["true"], ["false"])

    def stop_once_both_jobs_were_checked() -> None:
        # Not a fixed delay: on a busy machine two pulses (each runs a verification process) can take seconds.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = SovereignState.model_validate_json((home / "sovereign_state.json").read_text())
            if all(job.last_checked is not None for job in state.phases[0].jobs):
                break
            time.sleep(0.02)
        StopRequest(home).write("enough")

    stopper = threading.Thread(target=stop_once_both_jobs_were_checked)
    stopper.start()
    code, out, _ = invoke(home, "pulse", "--every", "0.001", "--json")
    stopper.join()
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) >= 2
    assert (lines[0]["job_id"], lines[0]["passed"]) == ("1.1", True)
    assert (lines[1]["job_id"], lines[1]["passed"]) == ("1.2", False)


def test_approval_requests_at_80_columns_keep_their_text_whole(home: Path) -> None:
    # Before: six columns at 80 folded the parameters to a word per line ("{"reason": / "maintenance / window ...").
    reason = "maintenance window for the database upgrade [now]"
    code, _, err = invoke(home, "stop", "--reason", reason)
    assert code == 3
    pending = approval_id(err)
    result = runner.invoke(app, ["--home", str(home), "approvals", "list"], env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and max(len(line) for line in lines) <= 80
    assert any(line.startswith(f"{pending}  pending  system.shutdown → system") for line in lines)
    assert any(line.strip() == f'params {{"reason": "{reason}"}}' for line in lines)
