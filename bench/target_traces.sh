#!/usr/bin/env bash
# The traces behind README's "Why the target is missed": where bresa's insertion time goes
# against the spiral search (nominal, push), and what happened at each of bresa's violations
# under the push (every training seed), into docs/comparison/traces/. Needs the comparison's
# cells (bench/compare.sh) for the violating episode seeds. About 40 min on one core.
#
#   bench/target_traces.sh [EPISODES]     (default 50: the comparison's episodes 0..49)
set -euo pipefail
cd "$(dirname "$0")/.."
EPISODES="${1:-50}"
OUT=docs/comparison/traces
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
PY=.venv/bin/python
$PY bench/time_split.py --controllers scripted,sac,bresa --scenario nominal --episodes "$EPISODES" \
    --training-seeds 0,1,2 --out "$OUT/time_split_nominal.json" | tee "$OUT/time_split_nominal.txt"
$PY bench/time_split.py --controllers scripted,sac,bresa,sac-lagrangian --scenario push --episodes "$EPISODES" \
    --training-seeds 0,1,2 --out "$OUT/time_split_push.json" | tee "$OUT/time_split_push.txt"
for seed in 0 1 2; do
    models=$([ "$seed" = 0 ] && echo models || echo "models/seeds/bresa/seed$seed")
    violated=$($PY -c "import json, sys; d = json.load(open(sys.argv[1])); \
print(','.join(str(e['seed']) for e in d['per_episode'] if e['violation']))" \
        "docs/comparison/cells/bresa_push_seed$seed.json")
    for controller in bresa scripted; do
        echo "== $controller, push, training seed $seed models ($models), bresa's violating episodes"
        $PY bench/peak_trace.py --controller "$controller" --scenario push --seeds "$violated" --models-dir "$models"
    done
done 2>&1 | grep -v Warning | tee "$OUT/peak_push.txt"
# One of them tick by tick: the reflex fires, and the tip still meets the face at ~30 mm/s.
$PY bench/peak_trace.py --controller bresa --scenario push --seed 11 --ticks 12 2>&1 | grep -v Warning \
    | tee "$OUT/peak_push_seed11.txt"
