"""Shared fixtures: the shipped config and a simulator built once per test module."""

from __future__ import annotations

import pytest

from bresa_control.common.config import BresaConfig, load_config
from bresa_control.simulation.simulator import ArmSim


@pytest.fixture(scope="session")
def config() -> BresaConfig:
    return load_config()


@pytest.fixture(scope="module")
def sim(config: BresaConfig) -> ArmSim:
    return ArmSim(config)

