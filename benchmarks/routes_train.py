"""Route training benchmark: CLINC150 before and after fine-tuning the encoder (`vy-nexus routes train`).

Run:  .venv/bin/python benchmarks/routes_train.py [--clinc DIR] [--epochs 3] [--threads 1] [--work DIR]
                 [--learning-rate 1e-4] [--head-learning-rate 1e-3] [--layer-decay 0.9] [--label-smoothing 0.1]
                 [--holdout 0.1] [--seed 0] [--keep-checkpoints]
      (needs the train extra: `make setup-train`; the defaults are `routes train`'s; 3 epochs take about 25 minutes
      on 2 cores, more when shared: pass --threads 1 on busy cores. A run's checkpoints are kept under --work until
      it finishes (for good with --keep-checkpoints), so an interrupted, separately trained or finished run with the
      same data and options resumes there: with a finished one only the stages after training run again.)

Prints, all measured in this one run:
1. before: the packaged int8 MiniLM with a fitted head (what `routes fit` gives): 150-intent in-scope accuracy
   (rejected in-scope queries count as wrong), closed-set accuracy and out-of-scope recall on CLINC150 val;
2. the fine-tuning itself: minutes per epoch, the best epoch (chosen on 10% of each intent held out of train, so val
   stays unseen; with --holdout 0 nothing is held out and the last epoch is kept), the int8-vs-fp32 cosine on
   held-out sentences and whether int8 passed the floor;
3. after: the same metrics with the trained encoder, int8 and fp32, each with the route model `routes train`
   fits (the trained head, a refit or their ensemble, chosen and calibrated on the held-out train utterances the
   encoder never saw, the cut lowered to 70% of oos_train; with --holdout 0 the ensemble weighted on 10% of train,
   the cut at 70% of oos_train), and per-query latency (p50/p95, one query at a time,
   embedding included), with the ratios to before and int8/fp32; for comparison, each head alone, the refit with
   the whole in-scope budget's cut, and the first refit (logistic regression calibrated on train utterances the
   encoder trained on);
4. the trained int8 encoder at other out-of-scope cuts (`--max-in-scope-loss`, `--min-oos-recall`): the
   accuracy/recall trade-off.

Data: CLINC150 from ../shared/data/clinc150 (train, val, oos_train, oos_val; CC BY 3.0, Clinc, Inc. and Larson et
al., EMNLP 2019). When it is not there, the script says so and exits.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from vy_nexus.config import load_settings
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.reasoning.embeddings import OnnxSentenceEncoder, default_model_path, default_tokenizer_path
from vy_nexus.routing.embedding_cache import CachedEncoder
from vy_nexus.routing.evaluate import EvaluationReport, evaluate
from vy_nexus.routing.route_model import RouteModel, fit_route_model
from vy_nexus.routing.routes import LabeledExample, Route, read_labeled, routes_from_labeled
from vy_nexus.routing.semantic import SemanticRouter
from vy_nexus.training.data import TrainOptions
from vy_nexus.training.pipeline import train_routes
from vy_nexus.training.progress import QuietProgress
from vy_nexus.training.refit import refit_trained_routes

DEFAULT_CLINC = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150"
LATENCY_SAMPLE = 300
CUTS = (0.02, 0.01, 0.005, 0.0025)
RECALLS = (0.6, 0.7, 0.8)


class PrintedProgress(QuietProgress):
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.total = 0

    def begin(self, total_steps: int, done_steps: int) -> None:
        self.total = total_steps
        print(f"  training: {total_steps} steps (resuming at {done_steps})", flush=True)

    def step(self, epoch: int, loss: float, accuracy: float) -> None:
        return None

    def evaluated(self, epoch: int, accuracy: float, best: bool) -> None:
        elapsed = (time.perf_counter() - self.started) / 60
        score = "nothing held out" if math.isnan(accuracy) else f"held-out accuracy {accuracy:.2%}"
        mark = " (best)" if best and not math.isnan(accuracy) else ""
        print(f"  epoch {epoch + 1}: {score}{mark}, {elapsed:.1f} min")

    def stage(self, message: str) -> None:
        print(f"  {message} ({(time.perf_counter() - self.started) / 60:.1f} min)", flush=True)


def measure(
    name: str, routes: list[Route], encoder: CachedEncoder, model: RouteModel, val: list[LabeledExample]
) -> EvaluationReport:
    report = evaluate(SemanticRouter(routes, encoder, model), val, latency_sample=LATENCY_SAMPLE)
    latency = report.latency_ms
    print(
        f"  {name:<22} accuracy {report.accuracy:6.2%}  closed-set {report.closed_set_accuracy:6.2%}"
        f"  oos recall {report.oos_recall or 0:6.1%}  latency p50 {latency['p50']:.2f} ms  p95 {latency['p95']:.2f} ms",
        flush=True,
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clinc", type=Path, default=DEFAULT_CLINC, help="CLINC150 directory")
    parser.add_argument("--epochs", type=int, default=TrainOptions().epochs)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on busy shared cores)")
    parser.add_argument("--work", type=Path, default=None, help="home to train in (default: a temporary one)")
    defaults = TrainOptions()
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="encoder (top layer)")
    parser.add_argument("--head-learning-rate", type=float, default=defaults.head_learning_rate)
    parser.add_argument("--layer-decay", type=float, default=defaults.layer_decay)
    parser.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing)
    parser.add_argument(
        "--holdout", type=float, default=defaults.holdout, help="share of each intent held out of training (0: none)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep the finished run's checkpoints under --work: the same command again skips the training",
    )
    args = parser.parse_args()
    if not (args.clinc / "train.jsonl").is_file():
        print(f"CLINC150 not found at {args.clinc}: nothing measured (pass --clinc DIR; the team's copy is in")
        print("../shared/data/clinc150, which is not part of the repository)")
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="vy-routes-train-"))
    print(f"CLINC150 from {args.clinc}; work directory {work}; {os.cpu_count()} cores")
    train = read_labeled(args.clinc / "train.jsonl")
    oos_train = read_labeled(args.clinc / "oos_train.jsonl")
    val = read_labeled(args.clinc / "val.jsonl") + read_labeled(args.clinc / "oos_val.jsonl")
    routes = routes_from_labeled(train)
    oos = [e.text for e in oos_train]
    cache = work / "cache" / "embeddings"

    print("1. before: packaged int8 MiniLM (frozen) + fitted head")
    base = CachedEncoder(OnnxSentenceEncoder(default_model_path(), default_tokenizer_path()), cache)
    before = measure("frozen int8", routes, base, fit_route_model(routes, base, oos_texts=oos), val)

    print(f"2. fine-tuning all-MiniLM-L6-v2 for {args.epochs} epoch(s) on CPU")
    settings = load_settings(work, environ={})
    started = time.perf_counter()
    outcome = train_routes(
        settings,
        ExpertRegistry(),
        train,
        oos_examples=oos_train,
        options=TrainOptions(
            epochs=args.epochs,
            threads=args.threads,
            learning_rate=args.learning_rate,
            head_learning_rate=args.head_learning_rate,
            layer_decay=args.layer_decay,
            label_smoothing=args.label_smoothing,
            holdout=args.holdout,
            seed=args.seed,
        ),
        keep_fp32=True,
        keep_checkpoints=args.keep_checkpoints,
        progress=PrintedProgress(),
    )
    metrics = outcome.manifest["metrics"]
    check = metrics["quantisation"]
    kept = "last epoch (nothing held out)" if outcome.held_out_seen else f"best epoch {metrics['best_epoch'] + 1}"
    print(
        f"  {metrics['minutes_per_epoch']:.2f} min per epoch; {kept};"
        f" whole run {(time.perf_counter() - started) / 60:.1f} min"
    )
    print(
        f"  int8 vs fp32 cosine on {check['sentences']} held-out sentences: mean {check['mean_cosine']:.4f},"
        f" min {check['min_cosine']:.4f} (floor {check['floor']}: {'accepted' if check['accepted'] else 'refused'})"
    )

    print("3. after: trained encoder; route model as `routes train` fits it (trained head, refit or their ensemble,")
    print("   calibrated on the held-out train utterances the encoder never saw; cut lowered to the least that rejects")
    print(f"   {defaults.min_oos_recall:.0%} of oos_train)")

    def fitted(
        encoder: CachedEncoder,
        loss: float = defaults.max_in_scope_loss,
        recall: float | None = defaults.min_oos_recall,
        choice: str | None = None,
    ) -> RouteModel:
        return refit_trained_routes(
            routes, encoder, outcome.held_out, head=outcome.head, oos_texts=oos, max_in_scope_loss=loss,
            min_oos_recall=recall, choice=choice, held_out_seen=outcome.held_out_seen,
        )  # fmt: skip

    tokenizer = outcome.directory / "tokenizer.json"
    chosen_file = outcome.directory / "model.onnx"  # int8 when it passed the floor, else fp32
    files = {"trained fp32": outcome.directory / "model.fp32.onnx", "trained int8": chosen_file}
    if not outcome.quantised:
        files = {"trained fp32": chosen_file}
    after: dict[str, EvaluationReport] = {}
    for name, path in files.items():
        encoder = CachedEncoder(OnnxSentenceEncoder(path, tokenizer), cache)
        model = fitted(encoder)
        report = model.report
        print(
            f"  {name}: held-out accuracy trained {report.get('held_out_accuracy_trained', float('nan')):.2%},"
            f" refit {report['held_out_accuracy_refit']:.2%}, ensemble"
            f" {report.get('held_out_accuracy_ensemble', float('nan')):.2%}: routes with the {report['head']} head;"
            f" cut set by the {report.get('cut', 'in-scope budget')} (held-out cost"
            f" {report['held_out_in_scope_cost']:.2%}, oos_train recall {report.get('held_out_oos_recall', 0):.0%})"
        )
        after[name] = measure(name, routes, encoder, model, val)
        if name == "trained int8" or not outcome.quantised:
            for head in ("refit", "trained", "ensemble"):
                measure(f"  ({head} head)", routes, encoder, fitted(encoder, choice=head), val)
            if not outcome.held_out_seen:  # a budget on sentences the encoder trained on prices nothing
                measure("  (refit, budget cut)", routes, encoder, fitted(encoder, recall=None, choice="refit"), val)
            # The first pipeline: a logistic-regression refit calibrated on train utterances the encoder trained on.
            previous = fit_route_model(routes, encoder, oos_texts=oos)
            measure("  (LR, cut on seen)", routes, encoder, previous, val)
    best_name = "trained int8" if "trained int8" in after else "trained fp32"
    best = after[best_name]
    print(
        f"  {best_name} / before: accuracy {best.accuracy / before.accuracy:.4f}x"
        f" (+{(best.accuracy - before.accuracy) * 100:.2f} points),"
        f" closed-set +{(best.closed_set_accuracy - before.closed_set_accuracy) * 100:.2f} points,"
        f" latency p50 {best.latency_ms['p50'] / before.latency_ms['p50']:.2f}x"
    )
    if len(after) == 2:
        ratio = after["trained int8"].latency_ms["p50"] / after["trained fp32"].latency_ms["p50"]
        print(f"  latency int8 / fp32 (p50): {ratio:.2f}")

    print("4. trained encoder at other out-of-scope cuts: in-scope budget on held-out train utterances alone, and")
    print("   lowered to a share of oos_train")
    chosen = CachedEncoder(OnnxSentenceEncoder(chosen_file, tokenizer), cache)
    budgets = [] if outcome.held_out_seen else [(loss, None) for loss in CUTS]
    settings_tried = budgets + [(defaults.max_in_scope_loss, r) for r in RECALLS]
    for loss, recall in settings_tried:
        model = fitted(chosen, loss, recall)
        report = evaluate(SemanticRouter(routes, chosen, model), val, latency_sample=0)
        verdict = "meets" if report.accuracy >= 0.975 and (report.oos_recall or 0) >= 0.60 else "misses"
        label = f"budget {loss}" + (f", oos_train recall {recall}" if recall is not None else "")
        print(
            f"  {label:<32} accuracy {report.accuracy:6.2%}  oos recall {report.oos_recall or 0:6.1%}"
            f"  ({verdict} the target: >= 97.5% with >= 60% recall)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
