"""What the report and the A1 bench measure: which episodes count (complete vs cut short), the one-line
verdict against the initial policy, the forward travel per episode, and the bench's per-seed summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dreamer_core.control import Controller, InitialPolicy
from dreamer_core.envs.a1_mujoco import A1MujocoEnv
from dreamer_core.report.complete_episodes import is_complete
from dreamer_core.report.page import render
from dreamer_core.report.robot_time import return_by_robot_minute
from dreamer_core.report.run_data import Decision, PolicyEvent, RunData, load_run
from dreamer_core.report.run_layout import RunLayout
from dreamer_core.report.run_summary import seeds_line, summarize_run, summary_row
from dreamer_core.report.travel_log import Travel, TravelLog, forward_displacement
from dreamer_core.report.verdict import verdict
from dreamer_core.robots.config import EpisodeConfig, load_robot_config
from dreamer_core.storage import ReplayStore
from dreamer_core.storage.episodes import Episode, episodes

LIMIT = 1000  # a1_sim: 20 s at 50 Hz
RATE = 50.0


def episode(steps: int, ret: float, version: int = 0, *, start: float = 0.0, terminal: bool = False,
            complete: bool = True, started: bool = True) -> Episode:
    return Episode("a1", "s", 0, steps - 1, start, start + (steps - 1) / RATE, steps, ret, version, False, complete,
                   terminal, started)


def in_order(*specs: tuple) -> list[Episode]:
    """Episodes one after the other in time from ``(steps, ret, version[, terminal])`` tuples."""
    out, start = [], 1000.0
    for steps, ret, version, *terminal in specs:
        out.append(episode(steps, ret, version, start=start, terminal=bool(terminal and terminal[0])))
        start += steps / RATE + 1.0  # a reset between episodes
    return out


def run_data(tmp_path, eps: list[Episode], **fields) -> RunData:
    return RunData(RunLayout(tmp_path), episodes=eps, episode_steps=LIMIT, control_rate_hz=RATE, **fields)


# -- the rule ------------------------------------------------------------------------------


def test_complete_means_a_fall_or_the_time_limit():
    assert is_complete(episode(LIMIT, 100.0), LIMIT)  # time limit
    assert is_complete(episode(130, 9.0, terminal=True), LIMIT)  # a fall, however early
    assert not is_complete(episode(784, 78.0), LIMIT)  # the shutdown, a fault hold or a swap cut it
    assert not is_complete(episode(LIMIT, 100.0, started=False), LIMIT)  # its first rows were evicted
    assert not is_complete(episode(LIMIT, 100.0, complete=False), LIMIT)  # never closed by an is_last row
    with pytest.raises(ValueError, match="episode_steps"):
        is_complete(episode(10, 1.0), 0)


def test_the_rule_matches_the_rows_the_controller_writes(tmp_path):
    """A time-limit episode has exactly episode_steps rows in the store; one the node's stop closed has fewer."""
    config = load_robot_config("a1_sim")
    config = config.model_copy(update={"episode": EpisodeConfig(max_steps=20)})
    env = A1MujocoEnv(config)
    controller = Controller(config, session_id="s1", initial_policy=InitialPolicy(config.act_dim, "stand"))
    transitions = []
    for _ in range(20 + 13):  # a whole episode (its 20th row ends it), 13 rows of the next; then the node stops
        signals = env.read_signals()
        out = controller.tick(signals, now=signals.stamp)
        transitions += out.transitions
        env.apply_joint_targets(out.joint_targets)
    transitions.append(controller.end_session())
    with ReplayStore(tmp_path / "replay", obs_dim=config.obs_dim, act_dim=config.act_dim) as store:
        for t in transitions:
            store.add(t)
    with ReplayStore(tmp_path / "replay", readonly=True) as store:
        stored = [e for e in episodes(store.iter_steps()) if e.complete]
    assert [(e.steps, e.terminal) for e in stored] == [(20, False), (14, False)]
    assert [is_complete(e, config.episode_steps) for e in stored] == [True, False]


