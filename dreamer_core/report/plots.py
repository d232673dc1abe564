"""The figures of the session report, one function per figure (matplotlib, Agg: no display needed).

Each returns a matplotlib ``Figure``, or ``NoData`` saying why there is nothing to draw, so a run
with a missing source still gets a report. Figures are built with ``Figure`` directly (no pyplot
state), which keeps them independent of any GUI backend and of each other.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from dreamer_core.report.robot_time import return_by_robot_minute, robot_minutes_at_end
from dreamer_core.report.run_data import RunData
from dreamer_core.storage.episodes import Episode

# Episodes averaged by the running mean of the return plot.
RUNNING_MEAN_EPISODES = 10
# Bootstrap resamples and level of the interval around each version's mean return.
BOOTSTRAP_RESAMPLES = 2000
INTERVAL_LEVEL = 0.95
# Curves drawn in the open-loop plot (the newest versions or decisions).
NEWEST_CURVES = 6
INITIAL_POLICY_COLOUR = "0.55"
# Episodes cut short (complete_episodes): drawn as crosses at their return, never averaged.
CUT_MARKER = dict(marker="x", s=22, color="tab:red", linewidths=1.0, zorder=3)


@dataclass(frozen=True)
class NoData:
    reason: str


def version_colour(version: int):
    """One colour per policy version (grey: the initial policy, v0)."""
    return INITIAL_POLICY_COLOUR if version == 0 else matplotlib.colormaps["tab10"]((version - 1) % 10)


def version_label(version: int) -> str:
    return "v0 (initial policy)" if version == 0 else f"v{version}"


def _figure(height: float = 4.0, panels: int = 1) -> tuple[Figure, list]:
    figure = Figure(figsize=(10, height), dpi=100, layout="constrained")
    return figure, list(np.atleast_1d(figure.subplots(1, panels)))


def _label(ax, title: str, xlabel: str = "", ylabel: str = "", legend_outside: bool = False) -> None:
    """Titles, a light grid and (outside the axes, right) a legend."""
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if legend_outside:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _time(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp)


def _missing(data: RunData, source: str, otherwise: str) -> NoData:
    return NoData(f"{source}: {data.notes[source]}" if source in data.notes else otherwise)


def _scatter_by_version(ax, x: np.ndarray, episodes: list[Episode], data: RunData) -> None:
    """Complete episodes as dots coloured by version, cut ones as crosses (``CUT_MARKER``)."""
    cut = [i for i, e in enumerate(episodes) if not data.is_complete(e)]
    for version in sorted({e.policy_version for e in episodes}):
        index = [i for i, e in enumerate(episodes) if e.policy_version == version and data.is_complete(e)]
        if index:
            ax.scatter(x[index], [episodes[i].ret for i in index], s=14, color=version_colour(version),
                       label=version_label(version), zorder=3)
    if cut:
        ax.scatter(x[cut], [episodes[i].ret for i in cut], label="cut short (not averaged)", **CUT_MARKER)


# -- real returns -------------------------------------------------------------------------


def return_over_time(data: RunData) -> Figure | NoData:
    """Real return of every ended episode against the real steps recorded when it ended (robot
    experience: gaps between sessions and days take no room), coloured by policy version (cut ones
    as crosses), with the running mean of the complete ones, the learner's decisions and the robot's
    rollbacks placed at the experience of their time."""
    episodes = sorted(data.episodes, key=lambda e: e.end_stamp)
    if not episodes:
        return _missing(data, "replay", "no ended episode in the replay store yet")
    figure, (ax,) = _figure(4.5)
    experience = np.cumsum([e.steps for e in episodes])
    _scatter_by_version(ax, experience, episodes, data)
    complete = [i for i, e in enumerate(episodes) if data.is_complete(e)]
    if len(complete) >= RUNNING_MEAN_EPISODES:
        returns = np.array([episodes[i].ret for i in complete])
        mean = np.convolve(returns, np.ones(RUNNING_MEAN_EPISODES) / RUNNING_MEAN_EPISODES, mode="valid")
        ax.plot(experience[complete][RUNNING_MEAN_EPISODES - 1:], mean, color="black", linewidth=1.5,
                label=f"mean of last {RUNNING_MEAN_EPISODES} complete", zorder=4)
    marks = [(d.time, "tab:green" if d.promoted else "0.6", "-" if d.promoted else ":",
              f"v{d.version} promoted" if d.promoted else f"v{d.version} held back") for d in data.decisions]
    marks += [(e.time, "tab:red", "--", f"v{e.version} {e.event.replace('_', ' ')}") for e in data.events
              if e.event in ("rolled_back", "blocked")]
    ends = np.array([e.end_stamp for e in episodes])
    for stamp, colour, style, text in marks:
        if episodes[0].start_stamp <= stamp <= ends[-1]:  # later ones: only in the tables below
            x = float(np.interp(stamp, ends, experience))
            ax.axvline(x, color=colour, linestyle=style, linewidth=1.2, zorder=2)
            ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
                        fontsize=8, color=colour)
    _label(ax, "Real return per episode (lines: green promoted, grey dotted held back, red dashed rolled back)",
           "real steps recorded (robot experience)", "episode return (real)", legend_outside=True)
    return figure


def return_per_robot_minute(data: RunData) -> Figure | NoData:
    """Real return of every ended episode against the robot-minutes recorded by its end (steps /
    control rate), coloured by version (cut ones as crosses), with the mean of each robot-minute's
    complete episodes."""
    episodes = sorted(data.episodes, key=lambda e: e.end_stamp)
    if not episodes:
        return _missing(data, "replay", "no ended episode in the replay store yet")
    if data.control_rate_hz is None:
        return _missing(data, "robot config", "the run's control rate is unknown")
    figure, (ax,) = _figure(4.0)
    _scatter_by_version(ax, robot_minutes_at_end(episodes, data.control_rate_hz), episodes, data)
    bins = [b for b in return_by_robot_minute(episodes, data.control_rate_hz, is_complete=data.is_complete)
            if b.returns]
    ax.step([b.end_min for b in bins], [b.mean_return for b in bins], where="pre", color="black", linewidth=1.5,
            label="mean of complete per robot-minute", zorder=4)
    _label(ax, "Real return against robot time", "robot-minutes (recorded steps / control rate)",
           "episode return (real)", legend_outside=True)
    return figure


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap interval (``INTERVAL_LEVEL``) of the mean of ``values``."""
    means = np.concatenate([rng.choice(values, (BOOTSTRAP_RESAMPLES // 10, len(values))).mean(axis=1)
                            for _ in range(10)])
    tail = (1 - INTERVAL_LEVEL) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def return_by_version(data: RunData) -> Figure | NoData:
    """Mean real return per version with a bootstrap interval and the number of episodes."""
    by_version = data.single_version_episodes()
    if not by_version:
        return _missing(data, "replay", "no complete episode in the replay store yet")
    rng = np.random.default_rng(0)
    figure, (ax,) = _figure(3.8)
    for i, (version, group) in enumerate(by_version.items()):
        returns = np.array([e.ret for e in group])
        mean = float(returns.mean())
        ax.bar(i, mean, color=version_colour(version), alpha=0.8)
        if len(returns) >= 2:
            low, high = bootstrap_interval(returns, rng)
            ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], color="black", capsize=5)
        ax.annotate(f"n={len(returns)}", (i, 0), xytext=(0, 3), textcoords="offset points", ha="center",
                    fontsize=8)
    ax.set_xticks(range(len(by_version)), [version_label(v) for v in by_version])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("mean episode return (real)")
    ax.set_title(f"Mean real return per policy version, complete episodes ({INTERVAL_LEVEL:.0%} bootstrap "
                 "interval)")
    ax.grid(axis="y", alpha=0.3)
    return figure


