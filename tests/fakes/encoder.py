"""A deterministic bag-of-words encoder: texts sharing words get similar vectors. No model file, no load time."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from vy_nexus.reasoning.embeddings import Vectors

_WORD = re.compile(r"[a-z0-9']+")


class BagOfWordsEncoder:
    """Each word hashes to a fixed random direction; a text is the normalised sum of its words' directions."""

    def __init__(self, dimension: int = 128, model_id: str = "bag-of-words") -> None:
        self.dimension = dimension
        self._model_id = model_id
        self.calls: list[int] = []

    @property
    def model_id(self) -> str:
        return self._model_id

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng(seed).standard_normal(self.dimension)

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                out[row] += self._word(word)
            norm = np.linalg.norm(out[row])
            out[row] /= norm if norm else 1.0
        return out
