"""What an operator reads, attacked: the Prometheus exposition, approval requests and the audit log."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from vy_nexus.config import load_settings
from vy_nexus.execution.audit import AuditLog
from vy_nexus.execution.governance import governance_dir
from vy_nexus.interfaces.cli import app
from vy_nexus.observability.metrics_db import MetricsDatabase, insert_rows

runner = CliRunner()


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def pending_approval(home: Path) -> str:
    code, _, err = invoke(home, "stop")
    match = re.search(r"approvals approve ([0-9a-f]+)", err)
    assert code == 3 and match, err
    return match.group(1)


def audit_entries(home: Path) -> list[dict[str, object]]:
    return list(AuditLog(home / "governance" / "audit.jsonl").entries())


# Prometheus ----------------------------------------------------------------------------------------------------------


def _write_execution_rows(home: Path, rows: list[tuple[object, ...]]) -> None:
    database = MetricsDatabase.for_settings(load_settings(home=home))
    try:
        with database.engine().begin() as conn:
            columns = ("task_id", "expert_id", "task_type", "started_at", "duration_ms", "success", "attempts")
            insert_rows(conn, "executions", columns, rows)
    finally:
        database.close()


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def test_prometheus_labels_a_row_without_task_type_general_not_none(home: Path) -> None:
    _write_execution_rows(home, [("t1", "code", None, 1.0, 5.0, 1, 1)])
    code, out, err = invoke(home, "metrics", "prometheus")
    assert code == 0, err
    counts = _samples(out, "vy_nexus_expert_duration_seconds_count")
    assert counts == [({"expert_id": "code", "task_type": "general"}, 1.0)]


def test_prometheus_ignores_a_non_finite_duration_instead_of_an_infinite_sum(home: Path) -> None:
    _write_execution_rows(
        home, [("t1", "code", "code", 1.0, float("inf"), 1, 1), ("t2", "code", "code", 2.0, 500.0, 1, 1)]
    )
    code, out, err = invoke(home, "metrics", "prometheus")
    assert code == 0, err
    assert _samples(out, "vy_nexus_expert_duration_seconds_sum") == [({"expert_id": "code", "task_type": "code"}, 0.5)]
    assert _samples(out, "vy_nexus_expert_duration_seconds_count")[0][1] == 2.0


def test_prometheus_escapes_hostile_label_values_so_the_official_parser_reads_them(home: Path) -> None:
    hostile = 'a"b\\c\nd é 🚀 }{,= [bold]x[/]'
    _write_execution_rows(home, [("t1", hostile, hostile, 1.0, 5.0, 0, 3)])
    code, out, err = invoke(home, "metrics", "prometheus")
    assert code == 0, err
    assert _samples(out, "vy_nexus_expert_retries_total") == [({"expert_id": hostile}, 2.0)]
    assert _samples(out, "vy_nexus_expert_executions_total") == [({"expert_id": hostile, "outcome": "failure"}, 1.0)]


# Approvals -----------------------------------------------------------------------------------------------------------


def test_reusing_a_consumed_approval_says_it_is_single_use_and_how_to_file_a_new_one(home: Path) -> None:
    approval = pending_approval(home)
    assert invoke(home, "approvals", "approve", approval)[0] == 0
    assert invoke(home, "stop", "--approval", approval)[0] == 0
    code, _, err = invoke(home, "stop", "--approval", approval)
    assert code == 3
    assert "is consumed, not approved: an approval is used once" in err
    assert "repeat the command without --approval to file a new request" in err
    assert audit_entries(home)[-1]["verdict"] == "denied"


def test_using_a_denied_approval_names_who_denied_it_and_what_to_do(home: Path) -> None:
    approval = pending_approval(home)
    assert invoke(home, "approvals", "deny", approval)[0] == 0
    code, _, err = invoke(home, "stop", "--approval", approval)
    assert code == 3
    assert "is denied, not approved: it was denied by cli:" in err
    assert "repeat the command without --approval to file a new request" in err


def test_using_an_expired_approval_names_the_ttl_key(home: Path) -> None:
    (home / "config.yaml").write_text("governance:\n  approval_ttl_seconds: 60\n")
    approval = pending_approval(home)
    assert invoke(home, "approvals", "approve", approval)[0] == 0
    path = governance_dir(load_settings(home=home)) / "approvals.json"
    data = json.loads(path.read_text())
    data["approvals"][0]["requested_at"] -= 3600
    path.write_text(json.dumps(data))
    code, _, err = invoke(home, "stop", "--approval", approval)
    assert code == 3 and not (home / "STOP").exists()
    assert "is expired, not approved: requests expire after 60 s (governance.approval_ttl_seconds)" in err


def test_approving_twice_says_how_to_use_the_approval(home: Path) -> None:
    approval = pending_approval(home)
    assert invoke(home, "approvals", "approve", approval)[0] == 0
    code, _, err = invoke(home, "approvals", "approve", approval)
    assert code == 3
    assert f"already approved: repeat the command with --approval {approval} to use it" in err


def test_an_unknown_approval_on_stop_is_refused_audited_and_points_at_the_list(home: Path) -> None:
    code, _, err = invoke(home, "stop", "--approval", "0123456789")
    assert code == 3 and not (home / "STOP").exists()
    assert "no approval request with id '0123456789': `vy-nexus approvals list --all` shows every request" in err
    (entry,) = audit_entries(home)
    assert entry["action"] == "system.shutdown" and entry["verdict"] == "denied"
    assert entry["policy"] == "approval" and entry["approval_id"] == "0123456789"


# Audit log -----------------------------------------------------------------------------------------------------------


def test_audit_record_after_a_torn_last_line_starts_a_line_of_its_own(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.record("first", target="a")
    log.path.write_bytes(log.path.read_bytes()[:-12])  # a write cut short: no newline at the end
    log.record("second", target="b")
    assert [entry["action"] for entry in log.entries()] == ["second"]


def test_audit_entries_skip_lines_that_are_not_utf8(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.record("first")
    with log.path.open("ab") as handle:
        handle.write(b"\xff\xfe not text\n")
    log.record("second")
    assert [entry["action"] for entry in log.entries()] == ["first", "second"]


def test_a_stop_after_a_torn_audit_line_is_still_audited(home: Path) -> None:
    pending_approval(home)
    audit = home / "governance" / "audit.jsonl"
    audit.write_bytes(audit.read_bytes()[:-5])
    code, _, err = invoke(home, "stop", "--yes")
    assert code == 0, err
    assert audit_entries(home)[-1]["verdict"] == "allowed"


def test_an_approval_for_another_action_says_it_covers_only_its_own(home: Path) -> None:
    approval = pending_approval(home)
    assert invoke(home, "approvals", "approve", approval)[0] == 0
    code, _, err = invoke(home, "configure", "logging.level", "debug", "--approval", approval)
    assert code == 3 and not (home / "config.yaml").exists()
    assert f"approval '{approval}' is for system.shutdown" in err
    assert "repeat the command without --approval to file a request for this one" in err
    assert audit_entries(home)[-1]["action"] == "config.set"
