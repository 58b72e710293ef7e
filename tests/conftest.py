from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from brokers import amqp_or_skip, redis_or_skip

# One BLAS thread per test process, set before anything imports numpy: `make test` already runs a worker per core,
# and OpenBLAS's extra threads spin-wait for a core. Fitting a route head (1,649 x 384, 13 routes) took 0.4-2.5 s of
# CPU with OpenBLAS's default threads on the shared 2 cores, 0.06-0.09 s with one.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# The CLI's consoles (rich) take $COLUMNS as a fixed width when they are created, and a command module loads on its
# first use, often inside a CliRunner.invoke(env={"COLUMNS": ...}). Created here, with no COLUMNS inherited
# (pytest-xdist workers get COLUMNS=80), they follow the COLUMNS of each invocation instead, whichever test runs first.
os.environ.pop("COLUMNS", None)
import vy_nexus.interfaces.cli.common  # noqa: F401
from vy_nexus.config import Settings, load_settings
from vy_nexus.system import VyNexus


def _discover_plugins_once_per_sys_path() -> None:
    """Every system the suite builds (~200 per run) looked for expert plugins: ``importlib.metadata`` read the
    entry points of all ~125 installed distributions each time (6 ms, 11 ms under coverage). Within one test process
    the answer changes only when ``sys.path`` or a directory on it changes (a distribution added or removed: what
    ``FakeSite`` and installs do), so it is kept per ``sys.path`` and the directories' mtimes, and forgotten on
    ``importlib.invalidate_caches()``, which is also what makes importlib.metadata itself look again."""
    import sys

    from vy_nexus.experts import loader

    discover = loader.discover_plugins
    found: dict[tuple[object, ...], list[loader.PluginSpec]] = {}

    class ForgetOnInvalidate:
        """On ``sys.meta_path`` only to hear ``importlib.invalidate_caches()``; finds nothing."""

        @staticmethod
        def find_spec(*_: object) -> None:
            return None

        @staticmethod
        def invalidate_caches() -> None:
            found.clear()

    def mtime_ns(entry: str) -> int | None:
        try:
            return Path(entry or ".").stat().st_mtime_ns
        except OSError:
            return None

    def discover_plugins(group: str = loader.ENTRY_POINT_GROUP) -> list[loader.PluginSpec]:
        key = (group, Path.cwd(), *((entry, mtime_ns(entry)) for entry in sys.path))
        if key not in found:
            found[key] = discover(group)
        return list(found[key])

    sys.meta_path.append(ForgetOnInvalidate)  # type: ignore[arg-type]
    loader.discover_plugins = discover_plugins


_discover_plugins_once_per_sys_path()

