"""The simulated world: MuJoCo scene, the simulated arm (simulator and its 1 kHz loop), perturbation
scenarios, the gymnasium environment and episode roll-outs."""
