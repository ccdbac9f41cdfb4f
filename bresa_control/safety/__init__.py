"""The safety layer: the reflex (intermediate actions, risk gate, recovery switch), the critic's input
features, and loading the TorchScript critic and recovery policy so that a mismatch fails closed."""
