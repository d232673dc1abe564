"""The canary on the robot: its verdict (bootstrap interval, margin, over-optimism, not-enough-data
cases) and the policy manager acting on it (automatic rollback, waiting versions, operator force and
block, persistence across restarts, concurrent ticks and service calls), and the controller's episodes
as the replay store sees them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from thread_hammer import hammer

from dreamer_core.control import Controller, InitialPolicy, PolicyManager
from dreamer_core.control.canary import FinishedEpisode, bootstrap_interval, cannot_pass, judge, reward_per_step
from dreamer_core.control.policy_events import PolicyEvent
from dreamer_core.envs.a1_mujoco import A1MujocoEnv
from dreamer_core.robots.config import CanaryConfig, ConfigError, load_robot_config, parse_robot_config
from dreamer_core.storage import ReplayStore
from dreamer_core.storage.episodes import episodes

CANARY = CanaryConfig()  # the defaults: 5 episodes, 5 baseline episodes needed, margin 1 std, 90 %


class FakeRuntime:
    def __init__(self, version: int, imagined: float | None = None):
        self.version = version
        self.manifest = {"evaluation": {} if imagined is None else {"imagined_reward_per_step": imagined}}


def deliver(pm: PolicyManager, version: int, imagined: float | None = None) -> None:
    pm.accept(FakeRuntime(version, imagined))


def running(pm: PolicyManager) -> int:
    pm.take_switch()
    return pm.status()["active_version"]


def play(pm: PolicyManager, returns, steps: int = 101, ending: str = "time_limit") -> None:
    """Episodes of the running version end with these returns (as the controller reports them)."""
    version = pm.status()["active_version"]
    for ret in returns:
        pm.record_episode(FinishedEpisode(version, float(ret), steps, ending))


def trusted_v1(pm: PolicyManager) -> None:
    """The initial policy runs its episodes, then v1 arrives and passes its canary."""
    play(pm, GOOD)
    deliver(pm, 1)
    running(pm)
    play(pm, GOOD[:5])


def events(pm: PolicyManager) -> list[tuple[int, str]]:
    return [(e.version, e.event) for e in pm.take_events()]


@pytest.fixture
def state(tmp_path):
    return tmp_path / "state" / "a1_sim.json"


@pytest.fixture
def pm(state):
    return PolicyManager("a1_sim", state_path=state, canary=CANARY)


GOOD = [100.0, 104.0, 96.0, 102.0, 98.0, 101.0]  # mean 100.17, std 2.9


# -- the verdict ------------------------------------------------------------------------

def test_bootstrap_interval_is_seeded_and_covers_the_mean_as_theory_says():
    data = np.random.default_rng(0).normal(50.0, 10.0, size=400)
    low, high = bootstrap_interval(data, 0.9, 4000, np.random.default_rng(1))
    assert (low, high) == bootstrap_interval(data, 0.9, 4000, np.random.default_rng(1))
    half = 1.645 * data.std(ddof=1) / np.sqrt(len(data))  # the normal-theory 90 % half-width
    assert low < data.mean() < high and (high - low) / 2 == pytest.approx(half, rel=0.1)
    narrow = bootstrap_interval(data, 0.5, 4000, np.random.default_rng(1))
    assert low < narrow[0] < narrow[1] < high


def test_a_canary_as_good_as_its_baseline_passes_with_every_figure_reported():
    verdict = judge(2, [(r, 101) for r in GOOD[:5]], 1, [(r, 101) for r in GOOD], None, CANARY,
                    np.random.default_rng(2))
    assert verdict.passed and verdict.values["return_check"] == "passed"
    assert verdict.values["over_optimism_check"] == "not judged" and verdict.values["over_optimism"] is None
    v = verdict.values
    assert v["baseline_low"] < v["baseline_mean"] < v["baseline_high"]
    assert v["margin"] == pytest.approx(max(np.std(GOOD, ddof=1), 0.05 * np.mean(GOOD)))
    assert v["return_threshold"] == pytest.approx(v["baseline_low"] - v["margin"])
    assert v["reward_per_step"] == pytest.approx(sum(GOOD[:5]) / 500)
    assert "no imagined_reward_per_step" in verdict.reason
    json.dumps(v)  # goes into PolicyEvent.values_json as it is


TIGHT = [(100.0 + d, 101) for d in (-1, 1, -1, 1, 0, 0)]  # std 0.9
LOOSE = [(100.0 + d, 101) for d in (-12, 12, -8, 8, 0, 0)]  # std 8.9


def test_the_margin_is_relative_to_the_baseline_spread():
    canary = [(90.0, 101)] * 5  # 10 below a baseline mean of 100
    failed = judge(2, canary, 1, TIGHT, None, CANARY, np.random.default_rng(0))
    assert not failed.passed and failed.reason.startswith("return 90.00 < ")
    assert failed.values["margin"] == pytest.approx(5.0)  # 5 % of the mean: more than one std (0.9)
    loose = judge(2, canary, 1, LOOSE, None, CANARY, np.random.default_rng(0))
    assert loose.passed and loose.values["margin"] == pytest.approx(np.std([r for r, _ in LOOSE], ddof=1))
    # The same gap with no margin at all fails the loose baseline too (it is below the interval).
    strict = CanaryConfig(return_margin=0.0, return_tolerance=0.0)
    assert not judge(2, canary, 1, LOOSE, None, strict, np.random.default_rng(0)).passed


def test_the_tolerance_keeps_a_very_repeatable_baseline_from_rejecting_a_slight_regression():
    canary = [(97.0, 101)] * 5  # 3 % below, far beyond one std of the baseline (0.9)
    assert judge(2, canary, 1, TIGHT, None, CANARY, np.random.default_rng(0)).passed
    spread_only = CanaryConfig(return_tolerance=0.0)
    assert not judge(2, canary, 1, TIGHT, None, spread_only, np.random.default_rng(0)).passed


def test_over_optimism_rolls_back_even_a_canary_that_beats_its_baseline():
    canary = [(200.0, 101)] * 5  # 2.0 per rewarded step (the first row of an episode has no reward)
    assert reward_per_step(canary) == pytest.approx(2.0)
    verdict = judge(2, canary, 1, [(r, 101) for r in GOOD], 3.5, CANARY, np.random.default_rng(0))
    assert not verdict.passed and verdict.values["return_check"] == "passed"
    assert verdict.values["over_optimism"] == pytest.approx(1.5)
    # The limit is a share of the baseline's realised reward per step (here about 1.0), not reward units.
    assert verdict.values["over_optimism_limit"] == pytest.approx(0.25 * sum(GOOD) / 600)
    assert verdict.reason == ("over-optimism 1.500 = imagined 3.500 - realised 2.000 reward/step "
                              "(limit 0.250 = 0.25 x |v1's 1.002|)")
    assert judge(2, canary, 1, [(r, 101) for r in GOOD], 2.2, CANARY, np.random.default_rng(0)).passed
    # The same promise against a baseline ten times the scale is within its limit.
    assert judge(2, [(2000.0, 101)] * 5, 1, [(10 * r, 101) for r in GOOD], 21.0, CANARY,
                 np.random.default_rng(0)).passed


def test_with_too_few_baseline_episodes_only_over_optimism_judges():
    few = [(r, 101) for r in GOOD[:4]]
    bad = judge(2, [(10.0, 101)] * 5, 1, few, 1.5, CANARY, np.random.default_rng(0))  # 0.1 per step
    assert not bad.passed and bad.values["return_check"] == "not judged"
    ok = judge(2, [(100.0, 101)] * 5, 1, few, 1.2, CANARY, np.random.default_rng(0))  # 1.0 per step
    assert ok.passed and "v1 has 4 complete episodes, 5 needed" in ok.reason


def test_a_canary_nothing_can_judge_fails_closed_unless_it_is_the_first_learned_policy():
    first = judge(1, [(50.0, 101)] * 5, 0, [], None, CANARY, np.random.default_rng(0))
    assert first.passed and "first learned policy" in first.reason
    later = judge(4, [(50.0, 101)] * 5, 3, [(1.0, 101)] * 2, None, CANARY, np.random.default_rng(0))
    assert not later.passed and later.reason.startswith("cannot be judged: return not judged: v3 has 2")


def test_episode_endings_are_named_and_only_the_policy_s_own_ends_count():
    assert FinishedEpisode(1, 1.0, 5, "fall").counts and FinishedEpisode(1, 1.0, 5, "policy_fault").counts
    assert not FinishedEpisode(1, 1.0, 5, "swap").counts and not FinishedEpisode(1, 1.0, 5, "fault").counts
    with pytest.raises(ValueError, match="unknown episode ending"):
        FinishedEpisode(1, 1.0, 5, "bored")
    assert json.loads(PolicyEvent(1, "forced", "", {"x": float("nan")}).values_json()) == {"x": None}


def test_canary_config_windows_are_checked(tmp_path):
    config = load_robot_config("a1_sim").model_dump(exclude_none=True)
    config["canary"] = {"episodes": 30}
    with pytest.raises(ConfigError, match=r"canary: .*episodes \(30\) must be <= baseline_episodes \(20\)"):
        parse_robot_config(config, source="bad.yaml")
    config["canary"] = {"max_over_optimism": 2.0}
    with pytest.raises(ConfigError, match=r"canary: max_over_optimism: no longer a canary key "
                                          r"\(max_over_optimism -> over_optimism_share: .*reward scale"):
        parse_robot_config(config, source="old.yaml")


def test_over_optimism_without_a_baseline_reward_is_not_judged():
    verdict = judge(2, [(50.0, 101)] * 5, 1, [(0.0, 1)] * 5, 3.0, CANARY, np.random.default_rng(0))
    assert verdict.values["over_optimism_check"] == "not judged" and verdict.values["over_optimism"] is None
    assert "v1 has no rewarded step to scale the limit" in verdict.reason


def test_a_canary_clearly_below_the_best_trusted_version_fails_though_within_its_baseline_s_margin(pm, state):
    play(pm, GOOD)  # v0: mean 100.17, the best trusted version so far
    deliver(pm, 1)
    running(pm)
    play(pm, [95.0, 96.0, 94.0, 95.0, 95.0])  # within v0's margin (threshold about 93.3): trusted
    assert events(pm) == [(1, "canary_started"), (1, "canary_passed")]
    deliver(pm, 2)
    assert running(pm) == 2
    play(pm, [91.0] * 5)  # within v1's margin (threshold about 89.9), but clearly below v0's
    assert running(pm) == 1
    (_, rolled_back) = pm.take_events()
    values = json.loads(rolled_back.values_json())
    assert values["return_check"] == "passed" and values["best_baseline_return_check"] == "failed"
    assert values["baseline_version"] == 1 and values["best_baseline_version"] == 0
    assert values["best_baseline_mean"] == pytest.approx(np.mean(GOOD))
    assert values["return_mean"] < values["best_baseline_return_threshold"] < values["return_threshold"] + 5
    assert rolled_back.reason.startswith("return 91.00 < ") and "v0's (the best trusted)" in rolled_back.reason
    pm.flush()
    assert json.loads(state.read_text())["best"]["version"] == 0  # kept across restarts
    restarted = PolicyManager("a1_sim", state_path=state, canary=CANARY)
    assert restarted._state.best == pm._state.best


def test_the_best_trusted_version_follows_the_highest_mean_and_forgets_a_blocked_one(pm):
    play(pm, [50.0] * 5)
    assert pm._state.best.version == 0
    deliver(pm, 1)
    running(pm)
    play(pm, [80.0, 81.0, 79.0, 80.0, 80.0])  # passes, and beats v0
    assert pm._state.best.version == 1 and len(pm._state.best.episodes) == 5
    play(pm, [82.0])  # its later episodes keep the best's window current
    assert len(pm._state.best.episodes) == 6
    pm.block(1)
    assert pm._state.best is None
    # Early judgement counts the best trusted version too: a canary whose best case is below it is lost.
    baseline, best = [(50.0, 101)] * 5, (3, [(100.0, 101), (101.0, 101), (99.0, 101), (100.0, 101), (100.0, 101)])
    assert not cannot_pass([(60.0, 101)], baseline, CANARY, np.random.default_rng(0))
    assert cannot_pass([(60.0, 101)], baseline, CANARY, np.random.default_rng(0), best)


# -- the policy manager acting on verdicts ---------------------------------------------------

def test_a_bad_canary_is_rolled_back_at_the_next_tick_and_never_accepted_again(pm, state):
    play(pm, GOOD)  # the initial policy's episodes: v1's baseline
    deliver(pm, 1)
    assert running(pm) == 1 and pm.status()["canary"] == "v1 0/5 episodes"
    assert events(pm) == [(1, "canary_started")]
    play(pm, GOOD[:5])
    assert events(pm) == [(1, "canary_passed")] and pm.status()["trusted_versions"] == [1]
    assert pm.status()["canary"] == "none" and pm.status()["last_verdict"].startswith("v1 passed: return ")
    deliver(pm, 2)
    assert running(pm) == 2
    play(pm, [95.0, 94.0, 96.0, 95.0])  # below the baseline, but 104 (its best) next would still pass
    assert pm.take_switch() is None and pm.status()["canary"] == "v2 4/5 episodes"
    play(pm, [41.0])
    switch = pm.take_switch()  # the very next tick
    assert switch.version == 1 and switch.runtime.version == 1
    (started, rolled_back) = pm.take_events()
    assert (started.event, rolled_back.event, rolled_back.version) == ("canary_started", "rolled_back", 2)
    values = json.loads(rolled_back.values_json())
    assert values["returns"] == [95.0, 94.0, 96.0, 95.0, 41.0] and values["fallback_version"] == 1
    assert values["baseline_version"] == 1 and values["baseline_episodes"] == 5
    assert values["return_mean"] < values["return_threshold"] and rolled_back.reason.startswith("return 84.20 < ")
    assert pm.status()["last_verdict"].startswith("v2 rolled back to v1: return 84.20 < ")
    assert pm.status()["rejected_versions"] == [2]
    deliver(pm, 2)
    assert pm.status()["last_rejection"] == "v2: version_rejected" and running(pm) == 1
    pm.flush()
    saved = json.loads(state.read_text())
    assert saved["rejected"] == [2] and saved["trusted"] == [1] and saved["canary"] is None
    restarted = PolicyManager("a1_sim", state_path=state, canary=CANARY)
    deliver(restarted, 2)
    assert restarted.status()["last_rejection"] == "v2: version_rejected"
    assert restarted.status()["last_verdict"] == pm.status()["last_verdict"]


def test_a_canary_that_cannot_pass_any_more_is_rolled_back_before_its_other_episodes(pm):
    trusted_v1(pm)  # v1's episodes (100, 104, 96, 102, 98) are v2's baseline: threshold 93.00, best 104
    deliver(pm, 2)
    assert running(pm) == 2
    play(pm, [60.0])  # four more at 104 would still reach a mean of 95.2: it runs on
    assert pm.take_switch() is None and pm.status()["canary"] == "v2 1/5 episodes"
    play(pm, [10.0], ending="fall")  # (60 + 10 + 3 × 104) / 5 = 76.4 < 93: lost already
    switch = pm.take_switch()
    assert switch.version == 1 and pm.status()["rejected_versions"] == [2]
    rolled_back = next(e for e in pm.take_events() if e.event == "rolled_back")
    values = json.loads(rolled_back.values_json())
    assert values["episodes"] == 2 and values["returns"] == [60.0, 10.0] and values["return_mean"] == 35.0
    assert values["best_case_mean"] == pytest.approx(76.4) and values["return_threshold"] == pytest.approx(93.0)
    assert rolled_back.reason.startswith("return at best 76.40 after 2/5 episodes (the rest counted as v1's best) "
                                         "< 93.00 = ")


def test_no_early_verdict_without_a_baseline_or_once_the_episodes_are_done():
    rng = np.random.default_rng
    baseline = [(ret, 101) for ret in GOOD[:5]]
    assert cannot_pass([(1.0, 101)], baseline, CANARY, rng(0))
    assert not cannot_pass([(1.0, 101)], baseline[:4], CANARY, rng(0))  # fewer than min_baseline_episodes
    assert not cannot_pass([(1.0, 101)] * 5, baseline, CANARY, rng(0))  # judge's own verdict, not an early one
    assert not cannot_pass([], baseline, CANARY, rng(0))


def test_newer_versions_wait_for_the_verdict_and_then_run_as_the_next_canary(pm):
    play(pm, GOOD)
    deliver(pm, 1)
    running(pm)
    deliver(pm, 2)
    deliver(pm, 3)
    assert running(pm) == 1 and pm.status()["held_versions"] == [1, 2, 3]
    play(pm, GOOD[:5])
    assert running(pm) == 3  # the newest waiting version; v2 is skipped, never run
    assert events(pm) == [(1, "canary_started"), (1, "canary_passed"), (3, "canary_started")]
    started = pm.status()
    assert started["canary"] == "v3 0/5 episodes" and started["previous_version"] == 1


def test_a_rollback_lets_the_next_waiting_version_start_after_a_complete_episode(pm):
    trusted_v1(pm)
    deliver(pm, 2)
    running(pm)
    deliver(pm, 3)  # waits for v2's verdict
    play(pm, [1.0] * 5)
    assert running(pm) == 1
    play(pm, [100.0])  # v1 runs a complete episode again, then v3 gets its turn
    assert running(pm) == 3 and pm.status()["canary"] == "v3 0/5 episodes"


def test_cut_episodes_do_not_count(pm):
    play(pm, GOOD)
    deliver(pm, 1)
    running(pm)
    for ending in ("swap", "fault", "stop"):
        play(pm, [0.0], ending=ending)
    play(pm, [float("nan")])
    assert pm.status()["canary"] == "v1 0/5 episodes"
    play(pm, [99.0], ending="fall")
    assert pm.status()["canary"] == "v1 1/5 episodes" and pm.status()["episode_return_last"] == 99.0


def test_a_restart_mid_canary_resumes_it_against_the_same_baseline(state):
    pm = PolicyManager("a1_sim", state_path=state, canary=CANARY)
    trusted_v1(pm)
    deliver(pm, 2)
    running(pm)
    play(pm, [95.0, 95.0, 95.0])  # below v1's 100 but not yet lost (two more at 104 would pass)
    pm.close()  # the node stops: what the control thread recorded is written
    restarted = PolicyManager("a1_sim", state_path=state, canary=CANARY)
    assert restarted.status()["episode_return_version"] == 2 and restarted.status()["canary"] == "none"
    deliver(restarted, 2)  # the learner's transient-local topic sends it again; v1 is not loaded any more
    assert running(restarted) == 2 and restarted.status()["canary"] == "v2 3/5 episodes"
    (started,) = restarted.take_events()
    assert json.loads(started.values_json())["resumed"] is True and "resumed at 3/5" in started.reason
    play(restarted, [30.0])  # the three before the restart count: (3 × 95 + 30 + 104) / 5 < 93, lost
    assert restarted.take_switch().runtime is None  # v1 is not held: back to the initial policy
    (rolled_back,) = restarted.take_events()
    values = json.loads(rolled_back.values_json())
    assert values["baseline_version"] == 1 and values["fallback_version"] == 0 and values["episodes"] == 4
    assert values["returns"] == [95.0, 95.0, 95.0, 30.0]


def test_a_new_version_waits_until_there_is_a_baseline_to_compare_it_with(pm):
    deliver(pm, 1)
    assert running(pm) == 0
    play(pm, GOOD[:4])
    assert running(pm) == 0
    play(pm, GOOD[4:5])  # the initial policy's fifth complete episode
    assert running(pm) == 1 and pm.status()["canary"] == "v1 0/5 episodes"


def test_the_manifest_s_imagined_reward_is_held_against_the_realised_one(pm):
    play(pm, GOOD)
    deliver(pm, 1, imagined=5.0)
    running(pm)
    play(pm, GOOD[:5])  # as good as the initial policy, but 1.0 per rewarded step: 4.0 below the promise
    assert running(pm) == 0
    verdict = pm.status()["last_verdict"]
    assert verdict.startswith("v1 rolled back to v0: over-optimism 4.00")


def test_an_operator_forces_a_canary_through_and_a_rejected_version_back(pm, state):
    play(pm, GOOD)
    deliver(pm, 1)
    running(pm)
    deliver(pm, 2)  # waits behind v1's canary
    ok, message = pm.force(1, "tested on the bench")
    assert ok and message == "v1 trusted: its canary ends as passed" and running(pm) == 1
    play(pm, GOOD[:5])  # v2 waits until v1 has episodes to compare it with
    assert running(pm) == 2
    (forced,) = [e for e in pm.take_events() if e.event == "forced"]
    assert forced.reason == "v1 forced by the operator (was canary): tested on the bench"
    assert json.loads(forced.values_json()) == {"operator_reason": "tested on the bench", "running": True,
                                                "was": "canary"}
    pm.block(2, "limps")
    assert running(pm) == 1 and pm.force(1) == (True, "v1 is already trusted")
    assert pm.force(2)[1].startswith("v2 trusted: no longer rejected")
    deliver(pm, 2)  # accepted again, and trusted: no canary
    assert running(pm) == 2 and pm.status()["canary"] == "none"
    assert pm.force(7)[1] == "v7 trusted: it runs without a canary when its bundle arrives"
    assert pm.force(0) == (False, "v0 is the initial policy: it is always trusted")
    pm.flush()
    assert json.loads(state.read_text())["trusted"] == [1, 2, 7]


def test_an_operator_blocks_a_running_canary_and_a_version_not_yet_seen(pm):
    play(pm, GOOD)
    deliver(pm, 1)
    running(pm)
    assert pm.block(1, "wrong gait") == (True, "v1 rejected; v0 runs from the next tick")
    assert running(pm) == 0 and pm.status()["canary"] == "none"
    assert pm.block(5) == (True, "v5 rejected; its bundle will be refused")
    deliver(pm, 5)
    assert pm.status()["last_rejection"] == "v5: version_rejected"
    blocked = [e for e in pm.take_events() if e.event == "blocked"]
    assert [(e.version, json.loads(e.values_json())["running"]) for e in blocked] == [(1, True), (5, False)]
    play(pm, GOOD)  # a verdict arriving late for a blocked canary changes nothing
    assert pm.status()["rejected_versions"] == [1, 5]


def test_without_a_canary_config_every_version_is_trusted(state):
    pm = PolicyManager("a1_sim", state_path=state)
    deliver(pm, 1)
    deliver(pm, 2)
    assert running(pm) == 2 and pm.status()["canary"] == "none" and pm.take_events() == []


def test_concurrent_ticks_episodes_and_operator_calls_keep_the_invariants(state):
    pm = PolicyManager("a1_sim", state_path=state, canary=CanaryConfig(episodes=2, min_baseline_episodes=2), history=3)
    ran: list[int] = []

    def publisher(rng):
        version = rng.randint(1, 40)
        pm.accept(FakeRuntime(version, rng.choice([None, 0.5, 5.0])))

    def operator(rng):
        version = rng.randint(0, 40)
        rng.choice([pm.force, pm.block, lambda v, r="": pm.pin(v), lambda v, r="": pm.rollback(v)])(version, "")
        pm.status()

    def control(rng):
        switch = pm.take_switch()
        if switch is not None:
            ran.append(switch.version)
        version = pm.status()["active_version"]
        pm.record_episode(FinishedEpisode(version, rng.uniform(0, 100), 50, rng.choice(["time_limit", "swap"])))

    def node(rng):
        pm.take_events()
        pm.flush()

    errors = hammer([publisher, operator, control, node])
    assert not errors, errors
    assert ran, "the control thread never saw a switch"
    pm.take_switch()
    status = pm.status()
    assert status["active_version"] == 0 or status["active_version"] not in status["rejected_versions"]
    assert not set(status["trusted_versions"]) & set(status["rejected_versions"])
    pm.close()
    saved = json.loads(state.read_text())
    assert saved["rejected"] == status["rejected_versions"] and saved["trusted"] == status["trusted_versions"]
    PolicyManager("a1_sim", state_path=state, canary=CANARY)  # the written state loads


# -- the controller's episodes are the replay store's ------------------------------------

class ConstantPolicy:
    def __init__(self, version: int, value: float):
        self.version, self.action = version, np.full(12, value, np.float32)

    def reset(self):
        pass

    def step(self, obs, *, explore, is_first=False, rng=None):
        return self.action.copy()

    def executed(self, action):
        pass


def test_controller_episodes_reach_the_manager_as_the_replay_store_sees_them(tmp_path):
    config = load_robot_config("a1_sim")
    pm = PolicyManager(config.robot_id, canary=CanaryConfig(episodes=2, min_baseline_episodes=2))
    ctrl = Controller(config, session_id="s", initial_policy=InitialPolicy(config.act_dim, "stand"), policies=pm)
    ctrl.max_steps = 20
    env = A1MujocoEnv(config)
    with ReplayStore(tmp_path, obs_dim=config.obs_dim, act_dim=config.act_dim) as store:
        def drive(ticks):
            for _ in range(ticks):
                signals = env.read_signals()
                out = ctrl.tick(signals, now=signals.stamp)
                env.apply_joint_targets(out.joint_targets)
                for t in out.transitions:
                    store.add(t)
        drive(45)  # two episodes of the initial policy, then 5 steps of a third
        pm.accept(ConstantPolicy(1, 0.05))  # swaps mid-episode: the third one is cut
        drive(41)  # the swap tick, then two v1 episodes
        found = list(episodes(store.iter_steps()))
    assert [(e.policy_version, e.steps, e.complete) for e in found] == [
        (0, 20, True), (0, 20, True), (0, 6, True), (1, 20, True), (1, 20, True)]
    assert not any(e.mixed_versions for e in found)
    (verdict,) = [e for e in pm.take_events() if e.event in ("canary_passed", "rolled_back")]
    values = json.loads(verdict.values_json())
    # The canary judged exactly the complete v1 episodes the store holds, not the cut v0 one.
    assert values["returns"] == pytest.approx([e.ret for e in found[3:5]], rel=1e-5)
    assert values["baseline_mean"] == pytest.approx(np.mean([e.ret for e in found[:2]]), rel=1e-5)
