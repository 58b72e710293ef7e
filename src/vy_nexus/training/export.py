"""From trained weights to the ONNX file routing loads: export (torch), int8 quantisation and its check (onnxruntime).

The export has the inputs and output of the packaged MiniLM ONNX (``input_ids``, ``attention_mask``,
``token_type_ids`` → ``last_hidden_state``), so ``OnnxSentenceEncoder`` pools it the same way.

Quantisation is onnxruntime's dynamic int8, per channel, leaving each layer's feed-forward output projection in
fp32: quantising those too wrecked the embeddings on these machines. The result is then compared with the fp32
model on held-out sentences; below the cosine floor the quantised file is refused and fp32 is used.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vy_nexus.reasoning.embeddings import OnnxSentenceEncoder

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
FFN_OUTPUT = re.compile(r"layer\.\d+/output/dense/MatMul$")
"""The feed-forward output projection of each layer (not ``attention/output``): kept in fp32."""
OPSET = 17


def export_onnx(base_dir: Path, encoder_state: dict[str, Any], path: Path) -> None:
    """Write the encoder with ``encoder_state`` (weights) as fp32 ONNX with dynamic batch and sequence axes."""
    import torch

    from vy_nexus.training.finetune import load_base_encoder

    encoder = load_base_encoder(base_dir, eager_attention=True)
    encoder.load_state_dict(encoder_state)

    class HiddenStates(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    wrapper = HiddenStates().eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    mask[1, 5:] = 0  # a padded row, so the trace keeps the attention mask
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "last_hidden_state")}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.inference_mode():
        # The TorchScript exporter (deprecated in torch 2.9+, still in 2.13) traces BERT reliably with dynamic axes;
        # its deprecation and tracer notices say nothing about this model.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (ids, mask, torch.zeros_like(ids)),
            str(path),
            dynamo=False,
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
        )


def quantise_int8(fp32: Path, int8: Path) -> list[str]:
    """Dynamic int8, per channel, feed-forward output layers left in fp32. Returns the nodes kept in fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False).graph
    kept = [node.name for node in graph.node if node.op_type == "MatMul" and FFN_OUTPUT.search(node.name)]
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # onnxruntime logs advice on the root logger ("consider pre-processing")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=kept)
    finally:
        logging.disable(previous)
    return kept


@dataclass(frozen=True, slots=True)
class QuantisationCheck:
    mean_cosine: float
    min_cosine: float
    sentences: int
    floor: float

    @property
    def accepted(self) -> bool:
        return self.mean_cosine >= self.floor

    def as_dict(self) -> dict[str, Any]:
        return {
            "mean_cosine": round(self.mean_cosine, 5),
            "min_cosine": round(self.min_cosine, 5),
            "sentences": self.sentences,
            "floor": self.floor,
            "accepted": self.accepted,
        }


def compare_embeddings(
    fp32: Path, int8: Path, tokenizer: Path, texts: list[str], floor: float, max_length: int
) -> QuantisationCheck:
    """Cosine between the fp32 and int8 embeddings of ``texts`` (held-out sentences)."""
    if not texts:
        raise ValueError("the quantisation check needs sentences")
    a = OnnxSentenceEncoder(fp32, tokenizer, max_length=max_length).encode(texts)
    b = OnnxSentenceEncoder(int8, tokenizer, max_length=max_length).encode(texts)
    cosines = np.sum(a * b, axis=1)
    return QuantisationCheck(float(cosines.mean()), float(cosines.min()), len(texts), floor)
