"""Property-based fuzzing of Controller.tick on the control node's input path (hypothesis).

Every field of every sensor message, the policy's output and the timing are broken in
turn: NaN, ±inf, huge and subnormal values, wrong lengths, missing/extra/renamed joints,
degenerate quaternions, stamps out of order or from the future. The tick must never
raise, must always send a command within the joint limits (none only before the robot
was ever plausibly measured) and must name its fault. CI runs the derandomized
`control-ci` profile; `python bench/fuzz_control.py --examples N` runs longer.
"""

from __future__ import annotations

from controller_fuzz import episodes, run_and_check
from hypothesis import given, settings


@settings(settings.get_profile("control-ci"))
@given(episodes())
def test_tick_never_raises_and_always_commands_safely(episode):
    policy, ticks = episode
    run_and_check(policy, ticks)
