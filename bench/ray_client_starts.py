"""How often a Ray Client (``ray://``) connection's start is aborted, with gRPC's fork handlers on
(Ray's default) and off (``GRPC_ENABLE_FORK_SUPPORT=false`` on the nodes, as README recommends).

    python bench/ray_client_starts.py --connections 12 [--busy] --json results/ray_client_starts.json

Ray Client's proxy forks a server for every new connection; with gRPC's fork handlers on, that
server can die at start while other threads use gRPC (ray-project/ray#63202, open in Ray 2.60),
more often on a busy machine. Both variants run at the same time, each in a network namespace of
its own (loopback only): a head and a worker node (one CPU each), one sweep through the cluster
address, then ``--connections`` sweeps of two short episodes through ``ray://127.0.0.1:10001``.
Counted: the connection starts the proxy aborted (``bresa`` tries such a start again, up to
``CLIENT_CONNECT_ATTEMPTS``) and the sweeps that failed anyway. Nothing is asserted; the JSON
records the CPU.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench_common import busy_core

from bresa_control.common.files import write_json_atomic
from bresa_control.runtime.timing import machine_info

BIN = Path(sys.executable).parent
VARIANTS = {"fork handlers on (default)": "", "GRPC_ENABLE_FORK_SUPPORT=false": "GRPC_ENABLE_FORK_SUPPORT=false"}


def script(prefix: str, connections: int) -> str:
    """The bash script one variant runs in its namespace; it prints ``aborts=N failed=M``."""
    evaluate = f"{BIN}/bresa evaluate --controller sac --seed 5 --config short.yaml --no-progress"
    return f"""set -u; ip link set lo up; printf 'env:\\n  max_episode_steps: 6\\n' > short.yaml
{prefix} {BIN}/ray start --head --port=6391 --num-cpus=1 --node-ip-address=127.0.0.1 --include-dashboard=false \
    > head.log 2>&1
{prefix} {BIN}/ray start --address=127.0.0.1:6391 --num-cpus=1 --node-ip-address=127.0.0.1 > worker.log 2>&1
{evaluate} --episodes 6 --ray 127.0.0.1:6391 > /dev/null 2>&1
aborts=0; failed=0
for i in $(seq {connections}); do
    {evaluate} --episodes 2 --ray ray://127.0.0.1:10001 > out.$i 2> err.$i || failed=$((failed + 1))
    aborts=$((aborts + $(grep -c "aborted the connection's start" err.$i || true)))
done
echo "aborts=$aborts failed=$failed"
"""


def kill_tagged(tag: str) -> None:
    """SIGKILL every process whose environment carries ``tag`` (what the variant's Ray left)."""
    needle = f"BRESA_BENCH_TAG={tag}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                continue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=12)
    parser.add_argument("--busy", action="store_true", help="keep one more core busy (yes > /dev/null)")
    parser.add_argument("--json", default="results/ray_client_starts.json")
    args = parser.parse_args()
    runs = {}
    with busy_core(args.busy), tempfile.TemporaryDirectory(prefix="bresa-rc-") as scratch:
        for name, prefix in VARIANTS.items():
            tag, work = uuid.uuid4().hex, Path(scratch) / uuid.uuid4().hex[:8]
            (work / "ray").mkdir(parents=True)
            env = {**os.environ, "BRESA_BENCH_TAG": tag, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
                   "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_TMPDIR": str(work / "ray"),
                   "RAY_worker_niceness": "0", "OMP_NUM_THREADS": "1"}
            process = subprocess.Popen(["unshare", "-n", "bash", "-c", script(prefix, args.connections)], env=env,
                                       cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            runs[name] = (process, tag)
        counts = {}
        for name, (process, tag) in runs.items():
            try:
                output = process.communicate(timeout=120 + 60 * args.connections)[0]
            finally:
                process.kill()
                kill_tagged(tag)
            found = re.search(r"aborts=(\d+) failed=(\d+)", output)
            if found is None:
                print(f"{name}: no count came back:\n{output[-2000:]}", file=sys.stderr)
                return 1
            counts[name] = {"connections": args.connections, "aborted_starts": int(found[1]),
                            "failed_sweeps": int(found[2])}
            print(f"{name}: {found[1]} of {args.connections} connection starts aborted, {found[2]} sweeps failed")
    write_json_atomic(args.json, {"machine": machine_info(), "busy_core": args.busy, "variants": counts})
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
