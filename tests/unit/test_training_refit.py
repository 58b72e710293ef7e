"""The route model of a trained encoder (training/refit.py): which head it keeps, and that it is calibrated on
sentences held out of every fit. No torch: a trained head is plain arrays."""

from __future__ import annotations

import numpy as np

from fakes.encoder import BagOfWordsEncoder
from vy_nexus.routing.classifier import CentroidClassifier, LogisticHead
from vy_nexus.routing.route_model import utterance_matrix
from vy_nexus.routing.routes import LabeledExample, Route, routes_from_labeled
from vy_nexus.training.refit import ensemble, refit_trained_routes, trained_rows

WORDS = {
    "timer": ["set a timer for {n} minutes", "start a {n} minute timer", "timer {n} minutes please"],
    "weather": ["what is the weather in {n}", "will it rain in {n}", "weather forecast for {n}"],
    "translate": ["how do i say {n} in german", "translate {n} to french", "what is {n} in spanish"],
}
PLACES = ["paris", "oslo", "lima", "rome", "cairo", "quito", "bern", "delhi"]


def _examples(start: int, stop: int) -> list[LabeledExample]:
    return [
        LabeledExample(pattern.format(n=PLACES[i % len(PLACES)] if label != "timer" else i), label)
        for label, patterns in WORDS.items()
        for i in range(start, stop)
        for pattern in patterns
    ]


def _head(routes: list[Route], encoder: BagOfWordsEncoder, scale: float) -> dict[str, np.ndarray]:
    """A head as fine-tuning leaves it: ``scale`` times a normalised row per label (here each label's centroid)."""
    vectors, labels = utterance_matrix(routes, encoder)
    centroids = CentroidClassifier.fit(vectors, labels, len(routes)).centroids
    return {"labels": np.asarray([r.name for r in routes]), "weights": centroids * scale}


def test_a_route_the_head_never_saw_gets_its_centroid_at_the_heads_scale() -> None:
    encoder = BagOfWordsEncoder()
    routes = routes_from_labeled(_examples(0, 4))
    head = _head(routes[:2], encoder, 20.0)  # trained on timer and weather only
    vectors, labels = utterance_matrix(routes, encoder)
    rows = trained_rows(routes, vectors, labels, head)
    assert np.allclose(rows[:2], head["weights"])
    assert np.isclose(np.linalg.norm(rows[2]), 20.0, rtol=1e-4)
    assert np.allclose(rows[2] / 20.0, CentroidClassifier.fit(vectors, labels, 3).centroids[2], atol=1e-5)


def test_the_trained_head_is_kept_when_it_is_more_accurate_on_unseen_sentences() -> None:
    encoder = BagOfWordsEncoder()
    train = _examples(0, 6)
    # Not in any route, in words no route utterance uses: only a head that learned them (as fine-tuning does from
    # the encoder's side) routes them right.
    unseen = {"timer": "countdown alarm egg clock", "weather": "umbrella sunny humid", "translate": "lingo dictionary"}
    held_out = [LabeledExample(" ".join(words.split()[i:]), label) for label, words in unseen.items() for i in range(2)]
    routes = routes_from_labeled(train)
    good = _head(routes_from_labeled(held_out), encoder, 20.0)
    model = refit_trained_routes(routes, encoder, held_out, head=good, oos_texts=["bake a cake"], max_in_scope_loss=0.0)
    assert model.report["held_out"] == len(held_out) and model.report["held_out_accuracy_trained"] == 1.0
    assert model.report["held_out_accuracy_refit"] < 1.0 and model.report["head"] == "trained"
    assert np.allclose(model.arrays["weights"], good["weights"]) and not model.arrays["bias"].any()
    assert model.kind == "head" and model.model_id == encoder.model_id
    assert "held_out_oos_recall" in model.report
    # The cut rejects no held-out sentence routed right (a budget of 0).
    logits = model.logits(encoder.encode([e.text for e in held_out]))
    assert (logits.max(axis=1) >= model.rejection_threshold).all()

    rng = np.random.default_rng(0)
    noise = rng.standard_normal(good["weights"].shape).astype(np.float32)
    bad = {"labels": good["labels"], "weights": 20.0 * noise / np.linalg.norm(noise, axis=1, keepdims=True)}
    model = refit_trained_routes(routes, encoder, held_out, head=bad, max_in_scope_loss=0.01)
    assert model.report["head"] == "refit"
    assert model.report["held_out_accuracy_trained"] < model.report["held_out_accuracy_refit"]


def test_held_out_sentences_among_the_utterances_are_left_out_of_the_judged_fit() -> None:
    encoder = BagOfWordsEncoder()
    examples = _examples(0, 8)
    held_out = examples[::4]  # also route utterances, as with the share of --data kept out of fine-tuning
    model = refit_trained_routes(routes_from_labeled(examples), encoder, held_out, max_in_scope_loss=0.01)
    assert model.report["head"] == "refit" and model.report["held_out"] == len(held_out)
    assert model.report["utterances"] == len(examples)  # the kept head is refitted on all of them


def test_without_held_out_sentences_for_these_routes_it_is_routes_fit() -> None:
    encoder = BagOfWordsEncoder()
    routes = routes_from_labeled(_examples(0, 6))
    model = refit_trained_routes(
        routes, encoder, [LabeledExample("hello", "greeting")], head=None, max_in_scope_loss=0.01
    )
    assert "head" not in model.report and model.report["holdout"] == 0.2


def test_the_ensemble_head_is_the_mean_of_both_heads_scaled_logits() -> None:
    rng = np.random.default_rng(1)
    refit = (rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal(4).astype(np.float32))
    trained = (rng.standard_normal((4, 6)).astype(np.float32), np.zeros(4, dtype=np.float32))
    temperatures = {"refit": 2.0, "trained": 0.5}
    x = rng.standard_normal((5, 6)).astype(np.float32)
    combined = LogisticHead(*ensemble(refit, trained, temperatures)).logits(x)
    expected = (LogisticHead(*refit).logits(x) / 2.0 + LogisticHead(*trained).logits(x) / 0.5) / 2
    assert np.allclose(combined, expected, atol=1e-5)
