"""Sweeps on Ray: many episodes, or many training seeds, on this machine's cores or on a cluster.

``--ray`` without an address starts Ray on this machine with all its cores; with one (``auto``,
``HOST:PORT`` or ``ray://HOST:PORT``) the work runs on that cluster. Nothing assumes a shared
filesystem: the models a task needs travel through Ray's object store as file contents
(:func:`pack`), the config as a pickled dataclass, and results come back to the caller, who
writes every file.

* **Same results.** A task builds its own environment and runs its episodes from their seeds with
  one torch thread, as the single-process run does: results are identical, episode by episode.
* **Failures.** A task whose worker dies is retried once (Ray's ``max_retries``); one that still
  fails is reported with its episode (or training) seeds, never dropped.
* **Ctrl-C.** :meth:`RaySession.as_completed` stops at once; the caller keeps what finished and
  pending tasks are cancelled.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bresa_control.app.controllers import build, model_files
from bresa_control.tasks import DEFAULT_TASK

LOCAL = "local"  # --ray given without an address: start Ray on this machine
EPISODES_PER_TASK = 10  # one environment is built per task; ~1 s of set-up against ~10 s of episodes
RETRIES = 1  # a task whose worker dies runs once more
# Test hook, unset in normal use: how the tests make workers die. "always": every attempt of every
# task kills its worker; "once:DIR": a task's first attempt leaves a mark in DIR and kills its
# worker, the retry finds the mark and runs.
CRASH_ENV = "BRESA_SWEEP_CRASH"
# Ray Client (ray://) connections tried before giving up: Ray 2.60's client proxy can lose the
# server it forks for a new connection (ray-project/ray#63202, open); nothing has run by then.
CLIENT_CONNECT_ATTEMPTS = 3

log = logging.getLogger(__name__)


class RayUnavailable(RuntimeError):
    """Ray could not be started or reached at the address given."""


def pack(folder: str | Path | None, names: Sequence[str]) -> dict[str, bytes]:
    """The contents of ``names`` (paths relative to ``folder``) that exist, by relative path."""
    if folder is None:
        return {}
    root = Path(folder)
    return {name: (root / name).read_bytes() for name in names if (root / name).is_file()}


def unpack(files: dict[str, bytes], folder: Path) -> Path:
    """Write packed files under ``folder``; returns it."""
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def _crash_for_test(tag: str) -> None:
    mode = os.environ.get(CRASH_ENV, "")
    if mode == "always":
        os._exit(1)
    if mode.startswith("once:"):
        mark = Path(mode[len("once:"):]) / tag
        if not mark.exists():
            mark.write_text(str(os.getpid()))
            os._exit(1)  # the worker process dies; Ray retries the task


@dataclass(frozen=True)
class OnNode:
    """A task's return value and the Ray node that computed it."""

    node_id: str
    value: Any


def _on_node(value: Any) -> OnNode:
    import ray

    return OnNode(ray.get_runtime_context().get_node_id(), value)


def episode_task(controller: str, config: Any, scenario: str, models: dict[str, bytes],
                 seeds: Sequence[int], task: str = DEFAULT_TASK) -> OnNode:
    """Run on a worker: build the controller from the packed models, run the seeded episodes."""
    from bresa_control.simulation.rollout import run_episode

    _crash_for_test(f"{controller}-{scenario}-{seeds[0]}")
    with tempfile.TemporaryDirectory(prefix="bresa-models-") as folder:
        env, policy = build(controller, config, scenario, unpack(models, Path(folder)), task)
        return _on_node([run_episode(env, policy, seed) for seed in seeds])


@dataclass(frozen=True)
class EpisodeJob:
    """Episodes of one controller on one scenario with one models folder; ``key`` is the caller's
    name for it (a comparison's cell)."""

    key: Any
    controller: str
    scenario: str
    models_folder: Path | None
    task: str = DEFAULT_TASK


@dataclass
class EpisodePart:
    """A finished task of a job: its episode seeds, and their results or why they failed."""

    key: Any
    seeds: tuple[int, ...]
    results: list[Any]
    error: str | None


def run_episodes(session: RaySession, jobs: Sequence[EpisodeJob], config: Any,
                 seeds: Sequence[int]) -> Iterator[EpisodePart]:
    """Every job's episodes ``seeds`` as Ray tasks of a few seeds each (:func:`chunks`), in the
    jobs' order; yields each part as it finishes. A models folder goes to the object store once
    per controller, however many jobs use it."""
    parts = chunks(seeds, session.cpus())
    packed: dict[tuple[str, str], Any] = {}  # (models folder, controller) -> its files in the object store
    for job in jobs:
        where = (str(job.models_folder), job.controller)
        if where not in packed:
            packed[where] = session.put(pack(job.models_folder, model_files(job.controller)))
        for part in parts:
            session.submit((job.key, part), episode_task, job.controller, config, job.scenario, packed[where], part,
                           job.task)
    for outcome in session.as_completed():
        key, part = outcome.key
        yield EpisodePart(key, part, outcome.result if outcome.error is None else [], outcome.error)


