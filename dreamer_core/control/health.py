"""What the control node reports on /diagnostics: level, message and values (ROS-free).

Read from another thread than the control loop's: everything here is a snapshot
(counters, the newest tick's fault, the policy manager's status), and the loop's
liveness comes from the age of its last tick, so OK is never reported while ticks
are not advancing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Health:
    level: str  # OK | WARN | ERROR (diagnostic_msgs/DiagnosticStatus names)
    message: str
    values: dict[str, object]


def control_health(controller, loop, *, active: bool, tick_age: float | None, stall_timeout_s: float,
                   fatal_error: str | None) -> Health:
    """The control node's status. ``tick_age``: seconds since the last tick finished (or since
    activation, before the first tick)."""
    c, policies = controller, controller.policies.status()
    stalled = fatal_error is not None or (active and (tick_age is None or tick_age > stall_timeout_s))
    fault = c.current_fault
    if stalled:
        level, message = "ERROR", fatal_error or "control loop stalled"
    elif not active:
        level, message = "WARN", "inactive"
    elif fault is not None:
        serious = fault.name == "estop" or fault.name.startswith("tick_exception")
        level, message = ("ERROR" if serious else "WARN"), fault.name
    else:
        level, message = "OK", "running"
    pinned = policies["pinned"]
    values = {
        "policy_version": c.policy_version, "swaps": c.swaps, "pinned": "none" if pinned is None else pinned,
        "highest_accepted_version": policies["highest_accepted"],
        "rejected_versions": ",".join(map(str, policies["rejected_versions"])),
        "held_versions": ",".join(map(str, policies["held_versions"])),
        "previous_version": policies["previous_version"],
        # CLOCK_MONOTONIC is shared by all processes of a host: benchmarks time swaps with it.
        "last_swap_monotonic": c.last_swap_at if c.last_swap_at is not None else "",
        "watchdog": fault.name if fault else "ok", "fault_detail": fault.detail if fault else "",
        "estop_latched": c.safety.estop_reason is not None,
        "waiting_for_reset": not c.episodes_allowed,
        "transitions_published": c.seq, "session_id": c.session_id, "episodes": c.episodes,
        "explore": c.explore, "exploration": c.exploration, "last_rejection": policies["last_rejection"],
        "bundles_refused": policies["bundles_refused"], "version_state_error": policies["state_error"],
        "validator_error": policies["validator_error"],
        "canary": policies["canary"], "last_verdict": policies["last_verdict"],
        "trusted_versions": ",".join(map(str, policies["trusted_versions"])),
        "episode_return_version": _blank(policies["episode_return_version"]),
        "episode_return_last": _blank(policies["episode_return_last"]),
        "episode_return_mean": _blank(policies["episode_return_mean"]),
        "episode_return_count": policies["episode_return_count"],
        "ticks_without_command": c.ticks_without_command,
        "last_exception": c.last_exception, "loop_alive": not stalled,
        "last_tick_age_ms": "" if tick_age is None else f"{1e3 * tick_age:.1f}",
        **{k: v if isinstance(v, int) else f"{v:.3f}" for k, v in loop.stats.summary().items()},
        **loop.stats.histograms(),
        **{f"fault.{name}": count for name, count in sorted(c.faults.counts().items())},
    }
    return Health(level, message, values)


def _blank(value) -> object:
    """A figure for diagnostics: floats with 3 decimals, "" when there is none yet."""
    if value is None:
        return ""
    return f"{value:.3f}" if isinstance(value, float) else value