def imagined_vs_real(data: RunData) -> Figure | NoData:
    """Per promoted version: the reward per step the model imagined when promoting it, beside the
    reward per step the robot then really collected with it."""
    imagined = data.imagined_reward_per_step()
    if not imagined:
        return _missing(data, "learner state", "no promoted version has an imagined reward recorded yet")
    real = {}
    for version, group in data.single_version_episodes().items():
        steps = sum(e.steps - 1 for e in group)  # an episode's first row carries no reward
        if steps > 0:
            real[version] = sum(e.ret for e in group) / steps
    versions = sorted(set(imagined) | {v for v in real if v > 0})
    figure, (ax,) = _figure(3.8)
    x = np.arange(len(versions))
    for offset, values, colour, label in ((-0.2, imagined, "tab:purple", "imagined (learner, at promotion)"),
                                          (0.2, real, "tab:blue", "real (robot, this run)")):
        bars = ax.bar(x + offset, [values.get(v, np.nan) for v in versions], width=0.4, color=colour, label=label)
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
    for i, v in enumerate(versions):
        if v not in real:
            ax.annotate("no real data", (i + 0.2, 0), xytext=(0, 3), textcoords="offset points", ha="center",
                        fontsize=8, rotation=90)
    ax.set_xticks(x, [version_label(v) for v in versions])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("mean reward per step")
    ax.set_title("Imagined vs real reward per step, per promoted version (imagined above real = over-optimism)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def value_vs_real_return(data: RunData) -> Figure | NoData:
    """At each gate check: the critic's value of held-out states beside the real discounted return
    that followed them (``dreamer_core.algorithms.trust.value_check``)."""
    checks = [d for d in data.decisions if "value_critic" in d.metrics and "value_real_return" in d.metrics]
    if not checks:
        return _missing(data, "learner state", "no gate check recorded the critic's value yet")
    figure, (ax,) = _figure(3.8)
    updates = [d.update for d in checks]
    ax.plot(updates, [d.metrics["value_real_return"] for d in checks], "o-", color="tab:blue",
            label="real return that followed (held-out)")
    ax.plot(updates, [d.metrics["value_critic"] for d in checks], "s--", color="tab:purple",
            label="critic's value (held-out)")
    ax.set_xlabel("learner update")
    ax.set_ylabel("discounted return")
    ax.set_title("Critic value vs real return at each gate check (far below: the critic does not know the scale yet)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure


# -- the learner ------------------------------------------------------------------------


def world_model_losses(data: RunData) -> Figure | NoData:
    """The world model's loss terms over updates (learner TensorBoard ``train/loss/*``)."""
    tags = sorted(t for t in data.scalars if t.startswith("train/loss/") and
                  t.rsplit("/", 1)[1] not in ("actor", "critic"))
    if not tags:
        return _missing(data, "learner TensorBoard", "no train/loss/* scalars: the learner has not trained yet")
    figure, (ax,) = _figure(3.8)
    positive = True
    for tag in tags:
        series = data.scalars[tag]
        ax.plot(series.steps, series.values, label=tag.removeprefix("train/loss/"), linewidth=1.2,
                marker="." if len(series.steps) < 30 else None)
        positive &= bool(np.all(series.values > 0))
    if positive:
        ax.set_yscale("log")
    _label(ax, "World-model losses over updates (world_model = the weighted sum)", "update", "loss",
           legend_outside=True)
    return figure


SKILL_MEASURES = ("reward", "continue")


def skill_curves(data: RunData) -> tuple[str, dict[str, dict[str, list[float]]], float | None]:
    """Skill per k of the newest candidates: ``(source, {curve label: {curve name: values}}, floor)``.

    The gate decisions of the learner state carry the curves of every candidate, promoted or held
    back (``skill_reward``, ``skill_continue`` on held-out windows, ``*_train`` on training
    windows) and the ``min_skill`` they were held against; without a learner state, the promoted
    bundles' manifests (their ``evaluation`` lists) are read instead.
    """
    curves: dict[str, dict[str, list[float]]] = {}
    judged = [d for d in sorted(data.decisions, key=lambda d: d.update, reverse=True) if d.curves][:NEWEST_CURVES]
    for decision in judged:
        state = "promoted" if decision.promoted else "held back"
        curves[f"v{decision.version} ({state}, update {decision.update})"] = decision.curves
    if curves:
        return "gate decisions (learner_state.json)", curves, judged[0].thresholds.get("min_skill")
    for version in sorted(data.manifests, reverse=True)[:NEWEST_CURVES]:
        lists = {name: value for name, value in data.manifests[version].evaluation.items()
                 if isinstance(value, list) and name.startswith("skill_")}
        if lists:
            curves[f"v{version} (promoted)"] = lists
    return "policy bundle manifests (evaluation curves)", curves, None


def open_loop(data: RunData) -> Figure | NoData:
    """The model's reward and continue skill against the number of steps k it predicts ahead:
    held-out windows solid, training windows dashed, the gate's floor as a grey line."""
    source, curves, floor = skill_curves(data)
    if not curves:
        return _missing(data, "learner state", "not recorded: no gate decision or bundle carries skill curves yet")
    figure, axes = _figure(3.6, len(SKILL_MEASURES))
    for ax, measure in zip(axes, SKILL_MEASURES, strict=True):
        for i, (label, by_name) in enumerate(curves.items()):
            colour = matplotlib.colormaps["viridis"](0.85 * i / max(1, len(curves) - 1))  # newest (first) darkest
            for suffix, style in (("", "-"), ("_train", "--")):
                values = by_name.get(f"skill_{measure}{suffix}")
                if values:
                    ax.plot(range(1, len(values) + 1), values, linestyle=style, marker="o", markersize=3,
                            color=colour, label=label if not suffix else None)
        if floor is not None:
            ax.axhline(floor, color="0.5", linewidth=1.0, label=f"min_skill {floor:g}")
        if ax.get_ylim()[0] < -3.0:
            ax.set_yscale("symlog", linthresh=1.0)  # an untrained model's skill of −40 must not flatten [−1, 1]
            ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_ylim(top=1.05)  # skill is at most 1
        ax.set(xlabel="open-loop steps k", ylabel="skill", title=f"{measure} skill (solid held-out, dashed training)")
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.suptitle(f"Model skill per prediction step k (from {source}; newest darkest)", fontsize=11)
    return figure


# -- the robot ---------------------------------------------------------------------------


def tick_histograms(data: RunData) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict[str, str]]] | None:
    """Bin edges (ms), the latency and jitter counts summed over every control session recorded (the
    last snapshot of each: counts run from the node's start), and those snapshots, oldest first."""
    newest: dict[str, dict[str, str]] = {}
    for _, values in data.control:
        if values.get("latency_histogram"):
            newest[values.get("session_id", "")] = values
    if not newest:
        return None
    edges = np.array([float(v) for v in next(iter(newest.values()))["histogram_edges_ms"].split(",")])
    counts = {}
    for key in ("latency_histogram", "jitter_histogram"):
        counts[key] = sum(np.array([int(c) for c in values[key].split(",")]) for values in newest.values())
    return edges, counts, list(newest.values())