def test_an_episode_cut_by_the_shutdown_does_not_read_as_a_regression(tmp_path):
    """The issue's case: the last v1 episode, 784 steps when the stack stopped, collected 78% of a full one."""
    eps = in_order(*[(LIMIT, 100.0 + i, 0) for i in range(6)], *[(LIMIT, 120.0 + i, 1) for i in range(5)],
                   (784, 94.0, 1))
    data = run_data(tmp_path, eps)
    assert data.cut_episodes() == eps[-1:] and len(data.complete_episodes()) == 11
    assert data.complete_returns_by_version() == {0: [100.0 + i for i in range(6)], 1: [120.0 + i for i in range(5)]}
    line = verdict(data.complete_returns_by_version()).line
    assert line.startswith("verdict: v1 beat v0: mean return 122.0 vs 102.5 = 1.19x, +19.5 (95% interval +")
    assert line.endswith("over 5 and 6 complete episodes")
    bins = return_by_robot_minute(data.episodes, RATE, is_complete=data.is_complete)
    # Ends at 20, 40, ..., 220 s and 235.68 s: the cut one is robot time (the last bin), but in no mean.
    assert sum(len(b.returns) for b in bins) == 11 and [b.cut for b in bins] == [0, 0, 0, 1]
    assert bins[-1].returns == [122.0, 123.0, 124.0]
    page = render(data)
    assert page.index(line) < page.index("<h2>Summary</h2>")
    assert "784 of 1000" in page and "1 cut short" in page


def test_without_the_robot_config_every_ended_episode_counts(tmp_path):
    data = RunData(RunLayout(tmp_path), episodes=in_order((LIMIT, 1.0, 0), (784, 0.7, 0)))
    assert len(data.complete_episodes()) == 2 and "time limit unknown" in render(data)


# -- the verdict -----------------------------------------------------------------------------


def test_verdict_when_no_learned_version_beat_v0():
    result = verdict({0: [100.0, 101.0, 99.0, 100.0], 1: [90.0, 92.0, 91.0], 2: [99.0, 101.0, 100.5]})
    assert result.beat is False
    assert result.line.startswith("verdict: no learned version beat v0 (best: v2): mean return 100.2 vs 100.0 = "
                                  "1.00x, +0.2 (95% interval -")
    assert result == verdict({0: [100.0, 101.0, 99.0, 100.0], 1: [90.0, 92.0, 91.0], 2: [99.0, 101.0, 100.5]})


def test_verdict_when_no_learned_version_ran():
    result = verdict({0: [10.0, 12.0, 11.0]})
    assert result.beat is None
    assert result.line == ("verdict: no learned version ran: v0 mean return 11.0 over 3 complete episodes, "
                           "no complete episode of v1 or later")


@pytest.mark.parametrize("returns, says", [
    ({0: [5.0], 1: [9.0, 9.5]}, "too few complete episodes to tell: v0 has 1, v1 2 (need >= 2 each)"),
    ({1: [9.0, 9.5]}, "too few complete episodes to tell: v0 has 0, v1 2 (need >= 2 each)"),
    ({0: [5.0, 6.0], 1: [9.0], 2: [8.0]}, "too few complete episodes to tell: v0 has 2, v1 1, v2 1 (need >= 2 each)"),
])
def test_verdict_with_too_few_episodes(returns, says):
    result = verdict(returns)
    assert result.beat is None and result.line == f"verdict: {says}"


def test_verdict_gives_no_ratio_against_a_non_positive_v0_mean():
    line = verdict({0: [-2.0, -1.0], 1: [3.0, 4.0]}).line
    assert line.startswith("verdict: v1 beat v0: mean return 3.5 vs -1.5 = ratio n/a (v0 mean <= 0), +5.0")


# -- forward travel ------------------------------------------------------------------------------


def test_forward_displacement_is_along_the_start_heading():
    yaw_90 = np.array([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])  # facing +y
    assert forward_displacement(np.zeros(3), np.array([1.0, 0, 0, 0]), np.array([1.5, 3.0, 0.3])) == 1.5
    assert forward_displacement(np.array([1.0, 1.0, 0]), yaw_90, np.array([4.0, -1.0, 0])) == pytest.approx(-2.0)


def test_travel_log_is_read_per_episode_and_per_version(tmp_path):
    eps = in_order((LIMIT, 100.0, 0), (LIMIT, 101.0, 0), (300, 20.0, 1, True), (500, 40.0, 1))
    log = TravelLog(RunLayout(tmp_path).travel_log)
    for i, e in enumerate(eps[:3]):  # the last stretch was never finished (the node was killed)
        log.begin(e.start_stamp - 0.5, np.zeros(3), np.array([1.0, 0, 0, 0]))
        log.finish(e.end_stamp + 0.5, np.array([0.5 * (i + 1), 0.2, 0.3]))
    with open(log.path, "a") as f:
        f.write('{"start": 1')  # a torn last line
    data = load_run(tmp_path)
    assert data.travel == [Travel(eps[i].start_stamp - 0.5, eps[i].end_stamp + 0.5, 0.5 * (i + 1)) for i in range(3)]
    assert [data.forward_m(e) for e in eps] == [0.5, 1.0, 1.5, None]
    data.episodes, data.episode_steps, data.control_rate_hz = eps, LIMIT, RATE
    page = render(data)
    assert "forward distance per episode (m)" in page and "<td>0.75</td>" in page and "<td>1.50</td>" in page
    assert json.loads(log.path.read_text().splitlines()[0])["forward_m"] == 0.5


