#!/usr/bin/env bash
# The traces behind README's "Why the target is missed": where bresa's insertion time goes
# against the spiral search (nominal, push), and what happened at each of bresa's violations
# in each scenario where the world pushes back (push, push-down, block-rises; every training
# seed), into docs/comparison/traces/. Needs the comparison's cells (bench/compare.sh) for the
# violating episode seeds; each is rerun by bresa, sac (its policy alone) and scripted. About 40 min
# on one core for the push; push-down and block-rises have more violating episodes (about an
# hour more).
#
#   bench/target_traces.sh [EPISODES] [SEEDS_DIR] [SCENARIOS] [CONTROLLERS]
#       EPISODES: default 50, the comparison's episodes 0..49; SEEDS_DIR as bresa compare's
#       --seeds-dir, default models/seeds; SCENARIOS: default "push push-down block-rises";
#       CONTROLLERS: those that rerun bresa's violating episodes, default "bresa sac scripted".
#       TIME_SPLITS=0 in the environment skips the two time splits (about 40 min).
set -euo pipefail
cd "$(dirname "$0")/.."
EPISODES="${1:-50}"
SEEDS_DIR="${2:-models/seeds}"
SCENARIOS="${3:-push push-down block-rises}"
CONTROLLERS="${4:-bresa sac scripted}"
OUT=docs/comparison/traces
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
PY=.venv/bin/python
if [ "${TIME_SPLITS:-1}" != 0 ]; then
$PY bench/time_split.py --controllers scripted,sac,bresa --scenario nominal --episodes "$EPISODES" \
    --training-seeds 0,1,2 --seeds-dir "$SEEDS_DIR" --out "$OUT/time_split_nominal.json" | tee "$OUT/time_split_nominal.txt"
$PY bench/time_split.py --controllers scripted,sac,bresa,sac-lagrangian --scenario push --episodes "$EPISODES" \
    --training-seeds 0,1,2 --seeds-dir "$SEEDS_DIR" --out "$OUT/time_split_push.json" | tee "$OUT/time_split_push.txt"
fi
for scenario in $SCENARIOS; do
for seed in 0 1 2; do
    models=$($PY -c "from bresa_control.app.compare import seed_models_dir; import sys; \
print(seed_models_dir('bresa', int(sys.argv[1]), None, sys.argv[2]))" "$seed" "$SEEDS_DIR")
    violated=$($PY -c "import json, sys; d = json.load(open(sys.argv[1])); \
print(','.join(str(e['seed']) for e in d['per_episode'] if e['violation']))" \
        "docs/comparison/cells/bresa_${scenario}_seed$seed.json")
    if [ -z "$violated" ]; then
        echo "== training seed $seed: bresa has no violation under $scenario"
        continue
    fi
    for controller in $CONTROLLERS; do  # sac: the same task policy without the layer
        echo "== $controller, $scenario, training seed $seed models ($models), bresa's violating episodes"
        $PY bench/peak_trace.py --controller "$controller" --scenario "$scenario" --seeds "$violated" --models-dir "$models"
    done
done 2>&1 | grep -v Warning | tee "$OUT/peak_$scenario.txt"
done
# The first of them tick by tick: what the reflex did before the peak.
seed0=$($PY -c "import json, sys; d = json.load(open(sys.argv[1])); \
print(next((str(e['seed']) for e in d['per_episode'] if e['violation']), ''))" "docs/comparison/cells/bresa_push_seed0.json")
if [ -n "$seed0" ]; then
    models0=$($PY -c "from bresa_control.app.compare import seed_models_dir; import sys; \
print(seed_models_dir('bresa', 0, None, sys.argv[1]))" "$SEEDS_DIR")
    $PY bench/peak_trace.py --controller bresa --scenario push --seed "$seed0" --ticks 12 --models-dir "$models0" 2>&1 \
        | grep -v Warning | tee "$OUT/peak_push_seed$seed0.txt"
fi
