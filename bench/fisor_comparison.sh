#!/usr/bin/env bash
# The FISOR issue's view of the comparison: fisor (FISOR's policy, no reflex), bresa-feasibility
# (the reflex gated by the reachability value) and bresa, from docs/comparison/summary.json, into
# docs/comparison/table_fisor.md; then, for every fisor cell of docs/comparison/cells, what FISOR's
# own critics said before each of its violations, and the totals by scenario (bench/fisor_trace.py),
# into docs/comparison/traces/fisor_violations.txt.
#
#   bench/compare.sh 50 --ray   # first: every controller, fisor's included
#   bench/fisor_comparison.sh                                 # then this (the traces: 8 min on 2 cores)
#
# The 20-episode run that came before (docs/comparison-fisor/) is kept as it was made.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=docs/comparison
export OMP_NUM_THREADS=1
.venv/bin/python - "$OUT/summary.json" > "$OUT/table_fisor.md" <<'PY'
import json, sys
from bresa_control.app.compare import markdown
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["controller"] in ("fisor", "bresa-feasibility", "bresa")]
if {r["controller"] for r in rows} != {"fisor", "bresa-feasibility", "bresa"}:
    sys.exit(f"{sys.argv[1]} lacks fisor, bresa-feasibility or bresa: run bench/compare.sh first")
print(markdown(rows))  # summary.json's rows are in the comparison's order already
PY
cat "$OUT/table_fisor.md"
mkdir -p "$OUT/traces"
.venv/bin/python bench/fisor_trace.py --jobs 2 --cell "$OUT"/cells/fisor_*.json 2>&1 | grep -v Warning \
  | tee "$OUT/traces/fisor_violations.txt"
