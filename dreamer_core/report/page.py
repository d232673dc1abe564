"""The session report as one self-contained HTML page: figures are PNGs embedded as data URIs and
the style is inline, so the single file opens offline, can be mailed or attached to an issue."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from datetime import datetime
from html import escape
from pathlib import Path

from matplotlib.figure import Figure

from dreamer_core.report import plots
from dreamer_core.report.run_data import Decision, RunData
from dreamer_core.report.session_returns import return_per_session
from dreamer_core.report.verdict import verdict

# (anchor, title, how to read it, figure) in page order; docs/report.md explains each in full.
SECTIONS: list[tuple[str, str, str, Callable[[RunData], Figure | plots.NoData]]] = [
    ("returns", "Real return per episode",
     "Each dot is one complete episode the robot ran (it fell or reached the time limit), placed at the real "
     "steps recorded by its end and coloured by the policy version that ran it; red crosses are episodes cut "
     "short (a stop, a fault hold, a swap), left out of every mean. The black line is the running mean. Vertical "
     "lines mark the learner's decisions and the robot's rollbacks when they happened. Improvement shows as the "
     "dots of newer versions sitting higher.", plots.return_over_time),
    ("robot-minutes", "Real return per robot-minute",
     "The same episodes against robot time: the recorded steps divided by the control rate, so waits between "
     "episodes (resets, a paced simulator waiting for the learner) take no room; red crosses are episodes cut "
     "short. The black steps are the mean return of the complete episodes that ended in each robot-minute: a "
     "robot that improves climbs from left to right.",
     plots.return_per_robot_minute),
    ("by-version", "Mean real return per version",
     "Bars are the mean return of each version's complete episodes, whiskers a bootstrap interval of that "
     "mean. Overlapping whiskers: the data cannot tell the versions apart yet.", plots.return_by_version),
    ("imagined", "Imagined vs real reward per step",
     "What the world model promised for each promoted version against what the robot then collected. A "
     "purple bar far above its blue one means the actor exploits model errors (over-optimism).",
     plots.imagined_vs_real),
    ("value", "Critic value vs real return",
     "At each gate check, the critic's value of the first state of each held-out window beside the real "
     "discounted return that followed it (closed by the critic where the window ends). Until the two meet, the "
     "actor's advantages are mostly noise and a candidate follows it.", plots.value_vs_real_return),
    ("losses", "World-model losses",
     "The world model's loss terms per update from the learner's TensorBoard events; they should fall and "
     "settle. A rise after new data arrives is normal (the model meets states it has not seen).",
     plots.world_model_losses),
    ("open-loop", "Model skill per step k",
     "How well the model predicts reward and episode continuation k steps ahead from real states with the "
     "real actions, against the better of two simple guesses (the batch mean, the value at the start "
     "repeated): 1 = perfect, 0 = no better than the guess, below 0 worse. Solid: held-out data the model "
     "never trained on; dashed: training data (a wide gap is memorising). A candidate whose held-out skill "
     "at its imagination horizon is below the grey line (min_skill) is held back.", plots.open_loop),
    ("timing", "Control latency and jitter",
     "Per-tick compute time of the control node and how far each tick started from its schedule. Ticks at or "
     "above the control period miss deadlines.", plots.control_timing),
    ("replay", "Replay growth",
     "Real steps recorded per session and per day: how much robot time the learner has had.", plots.replay_growth),
]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
p.meta { color: #666; margin-top: 0; } p.how { color: #444; max-width: 60em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } img { max-width: 100%; border: 1px solid #eee; }
.nodata { background: #fff6e0; border-left: 4px solid #e0a000; padding: 0.6em 1em; }
.promoted { color: #176f2c; font-weight: 600; } .held { color: #8a5a00; }
p.verdict { font-size: 1.1em; font-weight: 600; background: #eef4ff; border-left: 4px solid #3a6fd8;
  padding: 0.6em 1em; }
nav a { margin-right: 1em; }
"""


