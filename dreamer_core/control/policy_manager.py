"""Which policy the robot runs: bundle mailbox, validated versions, pin, rollback, canary and rejection.

ROS callbacks (bundles, operator services), the bundle-validator thread and the
control thread all call one :class:`PolicyManager`; a single lock guards its
state, and nothing slow (validation, file writes, the canary's bootstrap) runs while
it is held, so the control thread's once-per-tick :meth:`PolicyManager.take_switch`
never waits long. The control thread never writes files: what it changes (episode
returns, canary verdicts) is written by :meth:`PolicyManager.flush`, which the node
calls from its executor together with :meth:`PolicyManager.take_events`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dreamer_core.control.canary import FinishedEpisode, cannot_pass, judge
from dreamer_core.control.policy_events import PolicyEvent
from dreamer_core.control.version_state import CanaryRecord, VersionState
from dreamer_core.deploy.errors import BundleRejected
from dreamer_core.robots.config import CanaryConfig

# Complete episodes behind the episode_return_mean diagnostics value.
RETURN_MEAN_EPISODES = 10
# load(bundle, min_version) -> a verified runtime with .version, or BundleRejected.
Loader = Callable[[Any, int], Any]
Log = Callable[[str, str], None]  # (level: info | warning | error, message)


@dataclass(frozen=True)
class Switch:
    """A change of the running policy for the control thread; ``runtime`` None = the initial policy."""

    runtime: Any | None

    @property
    def version(self) -> int:
        return _version(self.runtime)


def _version(runtime) -> int:
    return 0 if runtime is None else int(runtime.version)


class PolicyManager:
    """The policy versions of one robot, safe to call from any thread.

    Rules: versions only go forward (a bundle older than the highest accepted is
    refused) unless the operator rolls back naming that version; a version the robot
    rejected is never accepted again; an operator's pin holds across restarts (with
    ``state_path``).

    With ``canary`` (the robot config's section; None: every accepted version is trusted
    at once), a version that is not yet trusted runs as a canary: newer versions wait
    (held) until it is judged after ``canary.episodes`` complete episodes; a failed one is
    rejected and the runtime that ran before it, kept loaded, runs again from the next
    tick. Operators can :meth:`force` (trust) or :meth:`block` (reject) any version.
    """

    def __init__(self, robot_id: str, *, state_path: Path | None = None, history: int = 5,
                 canary: CanaryConfig | None = None, log: Log | None = None):
        self.robot_id = robot_id
        self._state_path = state_path
        self._state = VersionState.load(state_path, robot_id) if state_path else VersionState(robot_id=robot_id)
        self._history = history
        self._canary = canary
        # Complete episodes kept per version (the canary's baseline window, or its default without a canary),
        # and how many make a baseline (the best trusted version's too).
        self._keep = (canary or CanaryConfig()).baseline_episodes
        self._min_episodes = (canary or CanaryConfig()).min_baseline_episodes
        self._log = log or (lambda level, message: None)
        self._lock = threading.Lock()
        self._persist_lock = threading.Lock()
        self._mail = threading.Condition(self._lock)
        self._waiting = None  # the newest bundle not yet validated (latest wins)
        self._held: dict[int, Any] = {}
        self._active = None  # what the control thread runs (None: the initial policy)
        self._previous = None  # what it ran before; kept loaded to swap back to
        self._target = None
        self._switch_pending = False
        self._last_rejection = ""
        self._refused = 0
        self._events: list[PolicyEvent] = []  # decisions not yet taken by the node
        self._dirty = False  # state changed by the control thread, not yet written
        self._closed = False
        self._state_error = ""
        self._validator_error = ""  # the newest exception the validator thread survived
        self._validator: threading.Thread | None = None
        if self._state.pinned is not None:
            self._log("warning", f"pinned to policy v{self._state.pinned} by an operator (persisted); "
                                 "newer bundles are held but not run until ~/pin_policy version: 0")

    # -- bundles -----------------------------------------------------------------------

    def offer(self, bundle) -> None:
        """Queue a received bundle for validation; a newer arrival replaces a waiting one."""
        with self._lock:
            refusal = self._screen(bundle.version)
            held = bundle.version in self._held
            superseded = self._waiting
            if refusal is None and not held:
                self._waiting = bundle
                self._mail.notify()
        if refusal is not None:
            self._refuse(bundle.version, refusal)
        elif held:
            self._log("info", f"ignoring bundle v{bundle.version}: already validated and held")
        elif superseded is not None:
            self._log("info", f"bundle v{superseded.version} superseded by v{bundle.version} before validation")

    def validate_next(self, load: Loader, timeout: float) -> bool:
        """Validate the waiting bundle (waits up to ``timeout`` for one); False when none came."""
        with self._lock:
            if self._waiting is None:
                self._mail.wait(timeout)
            bundle, self._waiting = self._waiting, None
            if bundle is None:
                return False
            refusal = self._screen(bundle.version)
            min_version = self._min_version(bundle.version)
        if refusal is not None:
            self._refuse(bundle.version, refusal)
            return True
        try:
            runtime = load(bundle, min_version)
        except Exception as exc:  # BundleRejected, or anything unexpected: validation goes on either way
            self._refuse(bundle.version, exc)
            return True
        self.accept(runtime)
        return True

    def accept(self, runtime) -> bool:
        """Take a verified runtime: hold it and, unless pinned elsewhere, run it from the next tick."""
        version = _version(runtime)
        with self._lock:
            refusal = self._screen(version)  # again, on the signed version, after a slow validation
            pinned = self._state.pinned
            if refusal is None:
                self._held[version] = runtime
                self._state.highest_accepted = max(self._state.highest_accepted, version)
                if pinned == version:
                    self._set_target(runtime)
                waiting = self._advance()
                swapping = self._switch_pending and self._target is runtime
                where = "swapping at the next tick" if swapping else f"held ({waiting or 'a newer one runs'})"
                self._trim()
        if refusal is not None:
            self._refuse(version, refusal)
            return False
        self._persist()
        self._log("info", f"policy v{version} validated; {where}")
        return True

    def start_validator(self, load: Loader) -> None:
        """Validate offered bundles in a background thread until :meth:`close`."""
        self._validator = threading.Thread(target=self._validate_loop, args=(load,), daemon=True,
                                           name="bundle-validator")
        self._validator.start()

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True
            self._mail.notify_all()
        if self._validator is not None:
            self._validator.join(timeout)
        self.flush()

    # -- the control thread ------------------------------------------------------------

    def take_switch(self) -> Switch | None:
        """The policy to run from this tick on, when it changed; called at each tick boundary."""
        with self._lock:
            if not self._switch_pending:
                return None
            self._switch_pending = False
            if self._target is self._active:
                return None
            self._previous, self._active = self._active, self._target
            switch = Switch(self._active)
            started = self._begin_run()
        if started is not None:
            self._log("warning", f"policy v{started.version} runs as a canary: {started.reason}")
        return switch

    def record_episode(self, episode: FinishedEpisode) -> None:
        """Note an episode the controller closed (control thread); judge the canary once it has run its episodes.

        A failed canary is rejected here and the previous version runs from the next tick on.
        """
        if not episode.counts or not np.isfinite(episode.ret):
            return
        with self._lock:
            self._state.record(episode.version, float(episode.ret), episode.steps, self._keep)
            self._dirty = True
            trial = self._trial_due(episode.version)
            if trial is None:
                if self._trusted(episode.version):
                    self._state.note_best(episode.version, self._min_episodes)
                    self._advance()  # a version that waited for a verdict gets its turn
                return
        record, canary, baseline, best = trial
        verdict = judge(record.version, canary, record.baseline, baseline, record.imagined_reward_per_step,
                        self._canary, np.random.default_rng(record.version), best)
        with self._lock:
            if self._state.canary != record or _version(self._active) != record.version:
                return  # an operator forced or blocked it meanwhile
            self._state.canary = None
            if verdict.passed:
                self._trust(record.version)
                self._state.note_best(record.version, self._min_episodes)
                event, text, level = "canary_passed", f"v{record.version} passed: {verdict.reason}", "info"
                self._advance()
            else:
                self._reject(record.version)
                fallback = _version(self._effective())
                verdict.values["fallback_version"] = fallback
                event, level = "rolled_back", "error"
                text = f"v{record.version} rolled back to v{fallback}: {verdict.reason}"
            self._state.last_verdict = text
            self._events.append(PolicyEvent(record.version, event, verdict.reason, verdict.values))
        self._log(level, f"canary {text}")

    # -- operator services -------------------------------------------------------------

    def pin(self, version: int) -> tuple[bool, str]:
        """Run held ``version`` and stay on it; 0 unpins and follows the newest accepted version (after
        the verdict on a canary that runs)."""
        with self._lock:
            if version == 0:
                self._state.pinned = None
                self._advance()
                message = f"unpinned: following the newest accepted policy (v{_version(self._effective())} now)"
            elif version in self._held:
                self._state.pinned = version
                self._set_target(self._held[version])
                message = f"pinned to policy version {version}"
            else:
                return False, f"version {version} not held; held: {sorted(self._held)} (0 unpins)"
        self._persist()
        return True, message

    def rollback(self, version: int) -> tuple[bool, str]:
        """Run an older ``version`` (0 = the initial policy) and pin it, though it is below the highest.

        A version that is not held any more is authorised: its bundle is accepted when it
        arrives again (publish it), and the running policy stays until then.
        """
        with self._lock:
            running = _version(self._effective())
            if version >= running:
                return False, (f"v{version} is not older than the running v{running}; "
                               "use ~/pin_policy to move forward")
            if version in self._state.rejected:
                return False, f"v{version} was rejected by this robot and is never run again"
            self._state.pinned = version
            if version == 0 or version in self._held:
                self._set_target(self._held.get(version))
                message = f"rolled back to policy version {version} (pinned)"
            else:
                message = (f"rollback to v{version} authorised (pinned); it is not held, so v{running} keeps "
                           f"running until a bundle with version {version} arrives")
        self._persist()
        self._log("warning", message)
        return True, message

    def force(self, version: int, reason: str = "") -> tuple[bool, str]:
        """Trust ``version`` without (the rest of) a canary; a rejected version is accepted again."""
        if version == 0:
            return False, "v0 is the initial policy: it is always trusted"
        with self._lock:
            effective = _version(self._effective())
            was = ("rejected" if version in self._state.rejected else "trusted" if version in self._state.trusted
                   else "canary" if version == effective else "held" if version in self._held else "not held")
            if was == "trusted":
                return True, f"v{version} is already trusted"
            self._state.rejected = [v for v in self._state.rejected if v != version]
            self._trust(version)
            if self._state.canary is not None and self._state.canary.version == version:
                self._state.canary = None
            self._advance()
            text = f"v{version} forced by the operator (was {was})" + (f": {reason}" if reason else "")
            self._state.last_verdict = text
            self._events.append(PolicyEvent(version, "forced", text, {"was": was, "running": version == effective,
                                                                      "operator_reason": reason}))
        self._persist()
        self._log("warning", text)
        later = {"canary": "its canary ends as passed", "held": "it runs without a canary when its turn comes",
                 "not held": "it runs without a canary when its bundle arrives",
                 "rejected": "no longer rejected: publish its bundle again (older than the newest accepted? "
                             "~/rollback to it)"}[was]
        return True, f"v{version} trusted: {later}"

    def block(self, version: int, reason: str = "") -> tuple[bool, str]:
        """Reject ``version`` for good; when it runs, the previous version runs again from the next tick."""
        if version == 0:
            return False, "v0 is the initial policy: it cannot be blocked"
        with self._lock:
            if version in self._state.rejected:
                return True, f"v{version} is already rejected"
            running = version == _version(self._effective())
            self._reject(version)
            fallback = _version(self._effective())
            text = f"v{version} blocked by the operator" + (f": {reason}" if reason else "")
            self._state.last_verdict = text
            self._events.append(PolicyEvent(version, "blocked", text, {"running": running, "fallback_version": fallback,
                                                                       "operator_reason": reason}))
        self._persist()
        self._log("warning", f"{text}; never accepted again" + (f", back to v{fallback} at the next tick"
                                                                 if running else ""))
        return True, (f"v{version} rejected; v{fallback} runs from the next tick" if running
                      else f"v{version} rejected; its bundle will be refused")

    # -- what the node publishes and writes ----------------------------------------------

    def take_events(self) -> list[PolicyEvent]:
        """Decisions since the last call, oldest first (call :meth:`flush` first: publish what is written)."""
        with self._lock:
            events, self._events = self._events, []
        return events

    def flush(self) -> None:
        """Write the state if the control thread changed it (episode returns, a canary's start or verdict)."""
        with self._lock:
            dirty = self._dirty
        if dirty:
            self._persist()

    # -- status ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """A consistent snapshot for diagnostics."""
        with self._lock:
            newest = self._state.returns[-1] if self._state.returns else None
            recent = [e.ret for e in newest.episodes[-RETURN_MEAN_EPISODES:]] if newest else []
            return {
                "canary": self._canary_progress(),
                "last_verdict": self._state.last_verdict,
                "trusted_versions": list(self._state.trusted),
                # The version that ran the newest complete episode, and its recent returns.
                "episode_return_version": newest.version if newest else None,
                "episode_return_last": recent[-1] if recent else None,
                "episode_return_mean": float(np.mean(recent)) if recent else None,
                "episode_return_count": len(recent),
                "active_version": _version(self._active),
                "pinned": self._state.pinned,
                "highest_accepted": self._state.highest_accepted,
                "rejected_versions": list(self._state.rejected),
                "held_versions": sorted(self._held),
                "previous_version": _version(self._previous),
                "bundles_refused": self._refused,
                "last_rejection": self._last_rejection,
                "state_error": self._state_error,
                "validator_error": self._validator_error,
            }

    # -- internals (called with the lock held unless noted) ------------------------------

    def _effective(self):
        """What runs once the pending switch (if any) is taken."""
        return self._target if self._switch_pending else self._active

    def _set_target(self, runtime) -> None:
        self._target = runtime
        self._switch_pending = True

    def _screen(self, version: int) -> BundleRejected | None:
        if version == 0:
            return BundleRejected("version_too_old", "version 0 is the robot's initial policy; bundles start at 1")
        if version in self._state.rejected:
            return BundleRejected("version_rejected",
                                  f"v{version} was rejected by this robot and is never run again")
        highest = self._state.highest_accepted
        if version < highest and version != self._state.pinned:
            return BundleRejected(
                "version_too_old",
                f"v{version} is older than v{highest}, the newest this robot accepted; to run it, "
                f"roll back explicitly (~/rollback version: {version})",
            )
        return None

    def _min_version(self, version: int) -> int:
        pinned = self._state.pinned
        return version if pinned == version else self._state.highest_accepted

    def _fallback(self, rejected: int):
        """The runtime to swap back to when ``rejected`` runs: the previous one if trusted, else the last
        trusted version if held, else the newest older trusted held one, else the initial policy (None)."""
        previous = _version(self._previous)
        options = [previous, self._state.last_trusted, *sorted((v for v in self._held if v < rejected), reverse=True)]
        for version in options:
            usable = version == previous or version in self._held
            if usable and version != rejected and version not in self._state.rejected and self._trusted(version):
                return self._previous if version == previous else self._held[version]
        return None

    def _trusted(self, version: int) -> bool:
        return version == 0 or self._canary is None or version in self._state.trusted

    def _on_trial(self) -> int | None:
        """The canary version that runs or is about to (newer versions wait for its verdict)."""
        version = _version(self._effective())
        return None if self._trusted(version) else version

    def _trust(self, version: int) -> None:
        self._state.trusted = sorted({*self._state.trusted, version})
        if version == _version(self._active):
            self._state.last_trusted = version

    def _reject(self, version: int) -> None:
        """Mark ``version`` rejected for good; swap back from it at the next tick if it runs or is about to."""
        self._state.rejected = sorted({*self._state.rejected, version})
        self._state.trusted = [v for v in self._state.trusted if v != version]
        if self._state.best is not None and self._state.best.version == version:
            self._state.best = None  # a blocked version is no standard to hold others to
        if self._state.canary is not None and self._state.canary.version == version:
            self._state.canary = None
        self._held.pop(version, None)
        if self._state.pinned == version:
            self._state.pinned = None
        if _version(self._effective()) == version:
            self._set_target(self._fallback(version))

    def _advance(self) -> str:
        """Run the newest held version above the running one from the next tick, unless pinned, a canary
        is on trial, or (for a version that will run as a canary) its baseline has too few complete
        episodes to compare it with yet; returns what it waits for ("" when nothing waits)."""
        newer = [v for v in self._held if v > _version(self._effective())]
        if not newer:
            return ""
        if self._state.pinned is not None:
            return f"pinned to v{self._state.pinned}"
        if (on_trial := self._on_trial()) is not None:
            return f"until the canary v{on_trial} is judged"
        newest = max(newer)
        baseline, need = self._state.last_trusted, self._canary.min_baseline_episodes if self._canary else 0
        have = len(self._state.episodes_of(baseline))
        if not self._trusted(newest) and have < need:
            return f"until v{baseline} has {need} complete episodes to compare it with ({have} so far)"
        self._set_target(self._held[newest])
        return ""

    def _begin_run(self) -> PolicyEvent | None:
        """The active runtime just changed: a trusted version becomes the baseline, any other a canary."""
        version = _version(self._active)
        self._dirty = True
        if self._trusted(version):
            self._state.last_trusted = version
            return None
        record = self._state.canary
        resumed = record is not None and record.version == version
        if not resumed:
            evaluation = getattr(self._active, "manifest", {}).get("evaluation", {})
            imagined = evaluation.get("imagined_reward_per_step")
            record = CanaryRecord(version=version, baseline=self._state.last_trusted,
                                  imagined_reward_per_step=imagined if isinstance(imagined, float) else None)
            self._state.canary = record
        done = len(self._state.episodes_of(version))
        baseline = [e.ret for e in self._state.episodes_of(record.baseline)]
        values = {"episodes": self._canary.episodes, "episodes_done": done, "baseline_version": record.baseline,
                  "baseline_episodes": len(baseline), "baseline_mean": float(np.mean(baseline)) if baseline else None,
                  "imagined_reward_per_step": record.imagined_reward_per_step, "resumed": resumed}
        reason = (f"{'resumed at' if resumed else 'judged after'} {done}/{self._canary.episodes} complete episodes "
                  f"against v{record.baseline} ({len(baseline)} recent episodes)")
        event = PolicyEvent(version, "canary_started", reason, values)
        self._events.append(event)
        return event

    def _trial_due(self, version: int):
        """(canary record, its episodes, its baseline's episodes, the best trusted version and its episodes or
        None) when ``version``'s canary is due a verdict: after its episodes, or as soon as it cannot pass the
        return check any more."""
        record = self._state.canary
        if record is None or record.version != version or _version(self._active) != version:
            return None
        pairs = [(e.ret, e.steps) for e in self._state.episodes_of(version)]
        baseline = [(e.ret, e.steps) for e in self._state.episodes_of(record.baseline)]
        top = self._state.best  # a second baseline when it is another version than the canary's baseline
        best = None if top is None or top.version == record.baseline else (
            top.version, [(e.ret, e.steps) for e in top.episodes])
        if len(pairs) < self._canary.episodes and not cannot_pass(pairs, baseline, self._canary,
                                                                  np.random.default_rng(record.version), best):
            return None
        return record, pairs, baseline, best

    def _canary_progress(self) -> str:
        record, version = self._state.canary, _version(self._active)
        if record is None or record.version != version or self._trusted(version):
            return "none"
        return f"v{version} {len(self._state.episodes_of(version))}/{self._canary.episodes} episodes"

    def _trim(self) -> None:
        keep = {_version(r) for r in (self._active, self._previous, self._target)}
        keep |= {self._state.pinned, self._state.last_trusted}
        for version in sorted(self._held)[:-self._history]:
            if version not in keep:
                del self._held[version]

    def _refuse(self, version: int, exc: Exception) -> None:
        """Count and log a refusal (lock not held)."""
        reason = exc.reason if isinstance(exc, BundleRejected) else f"error ({type(exc).__name__})"
        with self._lock:
            self._refused += 1
            self._last_rejection = f"v{version}: {reason}"
        self._log("error", f"policy bundle v{version} refused: {exc}")

    def _persist(self) -> None:
        """Write the version state (lock not held); the newest state always lands last."""
        if self._state_path is None:
            return
        with self._persist_lock:
            with self._lock:
                snapshot = self._state.model_copy(deep=True)
                self._dirty = False
            try:
                snapshot.save(self._state_path)
                error = ""
            except OSError as exc:
                error = f"cannot write {self._state_path}: {exc}"
            with self._lock:
                self._state_error = error
        if error:
            self._log("error", f"{error}; after a restart this robot could accept versions older than "
                               f"v{snapshot.highest_accepted} (fix the state_dir)")

    def _validate_loop(self, load: Loader) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
            try:
                self.validate_next(load, timeout=0.5)
            except Exception as exc:  # e.g. the log callback failing: later bundles must still be validated
                with self._lock:
                    self._validator_error = f"{type(exc).__name__}: {exc}"
