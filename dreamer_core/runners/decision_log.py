"""The learner's decisions and the robot's verdicts in TensorBoard.

Per candidate: every measured number as a scalar under ``trust/``, the skill curves as one
figure per decision (``skill/curves``, skill against k) and as scalars ``skill_k/<curve>/kNN``,
``decision/promoted`` (1 promoted, 0 held back), ``decision/version`` and one line of text
under ``decision``. Per robot verdict: ``robot/<event>`` (the version) and
a line of text under ``robot``. docs/model_trust.md#reading-the-curves explains them.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on a learner host
import matplotlib.pyplot as plt


def skill_figure(curves: dict[str, list[float]], floor: float, title: str):
    """The skill curves of one decision against k, with the gate's floor."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker=".",
                linestyle="-" if not name.endswith("_train") else "--", label=name)
    ax.axhline(floor, color="grey", linewidth=0.8, label="min_skill")
    ax.set(xlabel="k (open-loop steps)", ylabel="skill", title=title, ylim=(max(-2.0, ax.get_ylim()[0]), 1.0))
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def log_decision(writer, record) -> None:
    """Log one promotion decision (a ``PromotionRecord``) at its update."""
    step = record.update
    for key, value in record.metrics.items():
        writer.add_scalar(f"trust/{key}", value, step)
    for name, values in record.curves.items():
        for k, value in enumerate(values, start=1):
            writer.add_scalar(f"skill_k/{name}/k{k:02d}", value, step)
    writer.add_scalar("decision/promoted", float(record.promoted), step)
    writer.add_scalar("decision/version", float(record.version), step)
    verdict = "promoted" if record.promoted else "held back"
    writer.add_text("decision", f"v{record.version} {verdict} at update {step}: {record.summary}", step)
    if record.curves:
        fig = skill_figure(record.curves, record.thresholds["min_skill"], f"v{record.version} {verdict}")
        writer.add_figure("skill/curves", fig, step, close=True)


def log_policy_event(writer, record) -> None:
    """Log one robot verdict (a ``PolicyEventRecord``) at the learner's update when it arrived."""
    writer.add_scalar(f"robot/{record.event}", float(record.version), record.update)
    writer.add_text("robot", f"v{record.version} {record.event}: {record.reason}", record.update)
