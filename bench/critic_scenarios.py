"""Does the critic see trouble coming in scenarios it never trained on? Per scenario: its AUROC and
the share of violations it flagged at least 20 ms ahead.

    python bench/critic_scenarios.py --episodes 20 --critic-dir models --policy-dir models \
        --json results/critic_scenarios.json

For every scenario, ``--episodes`` episodes from seed ``--seed`` (default 7000: another draw than
``bresa collect``'s seed 0, the comparison's episodes 0-49 and the checkpoint selection's
1,000,000+) of ``bresa collect``'s behaviours (``--behaviour collect``: the spiral search as
configured, randomised and too aggressive, and random impedance actions, all without a reflex, so
violations happen and nothing the critic says changes the run) or of the task policy alone
(``--behaviour sac``, the policy of ``--policy-dir``). Every tick's critic input (the state as the
controllers see it, and the executed command) is scored by the critic of ``--critic-dir``, which
trained on ``bresa collect``'s data: the nominal scene with generic disturbances (config
``randomisation``), never these scenarios.

- **AUROC**: risk against "a violation within the critic's horizon" (100 ticks at gamma 0.99), over
  every tick of the scenario's episodes (held out by construction).
- **flagged >= 20 ms ahead**: of the violation onsets (the first tick of each run of violating
  ticks), the share where risk passed ``eps_safe`` at some tick from ``horizon`` ticks before the
  onset up to 20 ticks before it: time enough for the reflex's brake.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bresa_control.app.controllers import build
from bresa_control.common.config import BresaConfig, load_config
from bresa_control.learning.collect import collect
from bresa_control.learning.critic import auroc, violation_within
from bresa_control.runtime.timing import machine_info
from bresa_control.safety.models import load_reflex_models
from bresa_control.simulation.scenarios import SCENARIOS

LEAD_TICKS = 20  # "at least 20 ms ahead" at 1 kHz


def behaviour_ticks(scenario: str, episodes: int, seed: int, config: BresaConfig
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Critic inputs, violation flags and episode indices of every tick of collect's behaviours."""
    data = collect(config, episodes, seed, max_steps=120, progress=False, scenario=scenario)
    return (np.array(data.features, np.float32), np.array(data.cost, np.uint8), np.array(data.episode, np.int32))


def policy_ticks(scenario: str, episodes: int, seed: int, policy_dir: str, config: BresaConfig
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Critic inputs, violation flags and episode indices of every tick of the policy's episodes."""
    env, policy = build("sac", config, scenario, policy_dir)
    features: list[np.ndarray] = []
    cost: list[float] = []
    episode: list[int] = []
    index = 0

    def record(tick_features: np.ndarray, violated: float) -> None:
        features.append(tick_features)
        cost.append(violated)
        episode.append(index)

    env.tick_recorder = record
    for index in range(episodes):
        obs, _ = env.reset(seed=seed + index)
        policy.reset()
        while True:
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            if terminated or truncated:
                break
    return np.array(features, np.float32), np.array(cost, np.uint8), np.array(episode, np.int32)


def flagged_ahead(risk: np.ndarray, cost: np.ndarray, episode: np.ndarray, eps_safe: float, horizon: int
                  ) -> tuple[int, int]:
    """(violation onsets, those with risk > eps_safe between ``horizon`` and LEAD_TICKS ticks before)."""
    onsets = [t for t in np.flatnonzero(cost) if t == 0 or not cost[t - 1] or episode[t - 1] != episode[t]]
    flagged = 0
    for t in onsets:
        window = np.arange(max(0, t - horizon), t - LEAD_TICKS + 1)
        window = window[episode[window] == episode[t]] if len(window) else window
        flagged += int(len(window) > 0 and bool((risk[window] > eps_safe).any()))
    return len(onsets), flagged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=20, help="episodes per scenario")
    parser.add_argument("--seed", type=int, default=7000, help="episode i uses seed + i")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--critic-dir", default="models", help="the critic to score (its models folder)")
    parser.add_argument("--behaviour", choices=("collect", "sac"), default="collect",
                        help="what makes the episodes: bresa collect's behaviours, or the task policy alone")
    parser.add_argument("--policy-dir", default="models", help="the task policy of --behaviour sac")
    parser.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    config = load_config(args.config)
    critic, _, card = load_reflex_models(config, args.critic_dir)
    eps_safe, horizon = config.reflex.eps_safe, int(card["evaluation"]["horizon_ticks"])
    rows = []
    print(f"| scenario | ticks | violating episodes | AUROC | violations flagged >= {LEAD_TICKS} ms ahead |")
    print("|---|---|---|---|---|")
    for scenario in args.scenarios:
        features, cost, episode = (
            behaviour_ticks(scenario, args.episodes, args.seed, config) if args.behaviour == "collect"
            else policy_ticks(scenario, args.episodes, args.seed, args.policy_dir, config))
        risk = np.array([critic.risk(f) for f in features])
        labels = violation_within(cost, episode, horizon)
        onsets, flagged = flagged_ahead(risk, cost, episode, eps_safe, horizon)
        row = {"scenario": scenario, "episodes": args.episodes, "ticks": int(len(cost)),
               "violating_episodes": int(len(np.unique(episode[cost > 0]))), "auroc": auroc(risk, labels),
               "violation_onsets": onsets, "flagged_ahead": flagged,
               "flagged_ahead_share": flagged / onsets if onsets else None}
        rows.append(row)
        share = "-" if not onsets else f"{flagged} of {onsets} ({flagged / onsets:.0%})"
        print(f"| {scenario} | {row['ticks']} | {row['violating_episodes']} | {row['auroc']:.3f} | {share} |",
              flush=True)
    if args.json:
        document = {"command": ["python", "bench/critic_scenarios.py", *sys.argv[1:]], "behaviour": args.behaviour,
                    "eps_safe": eps_safe,
                    "horizon_ticks": horizon, "lead_ticks": LEAD_TICKS, "seed": args.seed,
                    "critic_card_evaluation": card["evaluation"], "machine": machine_info(), "rows": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
