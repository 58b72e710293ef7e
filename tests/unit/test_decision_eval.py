"""Reading {text, accept} data for `routes eval`: every problem is named with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vy_nexus.errors import ConfigError
from vy_nexus.routing.decision_eval import is_accept_file, read_accept


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_accept_lines_are_read_with_one_or_several_experts(tmp_path: Path) -> None:
    path = write(
        tmp_path, '\n{"text": "hi", "accept": "general", "split": "dev"}\n{"text": "x", "accept": ["a", "b"]}\n'
    )
    assert is_accept_file(path)
    first, second = read_accept(path)
    assert first.accept == ("general",) and first.fields == {"split": "dev"} and second.accept == ("a", "b")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "tasks.jsonl:1: not valid JSON"),
        ("[1, 2]\n", "tasks.jsonl:1: each line must be a JSON object"),
        ('{"accept": ["a"]}\n', "tasks.jsonl:1: missing text field 'text'"),
        ('{"text": " ", "accept": ["a"]}\n', "tasks.jsonl:1: text field 'text' is empty"),
        ('{"text": "x", "accept": [1]}\n', "'accept' must be an expert id or a non-empty list"),
        ("\n\n", "holds no examples"),
    ],
)
def test_bad_accept_data_is_named(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_accept(write(tmp_path, content))


def test_label_data_and_missing_files_are_told_apart(tmp_path: Path) -> None:
    assert not is_accept_file(write(tmp_path, '{"text": "x", "intent": "y"}\n'))
    assert not is_accept_file(write(tmp_path, "not json\n"))
    assert not is_accept_file(write(tmp_path, ""))
    not_utf8 = tmp_path / "latin1.jsonl"
    not_utf8.write_bytes(b'{"text": "caf\xe9", "accept": "a"}\n')
    assert not is_accept_file(not_utf8)  # read_labeled then names the byte, never a traceback
    not_utf8.write_bytes(b'{"text": "x", "accept": "a"}\n{"text": "caf\xe9", "accept": "a"}\n')
    with pytest.raises(ConfigError, match=r"latin1.jsonl:2: not UTF-8 text \(byte 13 of the line\)"):
        read_accept(not_utf8)
    with pytest.raises(ConfigError, match="labeled data file not found"):
        is_accept_file(tmp_path / "missing.jsonl")
