"""The onboard policy: a verified bundle stepped with onnxruntime, one tick at a time.

numpy + onnxruntime only (no torch). All checks and the expensive session set-up
happen in :meth:`PolicyRuntime.load`, which the control node may run in a
background thread; :meth:`PolicyRuntime.step` is the cheap per-tick call.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dreamer_core.deploy.bundle import DEFAULT_MAX_BYTES, PolicyBundle, authenticate
from dreamer_core.deploy.errors import BundleRejected
from dreamer_core.deploy.manifest import INPUT_NAMES, OUTPUT_NAMES, Manifest
from dreamer_core.deploy.validation import check_graph, read_onnx
from dreamer_core.spec import PolicySpec

_STATE = ("h", "z", "prev_action")
# Slack for float rounding when checking actions against the spec's bounds.
_BOUND_TOLERANCE = 1e-6


def sample_noise(rng: np.random.Generator, gumbel: np.ndarray, eps: np.ndarray, explore: bool) -> None:
    """Fill the policy step's noise inputs in place (float32).

    ``gumbel`` gets Gumbel(0, 1) noise for the posterior's one-hot sample (drawn in every
    mode: the filter samples its latent as in training); ``eps`` gets N(0, 1) action noise
    when exploring and zeros otherwise, so the sampled action equals the mean.
    """
    rng.random(out=gumbel, dtype=np.float32)
    # u = 0 would give -inf noise; the smallest normal float keeps it finite.
    np.maximum(gumbel, np.finfo(np.float32).tiny, out=gumbel)
    np.log(gumbel, out=gumbel)
    np.negative(gumbel, out=gumbel)
    np.log(gumbel, out=gumbel)
    np.negative(gumbel, out=gumbel)
    if explore:
        rng.standard_normal(out=eps, dtype=np.float32)
    else:
        eps.fill(0.0)


def spec_difference(bundle_spec: PolicySpec, robot_spec: PolicySpec) -> str:
    """A short description of the first way two specs differ (for refusal messages)."""
    if bundle_spec.robot_id != robot_spec.robot_id:
        return f"robot_id {bundle_spec.robot_id!r} vs robot's {robot_spec.robot_id!r}"
    if bundle_spec.observation != robot_spec.observation:
        return f"observation terms {list(bundle_spec.observation)} vs robot's {list(robot_spec.observation)}"
    if bundle_spec.action_joints != robot_spec.action_joints:
        for i, (a, b) in enumerate(zip(bundle_spec.action_joints, robot_spec.action_joints, strict=False)):
            if a != b:
                return f"action joint {i} is {a!r}, robot's is {b!r} (joint order differs)"
        return f"{bundle_spec.act_dim} action joints vs robot's {robot_spec.act_dim}"
    return (
        f"action bounds [{bundle_spec.action_low}, {bundle_spec.action_high}] vs robot's "
        f"[{robot_spec.action_low}, {robot_spec.action_high}]"
    )


def default_sample_observations(obs_dim: int, count: int = 32) -> np.ndarray:
    """Observations for the validation inference when the robot supplies none: zeros, then wide noise."""
    rng = np.random.default_rng(0)
    samples = rng.normal(0.0, 3.0, size=(count, obs_dim)).astype(np.float32)
    samples[0] = 0.0
    return samples


class PolicyRuntime:
    """A loaded, verified policy that carries the filter state (h, z, previous action) between ticks.

    Create with :meth:`load`. Not thread-safe per instance: step one runtime from one
    thread; a new runtime may be loaded in another thread and swapped in between ticks.
    """

    def __init__(self, session: ort.InferenceSession, manifest: Manifest, spec: PolicySpec) -> None:
        self._session = session
        self.spec = spec
        self.version: int = manifest.policy_version
        self.manifest: dict = manifest.model_dump(mode="json")
        inputs, outputs = manifest.dims.input_shapes(), manifest.dims.output_shapes()
        zeros = {name: np.zeros(shape, np.float32) for name, shape in {**inputs, **outputs}.items()}
        self._obs, self._is_first = zeros["obs"], zeros["is_first"]
        self._gumbel, self._eps, self._action_mean = zeros["gumbel"], zeros["eps"], zeros["action_mean"]
        # Two carried-state buffers: a tick reads one and writes the other, then they swap. The
        # IOBindings point onnxruntime at these arrays once, so a tick allocates nothing.
        self._state = [{k: np.zeros(inputs[k], np.float32) for k in _STATE} for _ in range(2)]
        self._bindings = []
        for current, following in ((0, 1), (1, 0)):
            binding = session.io_binding()
            for name in INPUT_NAMES:
                array = self._state[current][name] if name in _STATE else zeros[name]
                binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array))
            targets = {"action": self._state[following]["prev_action"], "action_mean": self._action_mean,
                       "h_next": self._state[following]["h"], "z_next": self._state[following]["z"]}
            for name in OUTPUT_NAMES:
                binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(targets[name]))
            self._bindings.append(binding)
        self._current = 0
        self._rng = np.random.default_rng()
        self._needs_reset = True

    @classmethod
    def load(
        cls,
        bundle: PolicyBundle,
        *,
        expected_spec: PolicySpec,
        public_key: Ed25519PublicKey | None,
        allow_unsigned: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        sample_observations: np.ndarray | None = None,
        min_version: int = 0,
    ) -> PolicyRuntime:
        """Verify ``bundle`` for this robot and build a runtime, or raise :class:`BundleRejected`.

        Checks, in order: size limits, signature (``allow_unsigned`` = development mode,
        logged loudly), manifest, header fields, truncation, sha256, the signed version
        against ``min_version`` (the highest the robot accepted), spec hash against
        ``expected_spec``, graph (external data, opset, allowed ops, input/output names and
        shapes); then opens an onnxruntime session (1 intra-op, 1 inter-op thread,
        sequential) and steps it over ``sample_observations`` [N, obs_dim] (default: zeros and
        seeded noise), exploring and not, requiring finite outputs and actions within the
        spec's bounds. Nothing here touches any other runtime.
        """
        manifest = authenticate(bundle, public_key, allow_unsigned=allow_unsigned, max_bytes=max_bytes)
        if manifest.policy_version < min_version:
            raise BundleRejected(
                "version_too_old",
                f"policy version {manifest.policy_version} is older than the minimum {min_version}; "
                "an older policy runs only after an explicit rollback to it",
            )
        if manifest.spec_hash != expected_spec.hash():
            difference = spec_difference(manifest.policy_spec(), expected_spec)
            raise BundleRejected(
                "spec_mismatch",
                f"policy was trained for another spec: {difference}; use a policy trained "
                "for this robot's config",
            )
        check_graph(read_onnx(bundle.onnx), manifest.dims)
        runtime = cls(open_session(bundle.onnx), manifest, expected_spec)
        if sample_observations is None:
            sample_observations = default_sample_observations(expected_spec.obs_dim)
        runtime._validate(np.asarray(sample_observations, dtype=np.float32))
        runtime.reset()
        return runtime

    def reset(self) -> None:
        """Return to the episode start: the next :meth:`step` runs with ``is_first``."""
        for buffers in self._state:
            for array in buffers.values():
                array.fill(0.0)
        self._needs_reset = True

    def step(
        self, obs: np.ndarray, *, explore: bool, is_first: bool = False, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """One control tick: filter ``obs`` into the latent state and return the action [A] float32.

        ``explore`` samples the action (data collection), otherwise the mean is returned.
        The returned action becomes the next tick's previous action. Raises ``ValueError`` on
        a wrongly shaped or non-finite observation, leaving the state untouched.
        """
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape != self._obs.shape[1:]:
            raise ValueError(f"observation has shape {obs.shape}, policy expects ({self._obs.shape[1]},)")
        if not np.isfinite(obs).all():
            raise ValueError("observation contains NaN or inf; state left untouched (hold or reset the robot)")
        self._tick(obs, is_first or self._needs_reset, explore, self._rng if rng is None else rng)
        self._needs_reset = False
        return self._state[self._current]["prev_action"][0].copy()

    def executed(self, action: np.ndarray) -> None:
        """Tell the policy what the robot executed after the last :meth:`step` (the rate-limited,
        filtered action it sent the motors): that, not the returned action, is the next tick's
        previous action, as in the replay the model was trained on."""
        self._state[self._current]["prev_action"][0] = action

    def _tick(self, obs: np.ndarray, is_first: bool, explore: bool, rng: np.random.Generator) -> dict:
        """Run the graph once and swap state buffers; returns the outputs (views, valid until the next tick)."""
        self._obs[0] = obs
        self._is_first[0] = 1.0 if is_first else 0.0
        sample_noise(rng, self._gumbel, self._eps, explore)
        self._session.run_with_iobinding(self._bindings[self._current])
        self._current = 1 - self._current
        state = self._state[self._current]
        sampled = state["prev_action"]
        if not explore:
            # The mean was executed, so it (not the sample) is the next tick's previous action.
            sampled = sampled.copy()
            state["prev_action"][:] = self._action_mean
        return {"action": sampled, "action_mean": self._action_mean, "h_next": state["h"], "z_next": state["z"]}

    def _validate(self, observations: np.ndarray) -> None:
        if observations.ndim != 2 or observations.shape[1] != self.spec.obs_dim:
            raise ValueError(
                f"sample_observations must be [N, {self.spec.obs_dim}], got {observations.shape}"
            )
        if not np.isfinite(observations).all():
            # Bad samples would blame the bundle for the robot's own sensor faults.
            raise ValueError("sample_observations contain NaN/inf; pass finite recorded observations")
        low, high = self.spec.action_low - _BOUND_TOLERANCE, self.spec.action_high + _BOUND_TOLERANCE
        rng = np.random.default_rng(0)
        for explore in (True, False):
            self.reset()
            for i, obs in enumerate(observations):
                try:
                    outputs = self._tick(obs, i == 0, explore, rng)
                except Exception as exc:  # onnxruntime raises its own exception types
                    raise BundleRejected("onnxruntime_error", f"validation inference failed: {exc}") from exc
                for name, value in outputs.items():
                    if not np.isfinite(value).all():
                        raise BundleRejected(
                            "non_finite_output",
                            f"validation inference gave NaN/inf in {name!r} at sample {i} "
                            f"(explore={explore}); the weights are broken, do not deploy this policy",
                        )
                for name in ("action", "action_mean"):
                    value = outputs[name]
                    if value.min() < low or value.max() > high:
                        raise BundleRejected(
                            "action_out_of_range",
                            f"validation inference gave {name} in "
                            f"[{value.min():.4g}, {value.max():.4g}] at sample {i}, outside the spec's "
                            f"[{self.spec.action_low}, {self.spec.action_high}]",
                        )


def open_session(onnx_bytes: bytes) -> ort.InferenceSession:
    """An onnxruntime CPU session for a control loop: one intra-op and one inter-op thread, sequential."""
    options = ort.SessionOptions()
    # The default thread pools spin on every core and starve the control loop.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BundleRejected("onnxruntime_error", f"onnxruntime cannot load the model: {exc}") from exc
