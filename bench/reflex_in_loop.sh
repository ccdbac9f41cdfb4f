#!/usr/bin/env bash
# The figures of the README's "Benchmark" section for the reflex in the arm's loop: the MuJoCo stack
# and the stack over libfranka's protocol (franky-sim sharing the cores), composed (the default: the
# critic in the arm's loop) and separate (three processes), with the bag recorder, and with one core
# kept busy by `yes > /dev/null`. Five runs of 20 s of the arm's clock each; every JSON records the
# CPU model and MHz. Timing only: nothing here is a test.
#
#   bench/reflex_in_loop.sh [OUT]      (default OUT: results/loop; ~25 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-results/loop}"
PY=.venv/bin/python
mkdir -p "$OUT"
run() { echo "== $*" >&2; "$PY" "$@"; }
run bench/bench_stack.py --runs 5 --duration 20 --json "$OUT/stack_composed.json"
run bench/bench_stack.py --runs 5 --duration 20 --bag --json "$OUT/stack_composed_bag.json"
run bench/bench_stack.py --runs 5 --duration 20 --separate --json "$OUT/stack_separate.json"
run bench/bench_stack.py --runs 5 --duration 20 --busy --json "$OUT/stack_composed_busy.json"
run bench/bench_franka.py --runs 5 --duration 20 --json "$OUT/franka_composed.json"
run bench/bench_franka.py --runs 5 --duration 20 --separate --json "$OUT/franka_separate.json"
run bench/bench_franka.py --runs 5 --duration 20 --busy --json "$OUT/franka_composed_busy.json"
