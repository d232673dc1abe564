"""Which policy the robot runs: bundle mailbox, validated versions, pin, rollback and rejection.

ROS callbacks (bundles, operator services), the bundle-validator thread and the
control thread all call one :class:`PolicyManager`; a single lock guards its
state, and nothing slow (validation, file writes) runs while it is held, so the
control thread's once-per-tick :meth:`PolicyManager.take_switch` never waits long.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamer_core.control.version_state import VersionState
from dreamer_core.deploy.errors import BundleRejected

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
    ``state_path``). The runtime that ran before the current one stays loaded, so
    :meth:`reject_active` can swap back at the next tick.
    """

    def __init__(self, robot_id: str, *, state_path: Path | None = None, history: int = 5,
                 log: Log | None = None):
        self.robot_id = robot_id
        self._state_path = state_path
        self._state = VersionState.load(state_path, robot_id) if state_path else VersionState(robot_id=robot_id)
        self._history = history
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
                if pinned == version or (pinned is None and version >= _version(self._effective())):
                    self._set_target(runtime)
                self._trim()
        if refusal is not None:
            self._refuse(version, refusal)
            return False
        self._persist()
        where = "swapping at the next tick" if pinned in (None, version) else f"held (pinned to v{pinned})"
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
            return Switch(self._active)

    def reject_active(self, reason: str) -> int | None:
        """Reject the running version for good and swap back to the previous one at the next tick.

        Returns the rejected version, or None when the initial policy runs (nothing to reject).
        """
        with self._lock:
            version = _version(self._active)
            if version == 0:
                return None
            self._state.rejected = sorted({*self._state.rejected, version})
            self._held.pop(version, None)
            if self._state.pinned == version:
                self._state.pinned = None
            if _version(self._effective()) == version:
                self._set_target(self._fallback(version))
            fallback = _version(self._target)
        self._persist()
        self._log("error", f"policy v{version} rejected ({reason}); back to v{fallback} at the next tick, "
                           f"v{version} is never accepted again")
        return version

    # -- operator services -------------------------------------------------------------

    def pin(self, version: int) -> tuple[bool, str]:
        """Run held ``version`` and stay on it; 0 unpins and follows the newest accepted version."""
        with self._lock:
            if version == 0:
                self._state.pinned = None
                newest = max(self._held, default=None)
                if newest is not None and newest > _version(self._effective()):
                    self._set_target(self._held[newest])
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

    # -- status ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """A consistent snapshot for diagnostics."""
        with self._lock:
            return {
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
        """The runtime to swap back to when ``rejected`` runs: the previous one, else the newest older held."""
        if self._previous is not None and _version(self._previous) not in self._state.rejected:
            return self._previous
        older = [v for v in self._held if v < rejected]
        return self._held[max(older)] if older else None

    def _trim(self) -> None:
        keep = {_version(r) for r in (self._active, self._previous, self._target)} | {self._state.pinned}
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