def png_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(headers: list[str], rows: list[list], raw: bool = False) -> str:
    """An HTML table (no header row when ``headers`` is empty); cells are escaped unless ``raw``
    (cells built here, already escaped)."""
    cell = (lambda v: v) if raw else escape
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>" if headers else ""
    body = "".join("<tr>" + "".join(f"<td>{cell(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S") if stamp > 0 else "-"


def summary(data: RunData) -> str:
    by_version = data.single_version_episodes()
    promoted = [d for d in data.decisions if d.promoted]
    limit = f"a fall or {data.episode_steps} rows" if data.episode_steps else "time limit unknown: all counted"
    rows = [
        ["complete episodes", f"{len(data.complete_episodes())} ({limit}); {len(data.cut_episodes())} cut short, "
                              "left out of every mean"],
        ["real steps recorded", sum(s.steps for s in data.sessions)],
        ["sessions", len(data.sessions)],
        ["first / last step", f"{_when(min((s.start for s in data.sessions), default=0))} / "
                              f"{_when(max((s.end for s in data.sessions), default=0))}"],
        ["versions that ran", ", ".join(f"v{v}" for v in by_version) or "-"],
        ["gate decisions", f"{len(promoted)} promoted, {len(data.decisions) - len(promoted)} held back"],
        ["robot rollbacks", sum(e.event == "rolled_back" for e in data.events)],
        ["robot exploration", _exploration(data)],
    ]
    if by_version:
        first, newest = next(iter(by_version)), next(reversed(by_version))
        rows.append(["mean real return", "; ".join(
            f"{plots.version_label(v)}: {sum(e.ret for e in by_version[v]) / len(by_version[v]):.2f} "
            f"over {len(by_version[v])} episodes" for v in dict.fromkeys((first, newest)))])
    return _table([], rows)


def _exploration(data: RunData) -> str:
    """What the robot explored with over the run (the control node's diagnostics), and whether every
    canary was therefore judged against its baseline under the same exploration."""
    said = list(dict.fromkeys(values["exploration"] for _, values in data.control if "exploration" in values))
    if not said:
        return "not recorded"
    if len(said) == 1:
        alike = said[0].endswith("every version's mean")
        return f"{said[0]} ({'every version explored alike' if alike else 'no noise on learned versions'})"
    return "changed during the run: " + " -> ".join(said) + " (a canary may have met a baseline explored otherwise)"


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.2f}" if values else "-"


def versions_table(data: RunData) -> str:
    """Per version: complete episodes, their mean return and falls, the cut ones and, where the simulator
    recorded it, the mean forward distance per complete episode."""
    by_version = data.single_version_episodes()
    cut = [e.policy_version for e in data.cut_episodes()]
    if not by_version and not cut:
        return _nothing("No episode ended yet", data.notes.get("replay", "none in the replay store"))
    headers = ["version", "complete episodes", "mean return", "falls", "cut short"]
    if data.travel:
        headers.append("forward distance per episode (m)")
    rows = []
    for version in sorted(set(by_version) | set(cut)):
        group = by_version.get(version, [])
        row = [plots.version_label(version), len(group), _mean([e.ret for e in group]),
               sum(e.terminal for e in group), cut.count(version)]
        if data.travel:
            row.append(_mean([m for m in map(data.forward_m, group) if m is not None]))
        rows.append(row)
    return _table(headers, rows)


def cut_table(data: RunData) -> str:
    """The episodes cut short, each with its length against the time limit."""
    cut = data.cut_episodes()
    if data.episode_steps is None:
        return _nothing("Cut episodes cannot be told apart",
                        data.notes.get("robot config", "the run's time limit is unknown"))
    if not cut:
        return _nothing("No episode was cut short", "every ended episode fell or reached the time limit")
    return _table(["ended", "session", "version", "rows", "return"],
                  [[_when(e.end_stamp), e.session_id, f"v{e.policy_version}", f"{e.steps} of {data.episode_steps}",
                    f"{e.ret:.2f}"] for e in cut])


def sessions_table(data: RunData) -> str:
    """Mean real return of each session's complete episodes and the versions that ran in it."""
    sessions = return_per_session(data)
    if not sessions:
        return _nothing("No session recorded", data.notes.get("replay", "the replay store holds no step yet"))
    rows = [[s.number, _when(s.start), s.session_id, s.steps, len(s.returns),
             f"{s.mean_return:.2f}" if s.returns else "-", f"{s.reward_per_step:.3f}" if s.returns else "-",
             " ".join(f"v{v}" for v in s.versions) or "-"] for s in sessions]
    return _table(["session", "started", "session id", "steps", "complete episodes", "mean return",
                   "reward per step", "versions that ran"], rows)


def _nothing(what: str, why: str) -> str:
    return f'<p class="nodata">{escape(what)} ({escape(why)}).</p>'


