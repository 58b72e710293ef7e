"""The route model of a trained encoder (training/refit.py): which head it keeps, and that it is calibrated on
sentences held out of every fit. No torch: a trained head is plain arrays."""

from __future__ import annotations

import numpy as np

from fakes.encoder import BagOfWordsEncoder
from vy_nexus.routing.classifier import CentroidClassifier, LogisticHead
from vy_nexus.routing.route_model import utterance_matrix
from vy_nexus.routing.routes import LabeledExample, Route, routes_from_labeled
from vy_nexus.training.refit import choose_head, ensemble, recall_cut, refit_trained_routes, trained_rows

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


def test_a_trained_head_better_on_unseen_sentences_is_kept_alone_or_in_the_ensemble() -> None:
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
    assert model.report["held_out_accuracy_refit"] < 1.0 and model.report["head"] == "ensemble"
    assert model.report["held_out_accuracy_ensemble"] == 1.0
    assert model.kind == "head" and model.model_id == encoder.model_id
    forced = refit_trained_routes(
        routes, encoder, held_out, head=good, max_in_scope_loss=0.0, choice="trained"
    )  # the trained head as it is
    assert np.allclose(forced.arrays["weights"], good["weights"]) and not forced.arrays["bias"].any()
    assert "held_out_oos_recall" in model.report
    # The cut rejects no held-out sentence routed right (a budget of 0).
    logits = model.logits(encoder.encode([e.text for e in held_out]))
    assert (logits.max(axis=1) >= model.rejection_threshold).all()

    rng = np.random.default_rng(0)
    noise = rng.standard_normal(good["weights"].shape).astype(np.float32)
    bad = {"labels": good["labels"], "weights": 20.0 * noise / np.linalg.norm(noise, axis=1, keepdims=True)}
    model = refit_trained_routes(routes, encoder, held_out, head=bad, max_in_scope_loss=0.01)
    assert model.report["head"] != "trained"
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


def test_one_head_alone_must_beat_the_ensemble_by_half_a_point() -> None:
    assert choose_head({"refit": 0.98}) == "refit"  # no trained head: nothing to combine
    assert choose_head({"refit": 0.981, "trained": 0.982, "ensemble": 0.978}) == "ensemble"
    assert choose_head({"refit": 0.97, "trained": 0.986, "ensemble": 0.98}) == "trained"
    assert choose_head({"refit": 0.99, "trained": 0.96, "ensemble": 0.984}) == "refit"


def test_the_cut_is_lowered_to_the_out_of_scope_recall_asked_for() -> None:
    scores = np.asarray([5.0, 1.0, 3.0, 2.0, 4.0])
    cut = recall_cut(scores, 0.6)  # the 3 lowest of 5 rejected, not the 4th
    assert (scores < cut).sum() == 3 and cut < 4.0
    assert (scores < recall_cut(scores, 1.0)).all() and (scores < recall_cut(scores, 0.01)).sum() == 1

    encoder = BagOfWordsEncoder()
    examples = _examples(0, 8)
    routes = routes_from_labeled(examples)
    held_out = examples[::4]
    oos = ["bake a cake", "who won the match", "paris cake", "timer cake recipe", "weather cake"]
    kept = refit_trained_routes(routes, encoder, held_out, oos_texts=oos, max_in_scope_loss=0.5)
    lowered = refit_trained_routes(routes, encoder, held_out, oos_texts=oos, max_in_scope_loss=0.5, min_oos_recall=0.2)
    assert lowered.rejection_threshold < kept.rejection_threshold and lowered.report["cut"] == "out-of-scope recall"
    assert lowered.report["held_out_oos_recall"] == 0.2 < kept.report["held_out_oos_recall"]
    assert lowered.report["held_out_in_scope_cost"] <= kept.report["held_out_in_scope_cost"]
    # Never above the in-scope budget's cut: asking for more recall than the budget buys changes nothing.
    hard = [*oos, examples[1].text]  # scores as high as an in-scope sentence
    strict = refit_trained_routes(routes, encoder, held_out, oos_texts=hard, max_in_scope_loss=0.0, min_oos_recall=1.0)
    assert strict.report["cut"] == "in-scope budget" and strict.report["held_out_oos_recall"] < 1.0


def test_with_seen_sentences_the_ensemble_is_kept_and_the_cut_is_the_recall_asked_for() -> None:
    encoder = BagOfWordsEncoder()
    examples = _examples(0, 8)
    routes = routes_from_labeled(examples)
    seen = examples[::4]  # the encoder trained on these too (holdout 0)
    bad_head = _head(routes, encoder, 20.0)
    noise = np.random.default_rng(2).standard_normal(bad_head["weights"].shape).astype(np.float32)
    bad_head["weights"] = 20.0 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    oos = ["bake a cake", "who won the match", "paris cake", "timer cake recipe", "weather cake"]
    hard = [*oos, examples[1].text]  # one scores as high as an in-scope sentence
    options = {"oos_texts": hard, "max_in_scope_loss": 0.0, "min_oos_recall": 1.0}
    contest = refit_trained_routes(routes, encoder, seen, head=bad_head, **options)  # type: ignore[arg-type]
    model = refit_trained_routes(routes, encoder, seen, head=bad_head, held_out_seen=True, **options)  # type: ignore[arg-type]
    assert model.report["head"] == "ensemble"
    # The budget is not applied: the cut rejects every out-of-scope example, as asked, even the in-scope-looking one.
    assert contest.report["cut"] == "in-scope budget" and model.report["cut"] == "out-of-scope recall"
    assert model.report["held_out_oos_recall"] == 1.0
    assert model.report["held_out_source"].startswith("train sentences the encoder trained on")
    without_oos = refit_trained_routes(routes, encoder, seen, head=bad_head, max_in_scope_loss=0.0, held_out_seen=True)
    assert "cut" not in without_oos.report and without_oos.report["head"] == "ensemble"
