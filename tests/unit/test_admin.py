"""Administrative actions as library calls: the stop request and config changes, with governance deciding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vy_nexus.admin import change_config, request_stop
from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import ConfigError, GovernanceError
from vy_nexus.execution.governance import Governance
from vy_nexus.foundation.kill_switch import StopRequest


def audit(home: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (home / "governance" / "audit.jsonl").read_text().splitlines()]


def test_stop_needs_approval_then_writes_the_stop_file(settings: Settings) -> None:
    with pytest.raises(GovernanceError) as info:
        request_stop(settings, "maintenance", actor="api:ops")
    assert info.value.verdict == "needs_approval" and info.value.approval_id is not None
    assert StopRequest(settings.home).read() is None
    Governance.from_settings(settings).decide_approval(info.value.approval_id, approve=True, by="boss")
    notice = request_stop(settings, "maintenance", actor="api:ops", approval_id=info.value.approval_id)
    pending = StopRequest(settings.home).read()
    assert pending is not None and pending.reason == "maintenance" == notice.reason
    assert pending.requested_by.startswith("api:ops (pid ")


def test_a_person_asked_now_approves_or_declines(settings: Settings) -> None:
    questions: list[str] = []

    def no(question: str) -> str | None:
        questions.append(question)
        return None

    with pytest.raises(GovernanceError, match="cancelled: not confirmed"):
        request_stop(settings, "x", actor="shell:bob", confirm=no)
    assert questions == ["Shut down vy-nexus?"] and StopRequest(settings.home).read() is None
    request_stop(settings, "y", actor="shell:bob", confirm=lambda q: "bob (asked)")
    assert [(a["policy"], a["verdict"]) for a in audit(settings.home)] == [
        ("shell_confirmation", "denied"),
        ("all", "allowed"),
    ]


def test_approval_off_needs_nobody(home: Path) -> None:
    (home / "config.yaml").write_text("governance:\n  require_approval_for_destructive: false\n")
    settings = load_settings(home, environ={})
    request_stop(settings, "nightly", actor="cron", confirm=lambda q: pytest.fail("nobody should be asked"))
    assert StopRequest(home).read() is not None


def test_change_config_validates_before_asking_and_reports_the_change(settings: Settings) -> None:
    def never(question: str) -> str | None:
        raise AssertionError("a bad value must fail before anyone is asked")

    with pytest.raises(ConfigError, match=r"routing\.top_k"):
        change_config(settings, "routing.top_k", "0", actor="cli:me", confirm=never)
    with pytest.raises(ConfigError, match="unknown config key"):
        change_config(settings, "routing.nope", "1", actor="cli:me", confirm=never)
    assert not settings.config_file.exists()
    change = change_config(settings, "routing.top_k", 2, actor="api:me", approved_by="me (token)")
    assert (change.key, change.previous, change.value, change.path) == ("routing.top_k", 1, 2, settings.config_file)
    assert yaml.safe_load(settings.config_file.read_text()) == {"routing": {"top_k": 2}}
    assert "me (token)" in str(audit(settings.home)[-1]["reason"])
