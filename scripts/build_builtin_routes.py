"""Build the route set and the fitted route model that ship with vy-nexus for the built-in experts.

Run:  .venv/bin/python scripts/build_builtin_routes.py [--routes-only] [--seed 15]

1. Composes the utterances from the hand-written material in ``scripts/route_material_*.py``: every request as
   written, a share of them reworded the way people type (a greeting or "can you" in front, capitalised, a question
   mark, a "thanks"), requests with pasted code, tables and text, and the hard negatives between neighbouring experts
   (research vs general, writing vs research, data-analysis vs code). Seeded, so a run reproduces the file.
2. Writes them to ``src/vy_nexus/routing/data/builtin_routes.json`` (one route per built-in expert).
3. Fits the route model (logistic-regression head, temperature, out-of-scope cut) on exactly the routes a default
   install routes with (experts' ``examples`` + that file), with the packaged MiniLM encoder, and saves it as
   ``builtin_routes.model.npz`` next to the file, with the utterances' vectors (``builtin_routes.embeddings.npz``)
   so that an automatic refit for a user's changed route set embeds only the new utterances. Utterances already
   in that file keep their stored vectors (only new material is embedded), so added material changes the model by
   what it adds, not by the encoder's batch-to-batch noise.

The evaluation prompts in ``benchmarks/data/routing_eval.jsonl`` were written separately and are never read here.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import route_material_code as code  # noqa: E402
import route_material_data as data  # noqa: E402
import route_material_general as general  # noqa: E402
import route_material_research as research  # noqa: E402
import route_material_writing as writing  # noqa: E402

QUESTION_STARTS = (
    "what", "how", "why", "who", "which", "when", "where", "is", "are", "does", "do", "can", "should", "did", "was",
)  # fmt: skip
IMPERATIVE_PREFIXES = ("please ", "can you ", "could you ", "hey, can you ", "i need you to ", "help me ")
QUESTION_PREFIXES = ("quick question: ", "hey, ", "i was wondering, ", "hi! ", "")
FACTUAL_DOCUMENTS = (1, 2, 4, 6, 7)
"""Writing's sample documents that report facts (a research question about a cover letter would be odd)."""
SUFFIXES = ("", "", " thanks", " please", ".", " — thanks!")


def reword(text: str, rng: random.Random) -> str:
    """One plausible rewording of a request (never changes its meaning)."""
    first = text.split(maxsplit=1)[0].lower().strip(",:!?").split("'")[0]
    if first in QUESTION_STARTS or text.endswith("?"):
        prefix = rng.choice(QUESTION_PREFIXES)
        body = text if text.endswith("?") else text + "?"
        out = prefix + body[0].lower() + body[1:] if prefix else body[0].upper() + body[1:]
    elif first in ("hi", "hello", "hey", "thanks", "thank", "ok", "bye", "good"):
        out = text.capitalize() + rng.choice(("", "!", " :)"))
    else:
        prefix = rng.choice(IMPERATIVE_PREFIXES)
        out = prefix + text[0].lower() + text[1:]
        suffix = "?" if prefix.startswith(("can", "could", "hey, can")) else rng.choice(SUFFIXES)
        out += suffix
    return out[0].upper() + out[1:] if rng.random() < 0.5 else out


def with_material(templates: list[str], material: list[str], slot: str, count: int, rng: random.Random) -> list[str]:
    pairs = [(t, m) for t in templates for m in material]
    rng.shuffle(pairs)
    return [t.replace("{" + slot + "}", m) for t, m in pairs[:count]]


ASKED_OF_DOCUMENT_COUNT = 30
"""Utterances each of research and writing gets from the short requests about a document handed over as input."""


def compose(seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    # The requests about an input document came later: their own generator leaves every earlier utterance as it was.
    later = random.Random(seed + 1)

    def base(requests: list[str], hard: list[str], share: float = 0.9) -> list[str]:
        written = list(requests) + list(hard)
        return written + [reword(text, rng) for _ in range(2) for text in written if rng.random() < share / 1.5]

    routes = {
        "code": base(code.REQUESTS, code.HARD, 0.6)
        + with_material(code.WITH_CODE, code.CODE_SNIPPETS, "code", 70, rng),
        "data-analysis": base(data.REQUESTS, data.HARD) + with_material(data.WITH_TABLE, data.TABLES, "table", 80, rng),
        "research": base(research.REQUESTS, research.HARD)
        + with_material(research.WITH_DOCUMENT, [writing.DOCUMENTS[i] for i in FACTUAL_DOCUMENTS], "doc", 24, rng),
        "writing": base(writing.REQUESTS, writing.HARD)
        + with_material(writing.WITH_TEXT, writing.DOCUMENTS, "doc", 50, rng),
        "general": base(general.REQUESTS, general.HARD),
    }
    factual = [writing.DOCUMENTS[i] for i in FACTUAL_DOCUMENTS]
    routes["research"] += with_material(research.ASKED_OF_DOCUMENT, factual, "doc", ASKED_OF_DOCUMENT_COUNT, later)
    routes["writing"] += with_material(writing.ASKED_OF_TEXT, writing.DOCUMENTS, "doc", ASKED_OF_DOCUMENT_COUNT, later)
    return {name: list(dict.fromkeys(u.strip() for u in utterances)) for name, utterances in routes.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--routes-only", action="store_true", help="write the utterances, do not fit")
    args = parser.parse_args()

    from vy_nexus.routing.builtin_routes import (
        packaged_embeddings_path,
        packaged_model_path,
        packaged_routes_path,
        save_packaged_embeddings,
        with_packaged_embeddings,
    )
    from vy_nexus.routing.routes import Route, save_routes

    composed = compose(args.seed)
    save_routes(packaged_routes_path(), [Route(name, tuple(texts)) for name, texts in composed.items()])
    sizes = ", ".join(f"{name} {len(texts)}" for name, texts in composed.items())
    print(f"wrote {packaged_routes_path()}: {sizes}")
    if args.routes_only:
        return 0

    from vy_nexus.config import load_settings
    from vy_nexus.routing.route_model import fit_route_model
    from vy_nexus.routing.semantic import SemanticStrategy
    from vy_nexus.system import VyNexus

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home, environ={})
        system = VyNexus(settings, observe=False, load_plugins=False)
        strategy = SemanticStrategy.from_settings(system.registry, settings, auto_fit=False)
        routes = strategy.routes()
        # Utterances shipped before keep their stored vectors: the int8 encoder quantises each batch's activations
        # with one scale, so embedding them again in other batches would move them, and the model with them.
        encoder = with_packaged_embeddings(strategy.encoder)
        started = time.perf_counter()
        model = fit_route_model(routes, encoder, seed=args.seed)
        model.save(packaged_model_path())
        save_packaged_embeddings([u for route in routes for u in route.utterances], encoder)
    print(f"fitted {model.kind} on {model.report['utterances']} utterances in {time.perf_counter() - started:.1f} s")
    print(f"report: {model.report}")
    print(f"wrote {packaged_model_path()} and {packaged_embeddings_path()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
