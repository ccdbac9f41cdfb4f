#!/usr/bin/env bash
# The comparison table of README.md: five controllers x four scenarios, 100 seeded episodes each
# (the same seeds for every controller), using the shipped models. One JSON per cell in
# results/compare/, then one Markdown table. About an hour on 2 cores.
#
#   bench/compare.sh [EPISODES] [CONFIG]     (default 100; CONFIG: a YAML laid over the defaults,
#                                              results in results/compare-<its name>/)
set -euo pipefail
cd "$(dirname "$0")/.."
EPISODES="${1:-100}"
CONFIG_ARGS=()
OUT=results/compare
if [ -n "${2:-}" ]; then
  CONFIG_ARGS=(--config "$2")
  OUT="results/compare-$(basename "$2" .yaml)"
fi
mkdir -p "$OUT"
for scenario in nominal hole-moves push friction; do
  for controller in scripted sac force-guard recovery-rl bresa; do
    json="$OUT/${controller}_${scenario}.json"
    if [ -f "$json" ] && grep -q '"complete": true' "$json"; then continue; fi  # resumable
    .venv/bin/bresa evaluate --controller "$controller" --scenario "$scenario" --episodes "$EPISODES" \
      --seed 0 --workers 2 --no-progress "${CONFIG_ARGS[@]}" --json "$json"
  done
done
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
from bresa_control.app.evaluate import format_table
rows = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*.json"))]
order = {c: i for i, c in enumerate(["scripted", "sac", "force-guard", "recovery-rl", "bresa"])}
scen = {s: i for i, s in enumerate(["nominal", "hole-moves", "push", "friction"])}
rows.sort(key=lambda r: (scen[r["scenario"]], order[r["controller"]]))
print(format_table(rows))
PY
