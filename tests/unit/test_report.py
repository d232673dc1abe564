"""The session report of a real short run: a replay store with sessions run by several policy versions,
a learner that trained, promoted, signed and held back candidates (TensorBoard events, learner state,
bundles), and what dreamer-stack records (diagnostics with control timing, the robot's policy events).
The page is rendered, then opened in headless Chromium to check that every figure loads."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from dreamer_core.control.timing import TickStats
from dreamer_core.deploy import generate_keypair
from dreamer_core.report import page
from dreamer_core.report.cli import main as report_main
from dreamer_core.report.page import SECTIONS, write_page
from dreamer_core.report.robot_time import return_by_robot_minute
from dreamer_core.report.run_data import load_run
from dreamer_core.report.run_layout import RunLayout
from dreamer_core.report.run_record import RunRecorder
from dreamer_core.report.session_returns import return_per_session
from dreamer_core.report.tensorboard_scalars import read_scalars
from dreamer_core.robots.config import load_robot_config, resolve_config_path
from dreamer_core.runners.learner import LearnerRunner
from dreamer_core.runners.learner_settings import LearnerSettings
from dreamer_core.storage import ReplayStore, Transition

EPISODE = 50  # steps per episode in the synthetic sessions
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def add_session(store: ReplayStore, robot, session: str, start: float, versions: list[int], reward: float,
                rng) -> None:
    """One session of episodes, one per entry of ``versions`` (a pair: the policy swapped mid-episode)."""
    seq = 0
    for version in versions:
        first, second = (version, version) if isinstance(version, int) else version
        for i in range(EPISODE):
            store.add(Transition(
                robot_id=robot.robot_id, session_id=session, seq=seq, stamp=start + seq * robot.dt,
                obs=rng.normal(size=robot.obs_dim).astype(np.float32),
                action=rng.uniform(-1, 1, robot.act_dim).astype(np.float32),
                reward=0.0 if i == 0 else reward + 0.1 * rng.normal(), is_first=i == 0, is_last=i == EPISODE - 1,
                is_terminal=False, policy_version=first if i < EPISODE // 2 else second))
            seq += 1


def control_diagnostics(session_id: str, ticks: int, rng) -> dict[str, str]:
    """The control node's timing values after ``ticks`` ticks, from the real TickStats."""
    stats, period, now = TickStats(0.02), 0.02, 0.0
    for _ in range(ticks):
        start = now + abs(rng.normal(0, 2e-4))
        stats.record(now, start, start + rng.lognormal(np.log(6e-4), 0.4))
        now += period
    summary = {k: v if isinstance(v, int) else f"{v:.3f}" for k, v in stats.summary().items()}
    return {"session_id": session_id, "policy_version": "2", **summary, **stats.histograms()}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A short run: sessions with v0, a learner that promotes v1 and v2, sessions with v1 and v2, a held-back
    candidate, the robot rolling v2 back, and the launcher's records."""
    root = tmp_path_factory.mktemp("run")
    layout = RunLayout(root)
    config = load_robot_config("a1_sim")
    # Not the gate's defaults: this test is about what the report shows of decisions both ways.
    lenient = config.model_copy(update={"trust": config.trust.model_copy(
        update={"min_skill": -1e9, "max_skill_drop": 1e9, "max_disagreement_ratio": 1e9, "min_held_out_blocks": 1})})
    strict = config.model_copy(update={"trust": lenient.trust.model_copy(update={"min_skill": 0.999})})
    rng = np.random.default_rng(0)
    now = time.time()
    with ReplayStore(layout.replay, obs_dim=config.obs_dim, act_dim=config.act_dim,
                     spec=config.policy_spec()) as store:
        add_session(store, config, "day1", now - 86400, [0] * 6, 0.1, rng)
        add_session(store, config, "day2-a", now - 600, [0] * 6, 0.15, rng)
    generate_keypair(root / "keys")
    settings = LearnerSettings(replay_dir=layout.replay, run_dir=layout.learner, min_steps=400,
                               export_every_updates=3, checkpoint_every_updates=3, updates_per_iteration=3,
                               nice=0, private_key=root / "keys" / "policy_signing.key")
    runner = LearnerRunner(lenient, settings, log=lambda _: None)
    promoted = [b.version for _ in range(2) for b in runner.iterate()]
    runner.checkpoint()
    runner.close()
    assert promoted == [1, 2]
    with ReplayStore(layout.replay, obs_dim=config.obs_dim, act_dim=config.act_dim) as store:
        add_session(store, config, "day2-b", now + 5, [1] * 5, 0.3, rng)
        add_session(store, config, "day2-c", now + 60, [2, 2, (2, 1), 1], 0.45, rng)
    held = LearnerRunner(strict, settings, log=lambda _: None)  # resumes; this gate refuses
    assert held.iterate() == []
    held.close()
    # What dreamer-stack gives the control node: the robot config the report takes the control rate and the
    # episode's time limit from (here EPISODE rows, the synthetic episodes' length: they all ran to the limit).
    robot = yaml.safe_load(resolve_config_path("a1_sim").read_text())
    robot["episode"] = {"max_steps": EPISODE}
    (root / "robot.yaml").write_text(yaml.safe_dump(robot, sort_keys=False))
    layout.params.mkdir()
    (layout.params / "control_node.0.yaml").write_text(
        f"/**:\n  ros__parameters:\n    robot_config: {root / 'robot.yaml'}\n")
    recorder = RunRecorder(root)
    recorder.diagnostics({"control_node": control_diagnostics("s-1", 400, rng), "replay_node": {"steps": "1"}},
                         now=now)
    recorder.diagnostics({"control_node": control_diagnostics("s-1", 900, rng)}, now=now + 10)
    recorder.diagnostics({"control_node": control_diagnostics("s-2", 300, rng)}, now=now + 20)
    recorder.policy_event(now + 100, config.robot_id, 2, "rolled_back", "canary: return 3.1 below 4.0")
    assert recorder.replay() == 21 and recorder.replay() == 0  # every complete episode, once
    assert recorder.decisions() == 3
    recorder.close()
    return root


