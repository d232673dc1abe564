"""FixedRateLoop (control node and simulator): sleeps to each deadline, never bursts, counts lateness.

Driven by a fake clock, so the schedule is checked exactly and no test depends on this machine's timing.
"""

from __future__ import annotations

from dreamer_core.control.timing import FixedRateLoop, TickStats


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(step_durations: list[float], period: float = 0.02):
    """Run one tick per entry; each tick takes that long. Returns the tick start times and the loop."""
    clock = FakeClock()
    loop = FixedRateLoop(period, clock=clock, sleep=clock.sleep)
    starts, late = [], []
    durations = iter(step_durations)

    def step(started):
        starts.append(started)
        clock.now += next(durations)

    loop.run(step, keep_running=lambda: len(starts) < len(step_durations),
             on_late=lambda lateness, previous: late.append((round(lateness, 6), round(previous, 6))))
    return starts, late, loop


def test_ticks_start_on_the_period_grid():
    starts, late, loop = run([0.005] * 5)
    assert [round(s, 6) for s in starts] == [0.02, 0.04, 0.06, 0.08, 0.1]
    assert late == [] and loop.stats.missed_deadlines == 0 and loop.stats.ticks == 5


def test_a_stall_restarts_the_schedule_instead_of_bursting():
    # The second tick takes 0.1 s (five periods): the next tick starts at once, then the grid restarts
    # from there; no burst of back-to-back catch-up ticks.
    starts, late, loop = run([0.001, 0.1, 0.001, 0.001, 0.001])
    assert [round(s, 6) for s in starts] == [0.02, 0.04, 0.14, 0.16, 0.18]
    assert late == [(0.08, 0.1)] and loop.stats.missed_deadlines == 1


def test_slightly_late_ticks_keep_the_grid():
    starts, late, loop = run([0.025, 0.001, 0.001])
    assert [round(s, 6) for s in starts] == [0.02, 0.045, 0.06]
    assert late == [] and loop.stats.missed_deadlines == 0


def test_liveness_is_the_age_of_the_last_tick():
    _, _, loop = run([0.001])
    assert loop.tick_age(loop.last_tick + 0.3) == 0.3
    assert FixedRateLoop(0.02).tick_age(5.0) is None


def test_counters_are_integers():
    stats = TickStats(0.02)
    for i in range(3):
        stats.record(i * 0.02, i * 0.02, i * 0.02 + 0.001)
    summary = stats.summary()
    assert summary["ticks"] == 3 and isinstance(summary["ticks"], int)
    assert isinstance(summary["missed_deadlines"], int) and isinstance(summary["latency_p50_ms"], float)
