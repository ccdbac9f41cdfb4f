#!/usr/bin/env bash
# bresa_control: one entry point for a fresh machine.
#
#   ./run.sh demo    set everything up, then run the main job: the ROS 2 stack (MuJoCo arm, 1 kHz
#                    safety critic, 10 Hz SAC policy) inserts a peg; result in results/demo.json
#   ./run.sh test    set everything up, then lint (ruff, import layers, mypy) and run the test suite (what CI runs)
#   ./run.sh bench   set everything up, then run the benchmarks (figures in docs/results.md)
#   ./run.sh setup   only set up: .venv/ with every dependency, the package installed editable
#
# Setup is idempotent and quick when nothing changed (a stamp file records what was installed).
# Environment: PYTHON (default python3, 3.10 or newer), BRESA_VENV (default ./.venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${BRESA_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
# CPU build of torch: on this project's machines pip finds it on local disk; an unpinned torch
# would pull a multi-GB CUDA build.
TORCH_SPEC="torch==2.13.0"
ROS_WHEELS=("ros-rclpy[fastrtps]" ros-std-msgs ros-geometry-msgs ros-sensor-msgs ros-diagnostic-msgs)

log() { printf '[run.sh] %s\n' "$*" >&2; }

system_packages() {
  # Debian packages: libosmesa6 for offscreen rendering on the CPU (bresa render, MUJOCO_GL=osmesa);
  # iproute2 and util-linux (ip, unshare) for the Ray tests and bench, which run Ray in a network
  # namespace of their own so that it talks over 127.0.0.1 only.
  local missing=()
  ldconfig -p 2>/dev/null | grep -q libOSMesa || missing+=(libosmesa6)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v unshare >/dev/null || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing ${missing[*]} with apt-get"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; } >/dev/null; then
    log "could not install ${missing[*]}: 'bresa render' or the Ray tests may not run (everything else does)"
  fi
}

setup() {
  system_packages
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { log "need Python 3.10 or newer, found $("$PYTHON" --version 2>&1)"; exit 1; }
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.bresa-setup-stamp" want
  want="$(cat "$ROOT/setup.py" "$ROOT/run.sh" | sha256sum | cut -d' ' -f1) ros:${ROS_DISTRO:-none}"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  log "installing Python dependencies into $VENV (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$TORCH_SPEC" -e "$ROOT[test]"
  if [ -n "${ROS_DISTRO:-}" ]; then
    log "ROS 2 $ROS_DISTRO is sourced: using its rclpy and messages, not installing ROS wheels"
  else
    log "no ROS 2 sourced: installing rclpy and message packages from PyPI wheels"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${ROS_WHEELS[@]}"
  fi
  echo "$want" > "$stamp"
}

run_demo() {
  mkdir -p "$ROOT/results"
  cd "$ROOT"
  "$VENV/bin/bresa" demo --json "$ROOT/results/demo.json" "$@"
}

run_tests() {
  cd "$ROOT"
  log "lint: ruff check, lint-imports (the layer rule), mypy (the whole package)"
  "$VENV/bin/ruff" check --quiet .
  "$VENV/bin/lint-imports" --no-cache --no-logo >/dev/null || "$VENV/bin/lint-imports" --no-cache --no-logo
  "$VENV/bin/mypy"
  "$VENV/bin/python" -m pytest -q "$@"
}

run_bench() {
  cd "$ROOT"
  "$VENV/bin/python" bench/bench_sim.py --json "$ROOT/results/bench_sim.json"
  "$VENV/bin/python" bench/bench_critic.py --json "$ROOT/results/bench_critic.json"
  "$VENV/bin/python" bench/bench_stack.py --runs 5 --duration 20 --json "$ROOT/results/bench_stack.json"
  "$VENV/bin/python" bench/bench_ray.py --episodes 40 --json "$ROOT/results/bench_ray.json"
}

main() {
  local command="${1:-}"
  shift || true
  case "$command" in
    setup) setup ;;
    demo) setup; run_demo "$@" ;;
    test) setup; run_tests "$@" ;;
    bench) setup; run_bench "$@" ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
  esac
}

main "$@"
