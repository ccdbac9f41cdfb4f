#!/usr/bin/env bash
# The comparison of README.md: every controller x training seeds 0, 1, 2 x the nine scenarios,
# the same episode seeds for every controller (bresa compare: 95 % intervals, table, plot), into
# docs/comparison/: one JSON per cell with every episode in cells/ (resumable: run it again after
# an interruption), summary.json, table.md and comparison.png.
#
#   bench/compare.sh [EPISODES] [MORE bresa compare ARGS]    e.g. bench/compare.sh 50 --ray auto
#
# Default 50 episodes per controller, training seed and scenario (150 per learned controller).
# Every controller of the registry: the six of the issue "A reflex that earns its place" and the
# two of the issue "FISOR, the hard-constraint method" (fisor, bresa-feasibility; their table and
# FISOR's traces: bench/fisor_comparison.sh, after this). Give --controllers to choose (the last wins).
set -euo pipefail
cd "$(dirname "$0")/.."
EPISODES="${1:-50}"
shift || true
CONTROLLERS=(scripted sac force-guard recovery-rl bresa sac-lagrangian fisor bresa-feasibility)
OMP_NUM_THREADS=1 .venv/bin/bresa compare --episodes "$EPISODES" --out docs/comparison --no-progress \
  --controllers "${CONTROLLERS[@]}" "$@"
