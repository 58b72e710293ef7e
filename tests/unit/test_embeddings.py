"""The real ONNX MiniLM encoder (loads in well under a second) and the on-disk utterance cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fakes.encoder import BagOfWordsEncoder
from vy_nexus.config import Settings
from vy_nexus.errors import ConfigError
from vy_nexus.reasoning.embeddings import OnnxSentenceEncoder, default_model_path, default_tokenizer_path
from vy_nexus.routing.embedding_cache import CachedEncoder, EmbeddingStore, clear_disk, disk_stats, text_key


@pytest.fixture(scope="module")
def encoder() -> OnnxSentenceEncoder:
    return OnnxSentenceEncoder(default_model_path(), default_tokenizer_path(), batch_size=4)


def test_loads_lazily_and_encodes_normalised_vectors(encoder: OnnxSentenceEncoder) -> None:
    fresh = OnnxSentenceEncoder(default_model_path(), default_tokenizer_path())
    assert not fresh.loaded
    assert fresh.model_id.startswith("model-")  # the id needs no session
    assert not fresh.loaded
    vectors = encoder.encode(
        ["how do i say hello in french", "translate thank you into german", "my card was declined"]
    )
    assert encoder.loaded
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.1  # paraphrases are closer than unrelated requests
    assert encoder.dimension == 384


def test_batches_keep_input_order(encoder: OnnxSentenceEncoder) -> None:
    texts = ["a", "a much longer sentence about the weather in lisbon tomorrow", "timer", "play jazz", "b c d", "x"]
    batched = encoder.encode(texts)  # batch_size=4: two batches, sorted by length internally
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(batched, one_by_one, atol=1e-4)
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        encoder.encode("not a list")


def test_long_text_is_truncated_not_rejected(encoder: OnnxSentenceEncoder) -> None:
    assert encoder.encode(["word " * 2000]).shape == (1, 384)


def test_model_id_identifies_model_and_length(tmp_path: Path) -> None:
    a = OnnxSentenceEncoder(default_model_path(), default_tokenizer_path(), max_length=128)
    b = OnnxSentenceEncoder(default_model_path(), default_tokenizer_path(), max_length=64)
    assert a.model_id != b.model_id
    assert a.model_id == OnnxSentenceEncoder(default_model_path(), default_tokenizer_path()).model_id


def test_missing_or_broken_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ONNX model not found"):
        OnnxSentenceEncoder(tmp_path / "none.onnx", default_tokenizer_path()).encode(["x"])
    with pytest.raises(ConfigError, match=r"tokenizer\.json not found"):
        OnnxSentenceEncoder(default_model_path(), tmp_path / "none.json").encode(["x"])
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="cannot load ONNX model"):
        OnnxSentenceEncoder(bad, default_tokenizer_path()).encode(["x"])
    with pytest.raises(ValueError):
        OnnxSentenceEncoder(bad, bad, batch_size=0)


def test_paths_come_from_settings(settings: Settings, tmp_path: Path) -> None:
    default = OnnxSentenceEncoder.from_settings(settings)
    assert default.model_path == default_model_path()
    assert default.tokenizer_path.name == "tokenizer.json"
    settings.routing.semantic.model_path = "models/mine.onnx"
    settings.routing.semantic.max_length = 64
    custom = OnnxSentenceEncoder.from_settings(settings)
    assert custom.model_path == settings.home / "models" / "mine.onnx"
    assert custom.max_length == 64


def test_cache_encodes_each_text_once_across_instances(tmp_path: Path) -> None:
    inner = BagOfWordsEncoder()
    cached = CachedEncoder(inner, tmp_path)
    first = cached.encode(["play jazz", "set a timer", "play jazz"])
    assert inner.calls == [2]  # duplicates encoded once
    assert (cached.hits, cached.misses) == (0, 3)
    again = CachedEncoder(inner, tmp_path)  # a new process would read the file
    second = again.encode(["set a timer", "play jazz"])
    assert inner.calls == [2]
    assert np.allclose(second, first[[1, 0]])
    again.encode(["something new"])
    assert inner.calls == [2, 1]
    assert disk_stats(tmp_path) == {"files": 1, "vectors": 3, "bytes": disk_stats(tmp_path)["bytes"], "damaged": 0}
    assert cached.encode([]).shape[0] == 0


def test_cache_is_keyed_by_model(tmp_path: Path) -> None:
    CachedEncoder(BagOfWordsEncoder(model_id="m1"), tmp_path).encode(["hello"])
    other = BagOfWordsEncoder(model_id="m2")
    CachedEncoder(other, tmp_path).encode(["hello"])
    assert other.calls == [1]
    assert disk_stats(tmp_path)["files"] == 2
    assert clear_disk(tmp_path) == 2
    assert disk_stats(tmp_path)["files"] == 0


def test_damaged_cache_file_is_rebuilt(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path, "bag-of-words")
    store.path.write_bytes(b"broken")
    inner = BagOfWordsEncoder()
    CachedEncoder(inner, tmp_path).encode(["hello"])
    assert inner.calls == [1]
    assert text_key("hello") in EmbeddingStore(tmp_path, "bag-of-words").read()
    assert disk_stats(tmp_path / "absent") == {"files": 0, "vectors": 0, "bytes": 0, "damaged": 0}
    whole = store.path.read_bytes()
    for damaged in (whole[: len(whole) // 2], b""):  # a truncated archive, an empty file: rebuilt, never a traceback
        store.path.write_bytes(damaged)
        assert store.read() == {}
        assert disk_stats(tmp_path)["vectors"] == 0
