"""Profile one learner update with torch.profiler on the CPU (not a test).

    python bench/profile_update.py                  # presets xs and s, 2 threads
    python bench/profile_update.py --presets s --threads 2 --top 20

Workload as bench/side_by_side.py (B = 16 × T = 64, horizon 15, obs 24, act 6, float32 eager);
one warm-up update, then one profiled update per preset. Prints

* the top ops by self CPU time;
* the share of the update spent in world-model learning, imagination, the actor/critic losses
  and the optimiser, each forward *and* backward: every backward node is charged to the phase
  whose forward op created it (matched by the autograd sequence number);
* how many ops one update dispatches from the 64-step observe loop and the 15-step imagination
  loop (forward ops plus backward nodes), i.e. the per-op overhead the loops carry.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections import Counter
from collections.abc import Iterator

import torch
from learner_workload import BATCH, HORIZON, LENGTH, load_average, machine, our_learner, set_threads
from torch.profiler import ProfilerActivity, profile, record_function

WORLD_MODEL, OBSERVE = "world model", "world model: observe loop"
IMAGINATION, BEHAVIOUR, OPTIMISER = "imagination loop", "actor/critic losses", "optimiser"
OTHER = "other (batch to tensors, slow critic, metrics)"
BACKWARD_NODE = "autograd::engine::evaluate_function: "


def phase_methods(agent) -> list[tuple[object, str, str]]:
    """(owner, method name, phase) for the methods that delimit the phases of ``Agent.train_step``.

    The one place that knows the learner's internals; retarget it when they move. Regions nest:
    the innermost labelled region an op runs in names its phase. ``_optimise`` runs zero_grad,
    backward, gradient clipping and the Adam step; its backward nodes are charged to the phase
    of their forward ops, so what stays under "optimiser" is zero_grad, clipping and Adam.
    """
    return [(agent, "world_model_loss", WORLD_MODEL), (agent.wm.rssm, "observe", OBSERVE),
            (agent, "behaviour_losses", BEHAVIOUR), (agent.wm.rssm, "imagine", IMAGINATION),
            (agent, "_optimise", OPTIMISER)]


@contextlib.contextmanager
def labelled_phases(agent) -> Iterator[None]:
    """Wrap the phase methods in ``record_function`` ranges (instance attributes, undone on exit)."""
    patched = []
    for owner, name, phase in phase_methods(agent):
        method = getattr(owner, name)

        @functools.wraps(method)
        def wrapper(*args, _method=method, _phase=phase, **kwargs):
            with record_function(_phase):
                return _method(*args, **kwargs)

        object.__setattr__(owner, name, wrapper)
        patched.append((owner, name))
    try:
        yield
    finally:
        for owner, name in patched:
            object.__delattr__(owner, name)


def innermost_phase(event, phases: set[str]) -> str | None:
    while event is not None:
        if event.name in phases:
            return event.name
        event = event.cpu_parent
    return None


def backward_node(event):
    """The backward node (evaluate_function) this event runs inside, if any."""
    while event is not None:
        if event.name.startswith(BACKWARD_NODE):
            return event
        event = event.cpu_parent
    return None


def phase_breakdown(events) -> tuple[dict[str, Counter], dict[str, Counter]]:
    """Self CPU µs per phase (forward + backward) and op name, and dispatched-op counts per phase.

    Counts are top-level ``aten::`` ops in the forward pass (ops not called from another aten op)
    and backward nodes. A phase label's own self time is time spent between ops inside it
    (Python, dispatch, autograd engine); it is listed as "(between ops)"."""
    phases = {WORLD_MODEL, OBSERVE, BEHAVIOUR, IMAGINATION, OPTIMISER}
    forward_phase: dict[tuple[int, int], str] = {}
    for e in events:
        if e.name.startswith("aten::") and e.sequence_nr >= 0 and backward_node(e) is None:
            forward_phase.setdefault((e.thread, e.sequence_nr), innermost_phase(e, phases) or OTHER)
    seconds: dict[str, Counter] = {}
    counts: dict[str, Counter] = {}
    for e in events:
        node = backward_node(e)
        if node is not None:
            phase = forward_phase.get((node.fwd_thread, node.sequence_nr), OTHER)
        else:
            phase = innermost_phase(e, phases) or OTHER
        name = "(between ops)" if e.name in phases else e.name
        seconds.setdefault(phase, Counter())[name] += e.self_cpu_time_total
        parent = e.cpu_parent
        if node is e:
            counts.setdefault(phase, Counter())["backward nodes"] += 1
        elif node is None and e.name.startswith("aten::") and (parent is None or not parent.name.startswith("aten::")):
            counts.setdefault(phase, Counter())["forward ops"] += 1
    return seconds, counts


def profile_preset(preset: str, top: int) -> None:
    agent, step = our_learner(preset)
    step()  # warm-up: allocator, lazy initialisation
    with labelled_phases(agent), profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print(f"\n## preset {preset}: {sum(p.numel() for p in agent.parameters()) / 1e6:.2f} M parameters; "
          f"load average {load_average()}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))
    by_op, counts = phase_breakdown(prof.events())
    seconds = {phase: sum(ops.values()) for phase, ops in by_op.items()}
    total = sum(seconds.values())
    print(f"{'phase (forward + backward)':<50}{'self CPU s':>11}{'share':>8}{'fwd ops':>9}{'bwd nodes':>10}"
          "   top ops (self CPU s)")
    for phase in (WORLD_MODEL, OBSERVE, IMAGINATION, BEHAVIOUR, OPTIMISER, OTHER):
        c = counts.get(phase, Counter())
        tops = ", ".join(f"{op.removeprefix('aten::')} {us / 1e6:.3f}"
                         for op, us in by_op.get(phase, Counter()).most_common(3))
        print(f"{phase:<50}{seconds.get(phase, 0) / 1e6:>11.3f}{seconds.get(phase, 0) / total:>8.1%}"
              f"{c['forward ops']:>9}{c['backward nodes']:>10}   {tops}")
    print(f"{'total':<50}{total / 1e6:>11.3f}")
    for phase, steps in ((OBSERVE, LENGTH), (IMAGINATION, HORIZON)):
        c = counts.get(phase, Counter())
        n = c["forward ops"] + c["backward nodes"]
        print(f"{phase}: {n} ops per update ({c['forward ops']} forward + {c['backward nodes']} backward) "
              f"= {n / steps:.0f} per step over {steps} steps; {seconds.get(phase, 0) / max(n, 1):.0f} µs per op")
    world_model = seconds.get(WORLD_MODEL, 0) + seconds.get(OBSERVE, 0)
    print(f"world-model learning incl. observe loop: {world_model / 1e6:.3f} s ({world_model / total:.1%}); "
          f"all ops in the update: {sum(c['forward ops'] + c['backward nodes'] for c in counts.values())}")

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["xs", "s"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=15, help="rows of the top-ops table")
    args = parser.parse_args()
    set_threads(args.threads)
    print(f"# {machine()}, torch {torch.__version__}, {args.threads} threads, B×T = {BATCH}×{LENGTH}, "
          f"horizon {HORIZON}, float32 eager")
    for preset in args.presets:
        profile_preset(preset, args.top)


if __name__ == "__main__":
    main()