def test_run_data_reads_every_source(run_dir):
    data = load_run(run_dir)
    assert data.notes == {"travel log": f"{RunLayout(run_dir).travel_log} does not exist"}  # no sim_robot here
    assert data.episode_steps == EPISODE and not data.cut_episodes()
    assert len(data.episodes) == 21 and sum(e.mixed_versions for e in data.episodes) == 1
    assert {e.policy_version for e in data.episodes} == {0, 1, 2}
    assert [(d.version, d.promoted) for d in data.decisions] == [(1, True), (2, True), (3, False)]
    assert sorted(data.manifests) == [1, 2] and sorted(data.imagined_reward_per_step()) == [1, 2]
    k = load_robot_config("a1_sim").trust.open_loop_steps
    for d in data.decisions:  # what the gate measured, against which thresholds, and the skill curves
        assert d.thresholds["min_skill"] in (-1e9, 0.999) and "reward_skill" in d.metrics
        assert len(d.curves["skill_reward"]) == len(d.curves["skill_continue_train"]) == k
    assert data.decisions[-1].reasons[0].startswith("reward skill") and data.decisions[-1].summary
    # What the stack's closing lines say when the actor had not trained yet (xs: no actor warm-up).
    assert data.learner_updates == 9 and data.actor_warmup_updates == 0
    assert any(tag.startswith("train/loss/") for tag in data.scalars)
    assert [s for _, s in data.control] and data.events[0].event == "rolled_back"


def test_returns_binned_by_robot_minute(run_dir):
    data = load_run(run_dir)
    assert data.control_rate_hz == 50.0  # a1_sim, from the control node's parameters
    # 21 episodes of 50 steps at 50 Hz: one robot-second each, 21 s in all; bins of 6 s.
    bins = return_by_robot_minute(data.episodes, data.control_rate_hz, bin_minutes=0.1, is_complete=data.is_complete)
    assert len(bins) == 4 and [b.start_min for b in bins] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert sum(len(b.returns) for b in bins) == 21
    assert set(bins[0].versions) == {0} and 2 in bins[-1].versions
    assert bins[-1].mean_return > bins[0].mean_return  # the later versions were given more reward
    with pytest.raises(ValueError, match="bin_minutes"):
        return_by_robot_minute(data.episodes, 50.0, bin_minutes=0, is_complete=data.is_complete)


def test_return_per_session_in_the_order_the_sessions_started(run_dir):
    sessions = return_per_session(load_run(run_dir))
    assert [(s.number, s.session_id) for s in sessions] == [(1, "day1"), (2, "day2-a"), (3, "day2-b"), (4, "day2-c")]
    assert [len(s.returns) for s in sessions] == [6, 6, 5, 4]  # complete episodes
    assert [s.versions for s in sessions] == [[0], [0], [1], [1, 2]]  # every version that acted, swaps included
    # 49 rewarded steps per episode at 0.1, 0.15, 0.3 and 0.45 (noise 0.1 per step).
    assert [s.mean_return for s in sessions] == pytest.approx([4.9, 7.35, 14.7, 22.05], abs=1.5)
    # Every step of these sessions is in a complete episode: reward per step is the returns over the steps.
    assert [s.reward_per_step for s in sessions] == pytest.approx([r * 49 / 50 for r in (0.1, 0.15, 0.3, 0.45)],
                                                                  abs=0.03)
    assert sessions[2].line() == (f"session 3 (day2-b): mean return {sessions[2].mean_return:.2f} over 5 complete "
                                  f"episodes (reward {sessions[2].reward_per_step:.3f} per step), versions v1")