# Measured values of a decision shown beside the threshold they were held against:
# (metric, threshold, label, how the value must relate to the threshold).
GATE_VALUES = (("reward_skill", "min_skill", "reward skill", "≥ {:g}"),
               ("continue_skill", "min_skill", "continue skill", "≥ {:g}"),
               ("reward_skill_diff_high", "max_skill_drop", "reward skill − running's, interval high", "≥ −{:g}"),
               ("continue_skill_diff_high", "max_skill_drop", "continue skill − running's, interval high", "≥ −{:g}"),
               ("disagreement_ratio", "max_disagreement_ratio", "disagreement", "≤ {:g}"),
               ("held_out_blocks", "min_held_out_blocks", "held-out blocks", "≥ {:g}"))


def gate_values(d: Decision) -> str:
    """The decision's measured values against their thresholds, e.g. ``reward skill −0.42 (≥ −0.7)``."""
    parts = []
    if "horizon" in d.metrics:
        parts.append(f"at k={d.metrics['horizon']:.0f}")
    for metric, threshold, label, relation in GATE_VALUES:
        if metric in d.metrics:
            bound = d.thresholds.get(threshold)
            held = "" if bound is None else f" ({relation.format(bound)})"
            parts.append(f"{label} {d.metrics[metric]:.3g}{held}")
    return ", ".join(parts) or "-"


def decisions_table(data: RunData) -> str:
    if not data.decisions:
        return _nothing("No gate decision recorded",
                        data.notes.get("learner state", "the learner has not reached its first candidate"))
    rows = []
    for d in sorted(data.decisions, key=lambda d: d.update):
        outcome = '<span class="promoted">promoted</span>' if d.promoted else '<span class="held">held back</span>'
        why = "; ".join(d.reasons) if d.reasons else "passed every check"
        rows.append([f"v{d.version}", str(d.update), escape(_when(d.time)), outcome, escape(gate_values(d)),
                     escape(why)])
    return _table(["candidate", "update", "time", "decision", "measured (threshold)", "why"], rows, raw=True)


def events_table(data: RunData) -> str:
    if not data.events:
        return _nothing("No policy event from the robot recorded", data.notes.get("policy events", "none published"))
    return _table(["time", "version", "event", "reason"],
                  [[_when(e.time), f"v{e.version}", e.event, e.reason] for e in data.events])


def render(data: RunData) -> str:
    """The report page of ``data`` as HTML text."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>dreamer-ros session report: {escape(data.layout.root.name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Session report: {escape(data.layout.root.name)}</h1>",
        f'<p class="meta">{escape(str(data.layout.root))} · generated {time.strftime("%Y-%m-%d %H:%M:%S")} '
        "· how to read it: docs/report.md</p>",
        f'<p class="verdict">{escape(verdict(data.complete_returns_by_version()).line)}</p>',
        '<nav><a href="#sessions">Return per session</a>'
        + "".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title, _, _ in SECTIONS)
        + '<a href="#cut">Cut episodes</a><a href="#decisions">Gate decisions</a>'
        '<a href="#events">Robot policy events</a><a href="#sources">Sources</a></nav>',
        "<h2>Summary</h2>", summary(data), versions_table(data),
        '<h2 id="sessions">Real return per session</h2>', sessions_table(data),
    ]
    for anchor, title, how, draw in SECTIONS:
        parts.append(f'<h2 id="{anchor}">{escape(title)}</h2><p class="how">{escape(how)}</p>')
        figure = draw(data)
        if isinstance(figure, plots.NoData):
            parts.append(f'<p class="nodata">No data: {escape(figure.reason)}.</p>')
        else:
            parts.append(f'<img alt="{escape(title)}" src="{png_data_uri(figure)}">')
    parts += ['<h2 id="cut">Episodes cut short (left out of every mean)</h2>', cut_table(data),
              '<h2 id="decisions">Gate decisions (learner)</h2>', decisions_table(data),
              '<h2 id="events">Robot policy events</h2>', events_table(data),
              '<h2 id="sources">Sources</h2>', sources_table(data), "</body></html>"]
    return "\n".join(parts)


def sources_table(data: RunData) -> str:
    layout = data.layout
    rows = [[name, str(path), data.notes.get(name, "read")] for name, path in (
        ("replay", layout.replay), ("learner state", layout.learner_state), ("bundles", layout.bundles),
        ("learner TensorBoard", layout.learner_tensorboard), ("diagnostics", layout.diagnostics_log),
        ("policy events", layout.policy_events_log), ("travel log", layout.travel_log))]
    return _table(["source", "path", "status"], rows)


def write_page(data: RunData, out: str | Path | None = None) -> Path:
    """Render the report of ``data`` to ``out`` (default ``<run_dir>/report.html``); returns its path."""
    path = Path(out) if out is not None else data.layout.report
    path.write_text(render(data), encoding="utf-8")
    return path

