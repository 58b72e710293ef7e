"""A cluster on loopback: `vy-nexus worker` processes over a real Redis or RabbitMQ, one PostgreSQL store.

Each test skips, naming what to install, when a service does not answer (Redis on 6379, RabbitMQ on 5672
guest/guest, PostgreSQL on 5432; the broker-outage test starts its own redis-server). Queue names are unique per
test, so leftovers of another run never reach these workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from brokers import answers
from vy_nexus.config import load_settings
from vy_nexus.errors import TaskCancelledError
from vy_nexus.execution.celery_executor import CeleryExecutor
from vy_nexus.execution.executor import ExpertCall
from vy_nexus.store.calls import CallLedger
from vy_nexus.system import VyNexus
from vy_nexus.tasks import AggregatedResult, Task

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cluster" / "cluster_experts.py"
CLI = Path(sys.executable).with_name("vy-nexus")
EXPERTS = ("alpha", "beta", "sleepy", "doomed", "flaky")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Worker:
    """`vy-nexus worker` in its own process group; its output collected line by line."""

    def __init__(self, home: Path, queues: list[str], concurrency: int = 1) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [str(CLI), "--home", str(home), "worker", "--queues", ",".join(queues), "-c", str(concurrency)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, "COLUMNS": "300"},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60.0, count: int = 1) -> None:
        try:
            wait_until(lambda: self.output.count(text) >= count, timeout, f"{text!r} from the worker")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; worker output:\n{self.output}") from None

    def stop(self) -> None:
        """A warm shutdown (SIGTERM to the main process: its pool processes finish and write their journal), then
        SIGKILL to whatever of the group is left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=5)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


