"""Routing's files and keys under odd but legal input: pasted text that looks like a table and is none, texts that
differ only in what the routing cache must not fold, caches whose files or directories are damaged."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from fakes.encoder import BagOfWordsEncoder
from vy_nexus.routing.cache import routing_key
from vy_nexus.routing.embedding_cache import CachedEncoder, EmbeddingStore, clear_disk, disk_stats, text_key
from vy_nexus.routing.evaluate import evaluate
from vy_nexus.routing.model_resolver import AUTO_FIT_DIRNAME, auto_fit_path, resolve_model
from vy_nexus.routing.pasted import pasted_table, split_pasted
from vy_nexus.routing.route_model import fit_route_model
from vy_nexus.routing.routes import LabeledExample, Route
from vy_nexus.routing.semantic import SemanticRouter
from vy_nexus.tasks import Task

ROUTES = [
    Route("pets", ("feed the cat", "walk the dog", "buy fish food", "the hamster escaped", "dog grooming", "cat toys")),
    Route("money", ("pay the rent", "transfer money", "check my balance", "tax return", "savings plan", "loan rate")),
    Route("cook", ("bake bread", "boil pasta", "roast a chicken", "make soup", "fry an egg", "slice onions")),
    Route("sport", ("run a marathon", "swim laps", "lift weights", "ride a bike", "play tennis", "yoga class")),
]


# -- pasted material that only looks like a table ---------------------------------------------------------------------


def test_separator_rows_without_a_header_are_no_table() -> None:
    text = "what is the total here\n|---|---|\n|---|---|"
    assert pasted_table(text) is None
    assert pasted_table(text + "\nname,price\napple,3\npear,4") == [
        {"name": "apple", "price": "3"},
        {"name": "pear", "price": "4"},
    ]


def test_json_nested_past_the_recursion_limit_is_no_table() -> None:
    assert pasted_table('what is the total here {"rows": ' + "[" * 5000) is None
    assert pasted_table("sum these: " + '[{"a": ' * 3000) is None


# -- the routing cache key --------------------------------------------------------------------------------------------


def key(text: str) -> str:
    return routing_key(Task(description=text), 1, 1)


@pytest.mark.parametrize(
    ("pasted", "folded"),
    [
        ("summarise\nname,price\napple,3\npear,4\nplum,5", "summarise name,price apple,3 pear,4 plum,5"),
        ("explain\n| a | b |\n|---|---|\n| 1 | 2 |", "explain | a | b | |---|---| | 1 | 2 |"),
        ("is it right\nSELECT name FROM users\nGROUP BY name", "is it right\nselect name from users\ngroup by name"),
        ("look\nimport os\n    a note on it\n    and more", "look\nimport os\na note on it\nand more"),
    ],
)
def test_cache_key_keeps_the_line_structure_and_case_routing_reads(pasted: str, folded: str) -> None:
    assert split_pasted(pasted) != split_pasted(folded)  # routing tells them apart...
    assert key(pasted) != key(folded)  # ...so one's cached decision is never served for the other


def test_cache_key_still_folds_case_and_spacing_of_a_plain_request() -> None:
    assert key("  Fix   the BUG\n") == key("fix the bug") == key("FIX THE BUG")
    assert key("Import os") != key("import os")  # a plain request never shares a key with a code line
    assert key(" " * 25_000 + "hi") != key("hi")  # routing scans only the first 20,000 characters


# -- damaged or unusable cache files ----------------------------------------------------------------------------------


def test_damaged_embedding_cache_is_rebuilt_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = EmbeddingStore(tmp_path, "bag-of-words")
    with store.path.open("wb") as handle:  # an archive, but one key for two vectors: not this cache's
        np.savez(handle, keys=np.asarray([b"x" * 16], dtype="S16"), vectors=np.zeros((2, 4)))
    with caplog.at_level(logging.WARNING):
        vectors = CachedEncoder(BagOfWordsEncoder(), tmp_path).encode(["hello", "world"])
    assert vectors.shape == (2, 128)
    assert "is damaged or unreadable (ValueError): rebuilding it" in caplog.text
    assert set(EmbeddingStore(tmp_path, "bag-of-words").read()) == {text_key("hello"), text_key("world")}
    store.path.write_bytes(b"junk")
    assert disk_stats(tmp_path) == {"files": 1, "vectors": 0, "bytes": 4, "damaged": 1}


def test_unwritable_embedding_cache_warns_and_encodes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "embeddings"
    blocker.write_text("not a directory", encoding="utf-8")
    inner = BagOfWordsEncoder()
    with caplog.at_level(logging.WARNING):
        vectors = CachedEncoder(inner, blocker).encode(["hello"])
    assert vectors.shape == (1, 128) and inner.calls == [1]
    assert "cannot write the embedding cache" in caplog.text and "computed again next time" in caplog.text


def test_cache_clear_and_stats_skip_what_is_not_a_cache_file(tmp_path: Path) -> None:
    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "dir.lock").mkdir()
    CachedEncoder(BagOfWordsEncoder(), tmp_path).encode(["hello"])
    assert disk_stats(tmp_path)["files"] == 1
    assert clear_disk(tmp_path) == 1
    assert (tmp_path / "dir.npz").is_dir() and (tmp_path / "dir.lock").is_dir()
    assert [p.name for p in tmp_path.glob("*.npz")] == ["dir.npz"]


def test_damaged_automatic_refit_is_refitted_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    encoder = BagOfWordsEncoder()
    path = auto_fit_path(tmp_path, ROUTES, encoder.model_id)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated")
    with caplog.at_level(logging.WARNING):
        resolved = resolve_model(ROUTES, encoder, cache_dir=tmp_path)
    assert resolved.model is not None and "refitted automatically because" in resolved.note
    assert "is damaged or not a route model (BadZipFile): refitting it automatically" in caplog.text
    assert resolve_model(ROUTES, encoder, cache_dir=tmp_path).note.startswith("refitted automatically for these")


def test_unwritable_refit_cache_routes_with_the_refit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / AUTO_FIT_DIRNAME).write_text("not a directory", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        resolved = resolve_model(ROUTES, BagOfWordsEncoder(), cache_dir=tmp_path)
    assert resolved.model is not None and "not saved" in resolved.note
    assert "cannot save the refitted route model" in caplog.text


def test_a_look_without_fitting_says_routing_will_refit(tmp_path: Path) -> None:
    looked = resolve_model(ROUTES, BagOfWordsEncoder(), cache_dir=tmp_path, fit_now=False)
    assert looked.model is None and "the first routed task refits them automatically" in looked.note
    assert "automatic refits are off" not in looked.note
    assert not (tmp_path / AUTO_FIT_DIRNAME).exists()


# -- evaluation on data with nothing to count -------------------------------------------------------------------------


def test_evaluation_of_out_of_scope_examples_only_reports_no_accuracy() -> None:
    encoder = BagOfWordsEncoder()
    router = SemanticRouter.build(ROUTES, encoder, fit_route_model(ROUTES, encoder))
    examples = [LabeledExample("what is the capital of peru", "oos"), LabeledExample("quantum foam", "oos")]
    report = evaluate(router, examples, latency_sample=0)
    assert (report.in_scope, report.out_of_scope) == (0, 2)
    assert report.accuracy is None and report.closed_set_accuracy is None
    assert report.ece is None and report.mean_confidence is None
    assert report.oos_recall is not None
