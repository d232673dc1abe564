"""The base-gait action kind: residual actions around an open-loop gait, its phase observed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_robot_config import a1_data, level_signals, walking

from dreamer_core.robots import ActionMapper, ObservationBuilder
from dreamer_core.robots.config import parse_robot_config
from dreamer_core.robots.gait import BaseGait


@pytest.fixture(scope="module")
def config():
    data = a1_data()
    walking(data)  # 2 Hz at a1_sim's control rate: FR thigh sine, FR knee rectified lift a quarter later
    return parse_robot_config(data)


def test_offsets_follow_the_configured_sines(config):
    gait = BaseGait(config)
    thigh, knee = config.joint_names.index("FR_upper_joint"), config.joint_names.index("FR_lower_joint")
    for step in range(60):
        t = step * config.dt
        offsets = gait.offsets(step)
        assert offsets[thigh] == pytest.approx(0.1 * math.sin(2 * math.pi * 2.0 * t))
        assert offsets[knee] == pytest.approx(-0.2 * max(0.0, math.sin(2 * math.pi * (2.0 * t + 0.75))))
        assert np.count_nonzero(offsets) <= 2  # the other joints keep their default pose
        assert gait.phase(step) == pytest.approx(2 * math.pi * ((2.0 * t) % 1.0))
    # A joint_position_offset robot has no gait: zero offsets at every step.
    plain = BaseGait(parse_robot_config(a1_data()))
    assert not plain.offsets(7).any() and plain.phase(7) == 0.0


def test_action_zero_walks_the_gait_and_executed_inverts_the_mapping(config):
    mapper, gait = ActionMapper(config), BaseGait(config)
    mapper.reset()
    rng = np.random.default_rng(0)
    for step in range(30):
        assert mapper.phase == pytest.approx(gait.phase(step))
        action = rng.uniform(-0.5, 0.5, config.act_dim)
        targets = mapper(action)
        np.testing.assert_allclose(targets, mapper.default + gait.offsets(step) + mapper.scale * action)
        np.testing.assert_allclose(mapper.executed(targets), action, atol=1e-6)
    mapper.reset()  # a new episode restarts the gait's clock
    assert mapper.phase == 0.0
    np.testing.assert_allclose(mapper(np.zeros(config.act_dim)), mapper.default + gait.offsets(0))


def test_the_observation_carries_the_gait_phase(config):
    builder = ObservationBuilder(config)
    where = dict(builder.layout())["gait_phase"]
    obs = builder.build(level_signals(config), np.zeros(config.act_dim), phase=math.pi / 2)
    np.testing.assert_allclose(obs[where], [1.0, 0.0], atol=1e-7)
    assert config.obs_dim == parse_robot_config(a1_data()).obs_dim + 2
