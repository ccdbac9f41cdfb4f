"""Learning: offline risk data, the twin risk critic and recovery policy, SAC task-policy training,
and their settings."""
