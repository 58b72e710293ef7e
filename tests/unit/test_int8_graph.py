"""The int8-product rewrite of the packaged MiniLM (reasoning/int8_graph.py) and the encoder settings that use it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import ConfigError
from vy_nexus.reasoning.embeddings import OnnxSentenceEncoder, default_model_path, default_tokenizer_path
from vy_nexus.reasoning.int8_graph import int8_matmul_graph

SENTENCES = [
    "write a python function that merges two sorted lists",
    "what is the average order value per region in this csv",
    "explain superposition in quantum mechanics",
    "draft a friendly email declining the meeting",
]


@pytest.fixture(scope="module")
def packaged() -> bytes:
    return default_model_path().read_bytes()


def test_rewrites_every_dequantised_product_and_is_idempotent(packaged: bytes) -> None:
    result = int8_matmul_graph(packaged)
    assert result.rewritten == 36  # 6 blocks x (q, k, v, attention out, feed-forward in, feed-forward out)
    assert b"DynamicQuantizeMatMul" in result.model and b"com.microsoft" in result.model
    again = int8_matmul_graph(result.model)
    assert again.rewritten == 0 and again.model == result.model  # nothing left to rewrite: returned unchanged
    assert int8_matmul_graph(packaged, skip_inner_dim=1536).rewritten == 30  # feed-forward outputs left in float32


@pytest.mark.slow  # two sessions: ~1.5 s
def test_integer_products_give_nearly_the_same_vectors() -> None:
    plain = OnnxSentenceEncoder(default_model_path(), default_tokenizer_path())
    integer = OnnxSentenceEncoder(default_model_path(), default_tokenizer_path(), int8_matmul=True, threads=1)
    a, b = plain.encode(SENTENCES), integer.encode(SENTENCES)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.97, cosines
    assert (b @ b.T).argsort(axis=1)[:, -2].tolist() == (a @ a.T).argsort(axis=1)[:, -2].tolist()


def test_the_rewrite_is_part_of_the_model_id() -> None:
    plain = OnnxSentenceEncoder(default_model_path(), default_tokenizer_path())
    integer = OnnxSentenceEncoder(default_model_path(), default_tokenizer_path(), int8_matmul=True)
    assert integer.model_id == f"{plain.model_id}-mm8"
    assert not integer.loaded  # the id needs no session


@pytest.mark.slow  # writes and loads a 23 MB model: ~1 s
def test_a_model_without_int8_weights_is_loaded_as_it_is(tmp_path: Path, packaged: bytes) -> None:
    already = tmp_path / "integer.onnx"
    already.write_bytes(int8_matmul_graph(packaged).model)
    encoder = OnnxSentenceEncoder(already, default_tokenizer_path(), int8_matmul=True)
    assert not encoder.model_id.endswith("-mm8")
    assert encoder.encode(["hello"]).shape == (1, 384)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="cannot load ONNX model"):
        OnnxSentenceEncoder(bad, default_tokenizer_path(), int8_matmul=True).encode(["x"])


def test_threads_and_int8_matmul_come_from_settings(settings: Settings, tmp_path: Path) -> None:
    default = OnnxSentenceEncoder.from_settings(settings)
    assert (default.threads, default.int8_matmul) == (1, True)
    settings.routing.semantic.threads = 2
    settings.routing.semantic.int8_matmul = False
    assert (OnnxSentenceEncoder.from_settings(settings).threads, settings.routing.semantic.int8_matmul) == (2, False)
    with pytest.raises(ConfigError, match="threads"):
        load_settings(tmp_path / "home", environ={"VY_NEXUS_ROUTING__SEMANTIC__THREADS": "0"})
    with pytest.raises(ValueError, match="threads"):
        OnnxSentenceEncoder(default_model_path(), default_tokenizer_path(), threads=0)


def test_routing_builds_its_encoder_with_these_settings(settings: Settings) -> None:
    from vy_nexus.routing.semantic import encoder_from_settings

    settings.routing.semantic.threads = 2
    onnx = encoder_from_settings(settings).encoder.encoder  # CachedEncoder > PastedTextEncoder > the ONNX encoder
    assert isinstance(onnx, OnnxSentenceEncoder)
    assert (onnx.threads, onnx.int8_matmul) == (2, True)