class Cluster:
    """A home (config, experts directory) shared by the in-test server and the worker processes."""

    def __init__(self, root: Path, broker_url: str, store_url: str, **executor: Any) -> None:
        self.home = root / "home"
        self.marks = root / "marks"
        self.marks.mkdir(parents=True)
        (self.home / "experts").mkdir(parents=True)
        shutil.copy(FIXTURE, self.home / "experts" / FIXTURE.name)
        run = uuid.uuid4().hex[:8]
        self.queues = {expert: f"vy-test-{run}.{expert}" for expert in EXPERTS}
        config = {
            "executor": {"kind": "celery", "broker_url": broker_url, "queues": self.queues, **executor},
            "store": {"url": store_url, "flush_interval_seconds": 0.02},
        }
        (self.home / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.workers: list[Worker] = []
        self.store_url = store_url

    def add_expert(self, expert_id: str, source: str) -> None:
        """Put the expert ``source`` in the experts directory, on a queue of this cluster's run."""
        (self.home / "experts" / f"{expert_id}.py").write_text(source, encoding="utf-8")
        self.queues[expert_id] = f"{self.queues['alpha'].rsplit('.', 1)[0]}.{expert_id}"
        config = self.home / "config.yaml"
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        data["executor"]["queues"] = self.queues
        config.write_text(yaml.safe_dump(data), encoding="utf-8")

    def machine(self, name: str) -> Path:
        """Another home with the same config and experts: a worker machine that shares nothing but the broker and
        the database with the server."""
        home = self.home.parent / name
        shutil.copytree(self.home / "experts", home / "experts")
        shutil.copy(self.home / "config.yaml", home / "config.yaml")
        return home

    def worker(self, *experts: str, concurrency: int = 1, ready: bool = True, home: Path | None = None) -> Worker:
        worker = Worker(home or self.home, [self.queues[e] for e in experts], concurrency)
        self.workers.append(worker)
        if ready:
            worker.wait_for(" ready.")
        return worker

    def task(self, *experts: str, **extra: Any) -> Task:
        return Task(
            description="cluster work", input={"marks": str(self.marks), **extra}, context={"experts": list(experts)}
        )

    def runs(self, expert: str) -> list[int]:
        path = self.marks / expert
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def submit(
        self, task: Task, during: Callable[[], None] | None = None, *, observe: bool = False
    ) -> AggregatedResult:
        """Run ``task`` on a server built from the home; ``during`` runs in a thread while the task is in flight."""

        async def scenario() -> AggregatedResult:
            async with VyNexus(load_settings(self.home), observe=observe) as system:
                job = asyncio.ensure_future(system.submit(task))
                if during is not None:
                    await asyncio.to_thread(during)
                result = await asyncio.wait_for(job, 90)
                assert system.get_task(task.id).state.value == ("succeeded" if result.ok else "failed")
                return result

        return asyncio.run(scenario())

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()


@pytest.fixture
def cluster_factory(tmp_path: Path, pg_url: str) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(broker_url: str, **executor: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"c{len(made)}", broker_url, pg_url, **executor)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


def test_a_task_fans_out_to_two_experts_on_two_workers_and_is_aggregated(
    cluster_factory: Callable[..., Cluster], broker_url: str
) -> None:
    cluster = cluster_factory(broker_url, expert_timeout_seconds=1.0)
    unanswered = cluster.submit(cluster.task("sleepy", sleep=0))  # no worker consumes the sleepy queue
    assert unanswered.results[0].error_kind == "timeout"
    assert f"queue {cluster.queues['sleepy']} (is a worker consuming it?)" in (unanswered.results[0].error or "")
    cluster.worker("alpha")
    cluster.worker("beta")
    server = VyNexus(load_settings(cluster.home), observe=False)
    waiting = ExpertCall(cluster.task("sleepy", sleep=0), "sleepy", 60.0)
    assert isinstance(server.executor, CeleryExecutor)
    server.executor._publish(waiting, cluster.queues["sleepy"])  # a call that waits (until it expires)
    status = server.status()["executor"]
    assert sorted(status["workers"].values()) == [[cluster.queues["alpha"]], [cluster.queues["beta"]]]
    # The waiting call counts; on Redis so does the expired one from above (RabbitMQ has dropped it already).
    assert status["queues"][cluster.queues["sleepy"]] >= 1 and status["queues"][cluster.queues["alpha"]] == 0
    result = cluster.submit(cluster.task("alpha", "beta"))
    assert result.ok and sorted(result.experts) == ["alpha", "beta"]
    assert result.method == "confidence_weighted"
    by_expert = {r.expert_id: r for r in result.results}
    assert all(r.ok for r in by_expert.values()), result.results
    alpha_pid, beta_pid = cluster.runs("alpha"), cluster.runs("beta")
    assert len(alpha_pid) == 1 and len(beta_pid) == 1 and alpha_pid != beta_pid  # one run each, two processes
    assert by_expert["alpha"].output == {"expert": "alpha", "pid": alpha_pid[0]}
    assert by_expert["alpha"].metadata["worker"] != by_expert["beta"].metadata["worker"]
    cluster.stop()  # each pool process writes its journal on the way out
    lines = (cluster.home / "research_logs" / "structured.jsonl").read_text(encoding="utf-8").splitlines()
    journal = [json.loads(line) for line in lines]
    calls = {entry["expert_id"]: entry for entry in journal if entry["kind"] == "worker.call"}
    assert calls["alpha"]["metadata"]["worker"] == by_expert["alpha"].metadata["worker"]  # one home, one journal
    assert calls["beta"]["metadata"]["worker"] == by_expert["beta"].metadata["worker"]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_metrics_and_journal_of_workers_on_other_machines_meet_in_postgresql(
    cluster_factory: Callable[..., Cluster], redis_url: str
) -> None:
    cluster = cluster_factory(redis_url)
    cluster.worker("alpha", home=cluster.machine("node-a"))
    cluster.worker("beta", home=cluster.machine("node-b"))
    result = cluster.submit(cluster.task("alpha", "beta"), observe=True)
    assert result.ok, result.results
    workers = {r.expert_id: r.metadata["worker"] for r in result.results}
    assert len(set(workers.values())) == 2
    cluster.stop()  # each pool process writes its observers' last batch (a system sample among it) on the way out

    shown = cli(cluster.home, "metrics", "report", "--json")
    assert shown.returncode == 0, shown.stderr
    processes = {entry["process"]: entry for entry in json.loads(shown.stdout)["processes"]}
    for worker in workers.values():
        assert processes[worker]["expert_runs"] == 1  # recorded by the server, which got the result
        assert processes[worker]["samples"] >= 1  # recorded by the worker itself, on its own machine
    table = cli(cluster.home, "metrics", "report")
    assert all(worker in table.stdout for worker in workers.values()), table.stdout

    logs = cli(cluster.home, "logs", "--component", "worker", "--json")
    assert logs.returncode == 0, logs.stderr
    calls = {entry["expert_id"]: entry for entry in map(json.loads, logs.stdout.splitlines())}
    assert {expert: entry["process"] for expert, entry in calls.items()} == workers
    assert all(entry["kind"] == "worker.call" and entry["task_id"] == result.task_id for entry in calls.values())
    server_file = cluster.home / "research_logs" / "structured.jsonl"  # the server's machine: its own lines only
    assert '"worker.call"' not in server_file.read_text(encoding="utf-8")


def test_vy_nexus_stop_ends_the_workers_of_its_home_warmly_and_no_other(
    cluster_factory: Callable[..., Cluster], redis_url: str
) -> None:
    cluster = cluster_factory(redis_url)
    here = cluster.worker("alpha")
    elsewhere = cluster.worker("beta", home=cluster.machine("node-b"))
    assert cluster.submit(cluster.task("alpha", "beta")).ok
    stopped = cli(cluster.home, "stop", "--reason", "maintenance", "--yes")
    assert stopped.returncode == 0, stopped.stderr
    assert here.process.wait(timeout=30) == 0
    assert "Warm shutdown" in here.output
    time.sleep(2 * load_settings(cluster.home).safety.stop_poll_seconds)
    assert elsewhere.process.poll() is None  # another machine's home has no stop file


def test_a_worker_killed_mid_task_gets_the_call_again_and_it_completes_once(
    cluster_factory: Callable[..., Cluster], redis_url: str
) -> None:
    cluster = cluster_factory(redis_url)
    worker = cluster.worker("sleepy")
    task = cluster.task("sleepy", sleep=2.0)
    ledger = CallLedger(cluster.store_url).open()

    def kill_the_pool_process_running_it() -> None:
        pid = wait_until(lambda: cluster.runs("sleepy"), 30, "the first run")[0]
        os.kill(pid, signal.SIGKILL)

    try:
        result = cluster.submit(task, during=kill_the_pool_process_running_it)
        row = ledger.get(task.id, "sleepy")
    finally:
        ledger.close()
    assert result.ok, result.results
    first, second = cluster.runs("sleepy")  # run twice (the first killed), answered once
    assert first != second and result.results[0].output == {"slept": 2.0, "pid": second}
    assert result.results[0].metadata["deliveries"] == 2
    assert row.state == "done" and row.deliveries == 2
    assert "WorkerLostError" in worker.output or "SIGKILL" in worker.output


def test_a_call_that_keeps_killing_its_worker_is_delivered_a_bounded_number_of_times(
    cluster_factory: Callable[..., Cluster], amqp_url: str
) -> None:
    cluster = cluster_factory(amqp_url, max_redeliveries=1)
    cluster.worker("doomed", "alpha")
    result = cluster.submit(cluster.task("doomed", "alpha"))
    doomed = next(r for r in result.results if r.expert_id == "doomed")
    assert doomed.error_kind == "worker_lost" and "lost 2 times" in (doomed.error or "")
    assert len(cluster.runs("doomed")) == 2  # the first delivery and one redelivery, then no more
    assert result.ok and result.experts == ["alpha"]  # aggregation ran with the expert that answered


def test_retryable_failures_are_retried_by_celery_with_backoff(
    cluster_factory: Callable[..., Cluster], redis_url: str
) -> None:
    cluster = cluster_factory(redis_url, max_retries=2, backoff_base_seconds=0.1)
    cluster.worker("flaky")
    result = cluster.submit(cluster.task("flaky"))
    assert result.ok and result.output == "third time lucky"
    assert result.results[0].attempts == 3 and len(cluster.runs("flaky")) == 3


def test_a_cancelled_task_revokes_its_queued_call(cluster_factory: Callable[..., Cluster], redis_url: str) -> None:
    cluster = cluster_factory(redis_url)
    cluster.worker("sleepy")  # one pool process: the second call waits behind the first
    busy, cancelled = cluster.task("sleepy", sleep=3.0), cluster.task("sleepy", sleep=0.0)

    async def scenario() -> AggregatedResult:
        async with VyNexus(load_settings(cluster.home), observe=False) as system:
            first = asyncio.ensure_future(system.submit(busy))
            await asyncio.to_thread(wait_until, lambda: cluster.runs("sleepy"), 30, "the first call to start")
            second = asyncio.ensure_future(system.submit(cancelled))
            await asyncio.sleep(0.5)  # published and waiting
            system.cancel(cancelled.id)
            with pytest.raises(TaskCancelledError):
                await second
            return await asyncio.wait_for(first, 60)

    assert asyncio.run(scenario()).ok
    time.sleep(1.0)  # the worker is free again: a call that was not revoked would run now
    assert len(cluster.runs("sleepy")) == 1
    ledger = CallLedger(cluster.store_url).open()
    try:
        row = ledger.get(cancelled.id, "sleepy")  # finished as cancelled by the server, never claimed by a worker
        assert row.deliveries == 0 and row.worker is None and '"error_kind":"cancelled"' in row.result
    finally:
        ledger.close()


class PrivateRedis:
    """A redis-server of this test's own on ``port``, with a password; stopped and started at will."""

    def __init__(self, root: Path, port: int, password: str) -> None:
        self.root, self.port, self.password = root, port, password
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", self.password]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.root)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: answers(self.port), 20, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def test_broker_down_gives_a_clear_error_and_nothing_is_lost_once_it_returns(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH (install redis-server to run this)")
    port = free_port()
    redis = PrivateRedis(tmp_path, port, "s3cret")
    cluster = cluster_factory(f"redis://:s3cret@127.0.0.1:{port}/0")
    try:
        worker = cluster.worker("alpha", ready=False)  # the broker is not there yet
        worker.wait_for(f"cannot reach the broker redis://:**@127.0.0.1:{port}/0")
        assert "s3cret" not in worker.output
        redis.start()
        worker.wait_for(" ready.")

        def the_broker_returns() -> None:
            time.sleep(2.0)  # meanwhile the task is published into the outage: the server keeps trying
            redis.start()

        redis.stop()
        result = cluster.submit(cluster.task("alpha"), during=the_broker_returns)
        assert result.ok, result.results
        assert len(cluster.runs("alpha")) == 1
        worker.wait_for(f"Connected to redis://:**@127.0.0.1:{port}/0", count=2)  # the worker reconnected
    finally:
        cluster.stop()
        redis.stop()
