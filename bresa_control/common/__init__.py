"""Shared by every layer: the config schema and loader, data paths, atomic file writing, model cards."""