def control_timing(data: RunData) -> Figure | NoData:
    """Histograms of the control tick's compute latency and of its start jitter."""
    histograms = tick_histograms(data)
    if histograms is None:
        return _missing(data, "diagnostics", "no control-node timing histogram recorded (the control node "
                                             "was not seen on /diagnostics by dreamer-stack)")
    edges, counts, snapshots = histograms
    newest = snapshots[-1]
    labels = [f"<{edges[0]:g}"] + [f"{a:g}–{b:g}" for a, b in itertools.pairwise(edges)]
    labels.append(f"≥{edges[-1]:g}")
    figure, axes = _figure(3.8, 2)
    for ax, key, title, percentiles in (
        (axes[0], "latency_histogram", "compute latency per tick", ("latency_p50_ms", "latency_p99_ms")),
        (axes[1], "jitter_histogram", "start jitter |spacing − period|",
         ("jitter_p50_ms", "jitter_p99_ms", "jitter_max_ms")),
    ):
        values = counts[key]
        used = np.flatnonzero(values)
        span = slice(used[0], used[-1] + 1) if len(used) else slice(0, len(values))
        ax.bar(range(span.stop - span.start), values[span], color="tab:blue")
        ax.set_xticks(range(span.stop - span.start), labels[span], rotation=45, ha="right", fontsize=8)
        ax.set_yscale("log" if values.max() > 0 else "linear")
        ax.set_xlabel("ms")
        ax.set_ylabel("ticks")
        text = ", ".join(f"{p.split('_', 1)[1].removesuffix('_ms')} {float(newest[p]):.3g}" for p in percentiles
                         if p in newest)
        ax.set_title(f"{title}\n(recent ticks: {text} ms)" if text else title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    total = int(counts["latency_histogram"].sum())
    figure.suptitle(f"Control loop timing: {total} ticks in {len(snapshots)} control session(s)", fontsize=11)
    return figure


def replay_growth(data: RunData) -> Figure | NoData:
    """Real steps recorded per session and per day (every step ever stored, evicted ones too)."""
    sessions = [s for s in data.sessions if s.steps > 0]
    if not sessions:
        return _missing(data, "replay", "the replay store holds no session yet")
    figure, axes = _figure(3.8, 2)
    ax = axes[0]
    ax.bar(range(len(sessions)), [s.steps for s in sessions], color="tab:blue")
    ax.plot(range(len(sessions)), np.cumsum([s.steps for s in sessions]), color="black", marker=".",
            label="cumulative")
    labels = [_time(s.start).strftime("%m-%d %H:%M") if s.start > 0 else s.session_id[:12] for s in sessions]
    ax.set_xticks(range(len(sessions)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_title("steps per session (by session start)", fontsize=10)
    ax.set_ylabel("steps")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    per_day: dict[str, int] = defaultdict(int)
    for s in sessions:
        per_day[_time(s.start).strftime("%Y-%m-%d") if s.start > 0 else "unstamped"] += s.steps
    days = sorted(per_day)
    axes[1].bar(range(len(days)), [per_day[d] for d in days], color="tab:green")
    axes[1].set_xticks(range(len(days)), days, rotation=45, ha="right", fontsize=8)
    axes[1].set_title("steps per day", fontsize=10)
    axes[1].grid(axis="y", alpha=0.3)
    figure.suptitle(f"Replay growth: {sum(s.steps for s in sessions)} real steps in {len(sessions)} session(s)",
                    fontsize=11)
    return figure