WHOLLY_SLOW = "\npytestmark = pytest.mark.slow\n"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A module marked slow as a whole is not even imported when the slow tests are deselected (the default run):
    those modules import the browser driver, the Celery cluster helpers and the schema fuzzer, in every xdist worker,
    under coverage's trace function (which makes every line of any code 3-6x slower, measured or not)."""
    if config.option.markexpr != "not slow" or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix == ".py" and WHOLLY_SLOW in collection_path.read_text(encoding="utf-8"):
        return True
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """What is alive once the tests are collected (modules, classes, test functions: ~250,000 objects per process)
    lives until the end, so the cyclic garbage collector stops walking it: each full collection during the run
    costs ~0.08 s instead of ~0.2 s, GC took ~1.4 s instead of ~2.4 s of CPU per worker, and pytest's closing
    collection 0.05 s instead of 0.3 s. Garbage made from here on is collected (and its warnings raised) as before."""
    import gc

    gc.freeze()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the real home directory or inherits VY_NEXUS_* settings from the shell."""
    for name in list(os.environ):
        if name.startswith("VY_NEXUS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VY_NEXUS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VY_NEXUS_ROUTING__STRATEGY", TEST_STRATEGY)


TEST_STRATEGY = "keyword"
"""Tests route by keyword unless they test routing: the default hybrid strategy loads the sentence encoder in every
system that routes a task (~0.3 s each). tests/integration/test_default_routing.py tests the default end to end."""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home, environ={"VY_NEXUS_ROUTING__STRATEGY": TEST_STRATEGY})


@pytest.fixture
def system(settings: Settings) -> Iterator[VyNexus]:
    with VyNexus(settings) as vy:
        yield vy


class FakeSite:
    """A temporary ``site-packages`` on ``sys.path``: distributions written here are found by importlib.metadata."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self._monkeypatch = monkeypatch
        self._modules: list[str] = []
        root.mkdir(parents=True, exist_ok=True)
        monkeypatch.syspath_prepend(str(root))

    def add_distribution(
        self,
        name: str,
        entry_points: dict[str, str],
        *,
        modules: dict[str, str] | None = None,
        version: str = "0.1.0",
        group: str = "vy_nexus.experts",
    ) -> Path:
        """Write ``modules`` (module name -> source) and a dist-info declaring ``entry_points`` in ``group``."""
        import importlib

        for module, source in (modules or {}).items():
            (self.root / f"{module}.py").write_text(source, encoding="utf-8")
            self._modules.append(module)
        dist_info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = [f"[{group}]", *(f"{ep} = {target}" for ep, target in entry_points.items())]
        (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        importlib.invalidate_caches()
        return dist_info

    def add_package_tree(self, package_dir: Path) -> None:
        """Copy an importable package directory (e.g. a fixture plugin's ``src/<pkg>``) onto the fake site."""
        import shutil

        shutil.copytree(package_dir, self.root / package_dir.name)
        self._modules.append(package_dir.name)

    def forget_modules(self) -> None:
        import sys

        for module in self._modules:
            for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
                del sys.modules[name]


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """A temporary site directory on ``sys.path`` for plugin distributions; its modules are unloaded afterwards."""
    site = FakeSite(tmp_path / "site", monkeypatch)
    yield site
    site.forget_modules()


@pytest.fixture(autouse=True)
def _scripted_embedded_llm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Systems built in default-run tests think with a scripted in-process backend instead of loading the embedded
    GGUF model (fast, deterministic). Tests marked ``slow`` (``make test-slow``, CI) get the real embedded model;
    tests that pass ``VyNexus(llm=...)`` or configure ollama/openai are unaffected."""
    if request.node.get_closest_marker("slow") is not None:
        return
    import vy_nexus.system
    from fakes.llm import ScriptedBackend
    from vy_nexus.reasoning.factory import build_reasoning_core

    def build(settings: Any, *, events: Any = None, backend: Any = None) -> Any:
        if backend is None and settings.provider == "embedded":
            backend = ScriptedBackend("A scripted answer from the test reasoning core.")
        return build_reasoning_core(settings, events=events, backend=backend)

    monkeypatch.setattr(vy_nexus.system, "build_reasoning_core", build)


# Real services on loopback ---------------------------------------------------------------------------------------

POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1:5432 (trust auth), dropped after the test."""
    import uuid

    import sqlalchemy as sa

    try:
        engine = sa.create_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            name = f"vy_test_{uuid.uuid4().hex[:10]}"
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 (install and start postgresql to run this): {exc.orig}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        engine.dispose()


@pytest.fixture
def redis_url() -> str:
    return redis_or_skip()


@pytest.fixture
def amqp_url() -> str:
    return amqp_or_skip()


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once per broker (Redis, RabbitMQ)."""
    return request.getfixturevalue(f"{request.param}_url")  # type: ignore[no-any-return]


# One packaged sentence encoder per test process ----------------------------------------------------------------

_PACKAGED_ENCODERS: dict[tuple[Any, ...], tuple[Any, frozenset[str], Any, int]] = {}
"""Loaded state of the packaged MiniLM (tokenizer, input names, ONNX session, products rewritten), by the options
that shape it. Every system of a routing test would otherwise rewrite the graph and open a session of its own
(~130 loads and ~70 rewrites per suite run, about 6 s of CPU)."""

_ENCODER_OWN_TESTS = {"test_embeddings.py", "test_int8_graph.py"}
"""Modules that test the encoder's own loading and rewriting: they always load for real."""


@pytest.fixture(autouse=True)
def _shared_packaged_encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``OnnxSentenceEncoder`` of the packaged model and tokenizer still loads lazily and per instance, but takes
    the session and tokenizer a previous instance with the same options loaded (both are thread-safe and never
    modified after loading). Any other model or tokenizer file loads for real."""
    if request.node.path.name in _ENCODER_OWN_TESTS:
        return
    from vy_nexus.reasoning import embeddings

    encoder_class = embeddings.OnnxSentenceEncoder
    real_load, real_rewrite = encoder_class.load, encoder_class._rewrite

    def key_of(encoder: Any) -> tuple[Any, ...] | None:
        try:
            packaged = (embeddings.default_model_path(), embeddings.default_tokenizer_path())
        except Exception:
            return None
        if (encoder.model_path, encoder.tokenizer_path) != packaged:
            return None
        return (*packaged, encoder.max_length, encoder.threads, encoder.int8_matmul)

    def load(self: Any) -> None:
        key = key_of(self)
        shared = _PACKAGED_ENCODERS.get(key) if key is not None else None
        if shared is None:
            real_load(self)
            if key is not None and self._session is not None:
                _PACKAGED_ENCODERS[key] = (self._tokenizer, self._input_names, self._session, self._rewrite())
            return
        with self._lock:
            if self._session is None:
                self._tokenizer, self._input_names, self._session, self._rewritten = shared
                self._graph = None

    def rewrite(self: Any) -> int:
        key = key_of(self)
        shared = _PACKAGED_ENCODERS.get(key) if key is not None else None
        if shared is not None and self._rewritten is None:
            self._rewritten = shared[3]
        return int(real_rewrite(self))

    monkeypatch.setattr(encoder_class, "load", load)
    monkeypatch.setattr(encoder_class, "_rewrite", rewrite)
