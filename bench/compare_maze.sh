#!/usr/bin/env bash
# The maze's comparison (issue "The second scene"): seven controllers, three training seeds of
# each learned one (models/maze/, models/maze/seeds/), eight scenarios ("hole-moves" is the layout
# shifted), 50 episodes per cell, episode seeds 2000-2049 (0-7 shaped the scripted follower's gains,
# 1000-1049 checked it; 2000 on chose nothing). Resumable: a finished cell whose models, config and
# episodes match is reused, so run it again after an interruption. Writes docs/comparison-maze/
# (cells/, summary.json, table.md, target.md, comparison.png).
#
#   bench/compare_maze.sh [MORE bresa compare ARGS]     e.g. bench/compare_maze.sh --ray
#                                                             bench/compare_maze.sh --plan-only
#                                                             bench/compare_maze.sh --summary-only  (of the cells done)
#
# About 13 hours of one core on a 2-core AMD EPYC at 2596 MHz (fisor's episodes, mostly 30 s
# timeouts, a third of it); with --ray on both cores about half that.
set -euo pipefail
cd "$(dirname "$0")/.."
OMP_NUM_THREADS=1 .venv/bin/bresa compare --task maze --episodes 50 --seed 2000 --out docs/comparison-maze \
  --controllers scripted sac force-guard recovery-rl bresa sac-lagrangian fisor \
  --scenarios nominal hole-moves push push-down friction ft-drift state-latency payload "$@"
