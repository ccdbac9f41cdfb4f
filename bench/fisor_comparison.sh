#!/usr/bin/env bash
# The FISOR issue's comparison: fisor (FISOR's policy, no reflex) and bresa-feasibility (the reflex
# gated by the reachability value), three training seeds x EPISODES x the nine scenarios, the same
# episode seeds as bench/compare.sh's first EPISODES, into docs/comparison-fisor/ (cells, summary,
# table, plot); table_with_bresa.md adds bresa's rows of docs/comparison/ and takes fisor's from
# there too where it has them (50 episodes per training seed, which begin with these); then, for every fisor cell, what FISOR's own critics said
# before each of its violations and the totals by scenario (bench/fisor_trace.py), into
# docs/comparison-fisor/traces/fisor_violations.txt. Resumable, like bench/compare.sh.
#
#   bench/fisor_comparison.sh [EPISODES] [MORE bresa compare ARGS]    e.g. bench/fisor_comparison.sh 20 --ray
#
# Default 20 episodes per controller, training seed and scenario: fisor and bresa-feasibility
# rarely insert, so their episodes run to the 20 s limit, and 50 did not fit a session on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
EPISODES="${1:-20}"
shift || true
OUT=docs/comparison-fisor
export OMP_NUM_THREADS=1
.venv/bin/bresa compare --episodes "$EPISODES" --out "$OUT" --no-progress --seeds-dir models/candidates \
  --controllers fisor bresa-feasibility "$@"
.venv/bin/python - "$OUT/summary.json" docs/comparison/summary.json > "$OUT/table_with_bresa.md" <<'PY'
import json, sys
from bresa_control.app.compare import markdown
from bresa_control.learning.registry import CONTROLLERS
from bresa_control.simulation.scenarios import SCENARIOS
# bresa's rows, and fisor's where docs/comparison has them (50 episodes per training seed), replace these.
full = [r for r in json.load(open(sys.argv[2]))["rows"] if r["controller"] in ("bresa", "fisor")]
taken = {(r["controller"], r["scenario"]) for r in full}
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if (r["controller"], r["scenario"]) not in taken] + full
print(markdown(sorted(rows, key=lambda r: (SCENARIOS.index(r["scenario"]), list(CONTROLLERS).index(r["controller"])))))
PY
mkdir -p "$OUT/traces"
.venv/bin/python bench/fisor_trace.py --cell "$OUT"/cells/fisor_*.json 2>&1 | grep -v Warning \
  | tee "$OUT/traces/fisor_violations.txt"