def test_launcher_tensorboard_has_real_returns_decisions_and_timing(run_dir):
    scalars = read_scalars(RunLayout(run_dir).launcher_tensorboard)
    returns = scalars["real/episode_return"]
    assert len(returns.values) == 21 and list(returns.steps) == list(range(1, 22))
    by_version = {tag.rsplit("/", 1)[1]: len(s.values) for tag, s in scalars.items()
                  if tag.startswith("real/episode_return_by_version/")}
    assert by_version == {"v0000": 12, "v0001": 6, "v0002": 2}  # the episode with a swap mid-way is left out
    assert list(scalars["policy/promoted_version"].values) == [1, 2]
    assert list(scalars["policy/held_back_version"].values) == [3]
    assert list(scalars["robot/rolled_back"].values) == [2]
    assert list(scalars["control/latency_p99_ms"].steps) == [400, 900, 300]


def test_report_has_a_figure_for_every_section(run_dir, tmp_path, capsys):
    assert report_main([str(run_dir), "--out", str(tmp_path / "r.html")]) == 0
    verdict_line = capsys.readouterr().out.splitlines()[0]
    assert verdict_line.startswith("verdict: v2 beat v0: mean return ")  # v2 was given the most reward
    page = (tmp_path / "r.html").read_text()
    assert page.index(verdict_line) < page.index("<h2>Summary</h2>")  # the page opens with the same line
    assert "No data" not in page, re.findall(r"No data: [^<]*", page)
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == len(SECTIONS)
    # The decisions table: the held-back candidate's reason, and each value beside its threshold.
    assert "v3" in page and "held back" in page and re.search(r"reward skill -?[\d.]+ &lt; 0.999 at k=\d+", page)
    assert "reward skill" in page and "(≥ 0.999)" in page and "(≥ -1e+09)" in page and "disagreement" in page
    assert "interval high" in page and "(≥ −1e+09)" in page  # v2 against v1, the running model, on the same windows
    assert "rolled_back" in page and "canary: return 3.1 below 4.0" in page
    # Return per session: one row per session, its mean return and the versions that ran in it.
    table = page[page.index('<h2 id="sessions">'):page.index('<h2 id="returns">')]
    assert table.count("<tr>") == 5 and "day2-c" in table and "<td>v1 v2</td>" in table


def test_report_degrades_to_notes_when_sources_are_missing_or_damaged(tmp_path):
    (tmp_path / "learner").mkdir()
    (tmp_path / "learner" / "learner_state.json").write_text("{not json")
    page = write_page(load_run(tmp_path)).read_text()
    notes = re.findall(r'<p class="nodata">No data: ([^<]*)\.</p>', page)
    assert len(notes) == len(SECTIONS) and "<img" not in page
    assert any("replay" in n and "does not exist" in n for n in notes)
    assert "unreadable: JSONDecodeError" in page  # the sources table says what was wrong


def test_report_cli_refuses_a_missing_run_dir(tmp_path, capsys):
    assert report_main([str(tmp_path / "nope")]) == 1
    assert "is not a directory" in capsys.readouterr().err


def images_loaded_in_chromium(page, tmp_path) -> tuple[int, int]:
    """(loaded, total) images of ``page`` once Chromium has loaded it (a copy with a check script added)."""
    probe = tmp_path / "probe.html"
    script = ("<script>window.addEventListener('load', () => { const imgs = [...document.images]; "
              "document.body.dataset.loaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length; "
              "document.body.dataset.total = imgs.length; });</script>")
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                             "--virtual-time-budget=10000", probe.as_uri()],
                            capture_output=True, text=True, timeout=120)
    found = re.search(r'data-loaded="(\d+)" data-total="(\d+)"', result.stdout)
    assert found, result.stdout[:2000] + result.stderr[-2000:]
    return int(found[1]), int(found[2])


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package `chromium`; "
                                              ".ci/run installs it)")
def test_every_figure_loads_in_headless_chromium(run_dir, tmp_path):
    page = write_page(load_run(run_dir), tmp_path / "report.html")
    loaded, total = images_loaded_in_chromium(page, tmp_path)
    assert total == len(SECTIONS) and loaded == total


def test_the_summary_says_what_the_robot_explored_with():
    def said(*values):
        control = [(float(i), {"exploration": v}) for i, v in enumerate(values)]
        return page._exploration(SimpleNamespace(control=control))

    noise = "random noise of amplitude 0.30 around every version's mean"
    assert said(noise, noise) == f"{noise} (every version explored alike)"
    assert said("mean actions (v0: random noise of amplitude 0.30)").endswith("(no noise on learned versions)")
    assert said(noise, "mean actions (v0: random noise of amplitude 0.30)").startswith("changed during the run: ")
    assert page._exploration(SimpleNamespace(control=[])) == "not recorded"
