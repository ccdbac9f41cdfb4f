"""Sweeps on Ray (``--ray``): the same results as one process, on a two-node cluster too; a dying
worker is retried once and what still fails is reported by seed; Ctrl-C keeps what finished.

Every Ray process these tests start lives in a network namespace the test makes (``unshare -n``,
then ``ip link set lo up``): only loopback exists there, so Ray talks over 127.0.0.1 and nothing
else (Ray 2.60 ignores ``--node-ip-address=127.0.0.1`` and picks the machine's interface). Each
test tags its processes through the environment and kills whatever still carries the tag at the
end, passed or failed (never ``ray stop``, which stops every Ray process of the machine). Ray's
workers run at niceness 15 by default; the tests set 0 (``RAY_worker_niceness``) so that a busy
machine does not starve them. Time limits are generous (a machine three times slower meets them);
no verdict depends on speed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from bresa_control.app.evaluate import evaluate
from bresa_control.common.config import load_config

BRESA = str(Path(sys.executable).parent / "bresa")
RAY = str(Path(sys.executable).parent / "ray")
SHORT = "env:\n  max_episode_steps: 6\n"
TIMEOUT_S = 900


def _can_make_a_network_namespace() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not _can_make_a_network_namespace(),
                                reason="needs root and unshare -n: Ray may run on loopback only")


@pytest.fixture
def tagged(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of the test's processes, with a tag; every process carrying the tag is
    killed at the end, whatever happened."""
    tag = f"bresa-test-{uuid.uuid4().hex}"
    # Ray 2.60 authenticates every connection with a token; the head, the worker node and the
    # caller share this one.
    # Each test's Ray keeps its session files (sockets, address file) in a folder of its own, so
    # that nothing a killed cluster left behind reaches the next test (short: socket paths are limited).
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    env = {**os.environ, "BRESA_TEST_TAG": tag, "RAY_worker_niceness": "0", "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_TMPDIR": ray_tmp}
    (tmp_path / "short.yaml").write_text(SHORT)
    try:
        yield env
    finally:
        _kill_tagged(tag)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _kill_tagged(tag: str) -> None:
    needle = f"BRESA_TEST_TAG={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def _in_namespace(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a bash script in a new network namespace with only loopback up."""
    return subprocess.run(["unshare", "-n", "bash", "-c", "set -euo pipefail; ip link set lo up\n" + script],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)


def _client_server_logs(env: dict[str, str]) -> str:
    """The end of every Ray Client server log of the test's Ray (why a ``ray://`` connection failed)."""
    logs = sorted(Path(env["RAY_TMPDIR"]).glob("**/logs/ray_client_server*"))
    return "".join(f"\n--- {p.name}:\n" + p.read_text(errors="replace")[-3000:] for p in logs)


def _single_process(tmp_path: Path, controller: str, episodes: int, seed: int, scenario: str = "nominal") -> list[dict]:
    results = evaluate(controller, load_config(tmp_path / "short.yaml"), episodes, seed, scenario, progress=False)
    return [asdict(r) for r in results]


def test_a_two_node_cluster_runs_episodes_on_both_nodes_with_single_process_results(
    tmp_path: Path, tagged: dict[str, str]
) -> None:
    # No 'ray stop' here: it stops every Ray process of the machine, a user's own included. The
    # tagged fixture kills this test's processes, and only those.
    script = f"""
# GRPC_ENABLE_FORK_SUPPORT=false as README says: Ray Client's proxy forks a server per connection,
# and with gRPC's fork handlers on, that server could die at start under load (ray-project/ray#63202).
export GRPC_ENABLE_FORK_SUPPORT=false
{RAY} start --head --port=6391 --num-cpus=1 --node-ip-address=127.0.0.1 --include-dashboard=false > head.log 2>&1 \
    || {{ tail -20 head.log >&2; exit 1; }}
{RAY} start --address=127.0.0.1:6391 --num-cpus=1 --node-ip-address=127.0.0.1 > worker.log 2>&1 \
    || {{ tail -20 worker.log >&2; exit 1; }}
unset GRPC_ENABLE_FORK_SUPPORT
{BRESA} evaluate --controller sac --episodes 6 --seed 5 --config short.yaml --ray 127.0.0.1:6391 \\
    --json ray.json --no-progress
{BRESA} evaluate --controller sac --episodes 6 --seed 5 --config short.yaml --ray ray://127.0.0.1:10001 \\
    --json client.json --no-progress
"""
    run = _in_namespace(script, tagged, tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:] + _client_server_logs(tagged)
    report = json.loads((tmp_path / "ray.json").read_text())
    nodes = report["ray"]["nodes"]
    assert len(nodes) == 2 and all(n["address"] == "127.0.0.1" for n in nodes.values())  # loopback only
    assert all(n["tasks"] >= 1 for n in nodes.values())  # both nodes ran episodes
    assert report["complete"] and report["per_episode"] == _single_process(tmp_path, "sac", 6, 5)
    client = json.loads((tmp_path / "client.json").read_text())  # through Ray Client, from "elsewhere"
    assert client["complete"] and client["per_episode"] == report["per_episode"]