def training_task(method: str, seed: int, config: Any, settings: Any, data: bytes, models: dict[str, bytes],
                  command: Sequence[str]) -> OnNode:
    """Run on a worker: train one seed in a scratch folder; return its files and its card."""
    from bresa_control.learning.seeds import seed_folder, train_seed

    _crash_for_test(f"{method}-seed{seed}")
    with tempfile.TemporaryDirectory(prefix="bresa-train-") as scratch:
        root = Path(scratch)
        (root / "data.npz").write_bytes(data)
        card = train_seed(method, seed, config, root / "out", settings, root / "data.npz",
                          unpack(models, root / "models"), str(root / "tensorboard"), progress=False,
                          command=command)
        folder = seed_folder(root / "out", method, seed)
        files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return _on_node((files, card))


@dataclass
class Outcome:
    """One finished task: its result, or why it failed."""

    key: Any
    result: Any = None
    error: str | None = None
    node_id: str | None = None


class RaySession:
    """A connection to Ray for the length of a ``with`` block (started here for :data:`LOCAL`)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._queue: deque[tuple[Any, Any, tuple[Any, ...], float]] = deque()  # (key, function, args, cpus)
        self._pending: dict[Any, Any] = {}  # object ref -> key
        self._in_flight = 1
        self.tasks_by_node: dict[str, int] = {}  # node id -> tasks it finished

    def __enter__(self) -> RaySession:
        import ray

        options: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR",
                                   "configure_logging": False}
        if self.address == LOCAL:  # a Ray of our own, even where another runs (or left its address file)
            options["num_cpus"] = os.cpu_count()
        attempts = CLIENT_CONNECT_ATTEMPTS if self.address.startswith("ray://") else 1
        for attempt in range(1, attempts + 1):
            try:
                ray.init(address="local" if self.address == LOCAL else self.address, **options)
                break
            except ConnectionError as exc:
                # Only an aborted start is worth another try (the client proxy lost its server);
                # nothing listening stays so.
                if attempt == attempts or not isinstance(exc, ConnectionAbortedError):
                    raise RayUnavailable(f"could not connect to Ray at '{self.address}' "
                                         f"(attempt {attempt}): {str(exc).strip()[-500:]}") from exc
                log.warning("Ray at %s aborted the connection's start (ray-project/ray#63202); trying again "
                            "(%d of %d)", self.address, attempt + 1, attempts)
                ray.shutdown()
        self._in_flight = self.cpus()
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        for ref in self._pending:
            ray.cancel(ref, force=True)
        self._pending.clear()
        self._queue.clear()
        ray.shutdown()

    def put(self, value: Any) -> Any:
        """Place ``value`` in the object store once; pass the reference to many tasks."""
        import ray

        return ray.put(value)

    def submit(self, key: Any, function: Any, *args: Any, num_cpus: float = 1) -> None:
        """Queue ``function(*args)`` for a worker (retried once if its worker dies). Tasks start in
        the order they were queued, one per CPU of the cluster at a time, so that the first ones (a
        comparison's first cells) finish first: with more in flight, Ray ran some far out of order
        and a comparison's first cell waited behind later ones."""
        self._queue.append((key, function, args, num_cpus))

    def _start_queued(self) -> None:
        import ray

        while self._queue and len(self._pending) < self._in_flight:
            key, function, args, num_cpus = self._queue.popleft()
            remote = ray.remote(function).options(num_cpus=num_cpus, max_retries=RETRIES)
            self._pending[remote.remote(*args)] = key

    def as_completed(self) -> Iterator[Outcome]:
        """Every queued task's outcome, in the order they finish."""
        import ray

        self._start_queued()
        while self._pending:
            done, _ = ray.wait(list(self._pending), num_returns=1, timeout=1.0)
            for ref in done:
                key = self._pending.pop(ref)
                try:
                    done_on = ray.get(ref)
                except (ray.exceptions.RayError, OSError) as exc:
                    yield Outcome(key, error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                    continue
                self.tasks_by_node[done_on.node_id] = self.tasks_by_node.get(done_on.node_id, 0) + 1
                yield Outcome(key, result=done_on.value, node_id=done_on.node_id)
            self._start_queued()

    def describe(self) -> dict[str, Any]:
        """Where the work ran: the address asked for, every live node (id, address, CPUs) and the
        tasks each finished (for the JSON reports)."""
        import ray

        nodes = {node["NodeID"]: {"address": node["NodeManagerAddress"], "cpus": node["Resources"].get("CPU", 0),
                                  "tasks": self.tasks_by_node.get(node["NodeID"], 0)}
                 for node in ray.nodes() if node.get("Alive")}
        return {"address": self.address, "nodes": nodes}


    def cpus(self) -> int:
        """CPUs of the cluster."""
        import ray

        return int(ray.cluster_resources().get("CPU", 1))


def chunks(seeds: Sequence[int], cpus: int, size: int = EPISODES_PER_TASK) -> list[tuple[int, ...]]:
    """Episode seeds cut into tasks of at most ``size``, and small enough that every CPU gets two."""
    size = max(1, min(size, -(-len(seeds) // (2 * max(cpus, 1)))))
    return [tuple(seeds[i:i + size]) for i in range(0, len(seeds), size)]
