"""Reading and writing a large routes file: CLINC150's 150 intents with their 15,000 training utterances.

Every command that routes semantically reads the routes file, and `routes fit` writes it. Prints the seconds to load
and save it with vy-nexus's reader (libyaml when PyYAML has it) against PyYAML's pure-Python loader and dumper, and
the ratio, measured in one run (best of ``--rounds``).

    python benchmarks/routes_file.py [--data ../shared/data/clinc150/train.jsonl] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import yaml

from vy_nexus.routing.routes import Route, load_routes, save_routes

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150" / "train.jsonl"


def best_of(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labeled JSON Lines (text, intent)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"no data at {args.data}: pass --data FILE (CLINC150 train, from ../shared/data)")
    by_intent: defaultdict[str, list[str]] = defaultdict(list)
    for line in args.data.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_intent[row["intent"]].append(row["text"])
    routes = [Route(name=name, utterances=tuple(texts), target="research") for name, texts in by_intent.items()]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "routes.yaml"
        save = best_of(args.rounds, lambda: save_routes(path, routes))
        text = path.read_text(encoding="utf-8")
        load = best_of(args.rounds, lambda: load_routes(path))
        payload = {"routes": [route.as_dict() for route in routes]}
        pure_save = best_of(
            args.rounds, lambda: yaml.dump(payload, Dumper=yaml.SafeDumper, sort_keys=False, allow_unicode=True)
        )
        pure_load = best_of(args.rounds, lambda: yaml.load(text, Loader=yaml.SafeLoader))
    utterances = sum(len(route.utterances) for route in routes)
    print(f"routes file: {len(routes)} routes, {utterances:,} utterances, {len(text) / 1e6:.2f} MB")
    print(f"load: {load:.3f} s   (pure-Python PyYAML {pure_load:.3f} s, {pure_load / load:.1f}x faster)")
    print(f"save: {save:.3f} s   (pure-Python PyYAML {pure_save:.3f} s, {pure_save / save:.1f}x faster)")


if __name__ == "__main__":
    main()