def test_a_worker_that_dies_is_retried_once_and_what_still_fails_is_reported_by_seed(
    tmp_path: Path, tagged: dict[str, str]
) -> None:
    (tmp_path / "marks").mkdir()
    script = f"""
BRESA_SWEEP_CRASH=once:{tmp_path / 'marks'} {BRESA} evaluate --controller scripted --episodes 4 --seed 2 \\
    --config short.yaml --ray --json retried.json --no-progress
status=0
BRESA_SWEEP_CRASH=always {BRESA} evaluate --controller scripted --episodes 4 --seed 2 --config short.yaml --ray \\
    --json failed.json --no-progress || status=$?
echo "always: exit $status"
"""
    run = _in_namespace(script, tagged, tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    retried = json.loads((tmp_path / "retried.json").read_text())
    assert len(list((tmp_path / "marks").iterdir())) >= 2  # every task's first worker died ...
    assert retried["complete"]  # ... and nothing was lost
    assert retried["per_episode"] == _single_process(tmp_path, "scripted", 4, 2)
    assert all(n["address"] == "127.0.0.1" for n in retried["ray"]["nodes"].values())
    failed = json.loads((tmp_path / "failed.json").read_text())
    assert "always: exit 1" in run.stdout
    assert not failed["complete"] and sorted(failed["failed_seeds"]) == ["2", "3", "4", "5"]
    assert "episodes failed (seeds [2, 3, 4, 5])" in run.stderr


def test_ctrl_c_during_a_sweep_keeps_every_finished_episode_and_flags_the_json_incomplete(
    tmp_path: Path, tagged: dict[str, str]
) -> None:
    out = tmp_path / "cmp"
    episodes = 400  # per cell: far more than can run before the interrupt
    command = (f"ip link set lo up; exec {BRESA} compare --controllers scripted --scenarios nominal push "
               f"--episodes {episodes} --config short.yaml --out {out} --ray")
    # SIGINT as in a terminal, even where this suite runs as a background job (which ignores it).
    run = subprocess.Popen(["unshare", "-n", "bash", "-c", command], env=tagged, cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(iter(lambda: run.stderr.read(1), "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        finished = 0
        while finished < 10:  # the progress bar counts episodes as their tasks come back
            assert run.poll() is None and time.monotonic() < deadline, "".join(stderr)[-4000:]
            time.sleep(0.5)
            counts = re.findall(rf"(\d+)/{2 * episodes}", "".join(stderr))
            finished = int(counts[-1]) if counts else 0
        run.send_signal(signal.SIGINT)
        run.wait(timeout=TIMEOUT_S)
    finally:
        run.kill()
    reader.join(timeout=10)
    assert run.returncode == 130, "".join(stderr)[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["complete"]
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    kept = [e for cell in cells for e in cell["per_episode"]]
    assert len(kept) >= finished and not any(cell["complete"] for cell in cells)
    cell = max(cells, key=lambda c: len(c["per_episode"]))  # what was kept is right:
    low = min(e["seed"] for e in cell["per_episode"])
    single = {e["seed"]: e for e in _single_process(tmp_path, "scripted", 5, low, cell["scenario"])}
    compared = [e for e in cell["per_episode"] if e["seed"] in single]
    assert compared and all(e == single[e["seed"]] for e in compared)


def test_train_seeds_on_ray_writes_every_seed_as_one_process_would(tmp_path: Path, tagged: dict[str, str]) -> None:
    tiny = ["--method", "sac-lagrangian", "--seeds", "1", "2", "--timesteps", "30", "--learning-starts", "10",
            "--select-every", "15", "--select-episodes", "1", "--config", "short.yaml", "--no-progress"]
    run = _in_namespace(f"{BRESA} train-seeds {' '.join(tiny)} --out ray --tensorboard tb-ray --ray", tagged, tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert "sac-lagrangian seed 1 done" in run.stdout and "sac-lagrangian seed 2 done" in run.stdout
    from bresa_control.app.cli import main
    from bresa_control.common.cards import read_card

    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert main(["train-seeds", *tiny, "--out", "here", "--tensorboard", "tb-here"]) == 0
    finally:
        os.chdir(cwd)
    for seed in (1, 2):
        on_ray = read_card(tmp_path / "ray" / "sac-lagrangian" / f"seed{seed}" / "sac_lagrangian" / "task_policy.zip")
        here = read_card(tmp_path / "here" / "sac-lagrangian" / f"seed{seed}" / "sac_lagrangian" / "task_policy.zip")
        assert on_ray["seed"] == seed and on_ray["lagrange"] == here["lagrange"]
        assert on_ray["checkpoint_selection"]["history"] == here["checkpoint_selection"]["history"]
    assert not list((tmp_path / "ray" / "sac-lagrangian").glob("*.incoming"))