# -- the bench's per-seed summary ----------------------------------------------------------------


def test_summary_of_a_run(tmp_path):
    """4 robot-minutes: v0 for the first two, then v1 (one fall), and an episode the stop cut after the budget."""
    eps = in_order(*[(LIMIT, 100.0, 0)] * 6, (LIMIT, 130.0, 1), (400, 30.0, 1, True), *[(LIMIT, 140.0, 1)] * 4,
                   (784, 90.0, 1))
    travel = [Travel(e.start_stamp, e.end_stamp, 1.0 if e.policy_version == 0 else 2.0) for e in eps]
    decisions = [Decision(1, 400, 0.0, True, [], "", {}, {}, {}), Decision(2, 800, 0.0, False, ["r"], "", {}, {}, {})]
    events = [PolicyEvent(0.0, 2, "canary_started", ""), PolicyEvent(1.0, 2, "rolled_back", "fell")]
    data = run_data(tmp_path, eps, travel=travel, decisions=decisions, events=events)
    s = summarize_run(data, seed=3, budget_minutes=4.0, wall_s=600.0)
    assert (s.seed, s.v0_mean, s.v0_episodes, s.falls, s.cut, s.promotions, s.rollbacks) == (3, 100.0, 6, 1, 0, 1, 1)
    # v0 ends at 20, ..., 120 s (the first 2 robot-minutes); the last 2 (ends in (120, 240] s): 130 at 140 s, the
    # fall at 148 s and the 140s at 168 ... 228 s. The cut one ends at 243.7 s, after the budget.
    assert s.last_episodes == 6 and s.last_mean == pytest.approx((130 + 30 + 4 * 140) / 6)
    assert (s.forward_first, s.forward_last, s.forward_mean) == (1.0, 2.0, 1.5)
    assert s.ratio == pytest.approx(1.2)
    assert s.verdict.startswith("verdict: no learned version beat v0 (best: v1): mean return 120.0 vs 100.0")
    assert summary_row(s) == "3 | 100.0 (6) | 120.0 (6) | 1.20x | 1.50, 1.00 -> 2.00 | 1 | 0 | 1 | 1 | 10.0"
    longer = summarize_run(data, seed=3, budget_minutes=4.1, wall_s=600.0)
    assert longer.cut == 1 and longer.last_mean == s.last_mean  # listed as cut, averaged nowhere


def test_summary_without_travel_log_or_robot_config(tmp_path):
    s = summarize_run(run_data(tmp_path, in_order((LIMIT, 100.0, 0))), seed=0, budget_minutes=1.0, wall_s=1.0)
    assert s.forward_mean is None and "| -, - -> - |" in summary_row(s)
    with pytest.raises(ValueError, match="control rate is unknown"):
        summarize_run(RunData(RunLayout(tmp_path)), seed=0, budget_minutes=1.0, wall_s=1.0)


def test_seeds_line_counts_the_seeds_that_reached_1_1x_v0(tmp_path):
    def summary(v0: float | None, last: float):
        eps = in_order(*([(LIMIT, v0, 0)] * 2 if v0 is not None else []), *[(LIMIT, last, 1)] * 2)
        return summarize_run(run_data(tmp_path, eps), seed=0, budget_minutes=1.4, wall_s=1.0)

    # budget 1.4 min: the last 2 robot-minutes are the whole run, so the last mean mixes v0 and v1.
    summaries = [summary(100.0, 130.0), summary(100.0, 119.0), summary(100.0, 100.0), summary(None, 50.0)]
    assert [s.ratio for s in summaries[:3]] == [pytest.approx(1.15), pytest.approx(1.095), 1.0]
    assert seeds_line(summaries) == ("last 2 robot-minutes' mean return >= 1.1x v0's in 1 of 4 seeds (1 not judged: "
                                     "no complete v0 or last-window episode, or v0's mean <= 0)")
