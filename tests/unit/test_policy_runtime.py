"""PolicyRuntime: loading checks (one refusal per fault), stepping, and isolation from failed loads."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import textwrap

import deploy_helpers as helpers
import numpy as np
import onnx
import pytest
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dreamer_core.deploy import (
    BundleRejected,
    PolicyRuntime,
    build_bundle,
    generate_keypair,
    load_private_key,
    save_bundle_file,
    sign_bundle,
)
from dreamer_core.deploy.export import export_agent
from dreamer_core.deploy.manifest import INPUT_NAMES
from dreamer_core.deploy.runtime import sample_noise
from dreamer_core.deploy.validation import MAX_OPSET, read_onnx

KEY = Ed25519PrivateKey.generate()
SPEC = helpers.a1_spec()


def make_bundle(onnx_bytes: bytes, spec=SPEC, key=KEY, version: int = 1):
    return build_bundle(onnx_bytes, spec, version, 1000, "xs", key)


def load(bundle, **kwargs) -> PolicyRuntime:
    return PolicyRuntime.load(bundle, **{"expected_spec": SPEC, "public_key": KEY.public_key(), **kwargs})


def _nan_weights() -> bytes:
    agent = helpers.new_agent("xs", seed=3)
    with torch.no_grad():
        next(agent.actor.parameters()).fill_(float("nan"))
    return export_agent(agent)


def _newer_opset(model: onnx.ModelProto) -> None:
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = MAX_OPSET + 1


def _custom_domain_op(model: onnx.ModelProto) -> None:
    model.graph.node.append(onnx.helper.make_node("Exfiltrate", ["obs"], ["leak"], domain="com.example"))
    model.opset_import.append(onnx.helper.make_opsetid("com.example", 1))


def _loop_op(model: onnx.ModelProto) -> None:
    body = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
        [onnx.helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
         onnx.helper.make_tensor_value_info("cond_in", onnx.TensorProto.BOOL, [])],
        [onnx.helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, [])],
    )
    # No trip count and no condition: this loop would never end.
    model.graph.node.append(onnx.helper.make_node("Loop", ["", ""], [], body=body))


def _swapped_legs():
    joints = helpers.A1_JOINTS
    return helpers.a1_spec(action_joints=joints[3:6] + joints[:3] + joints[6:])


# Each case makes exactly one thing wrong: (reason expected, bundle, extra load arguments).
BAD_BUNDLES = {
    "truncated onnx": ("truncated", lambda good: dataclasses.replace(good, onnx=good.onnx[: len(good.onnx) // 2]), {}),
    "wrong sha256": ("sha256_mismatch", lambda good: dataclasses.replace(
        good, onnx=good.onnx[:-1] + bytes([good.onnx[-1] ^ 0xFF])), {}),
    "missing signature": ("signature_missing", lambda good: dataclasses.replace(good, signature=b""), {}),
    "signed by another key": ("signature_invalid", lambda good: make_bundle(
        good.onnx, key=Ed25519PrivateKey.generate()), {}),
    "joint order differs": ("spec_mismatch", lambda good: make_bundle(good.onnx, spec=_swapped_legs()), {}),
    "wrong input shape": ("input_shape", lambda good: make_bundle(
        helpers.exported("xs", 0, helpers.OBS_DIM + 1)), {}),
    "weights produce NaN": ("non_finite_output", lambda good: make_bundle(_nan_weights()), {}),
    "opset newer than supported": ("opset_unsupported", lambda good: make_bundle(
        helpers.edit_onnx(good.onnx, _newer_opset)), {}),
    "custom-domain op": ("op_not_allowed", lambda good: make_bundle(
        helpers.edit_onnx(good.onnx, _custom_domain_op)), {}),
    "Loop op": ("op_not_allowed", lambda good: make_bundle(helpers.edit_onnx(good.onnx, _loop_op)), {}),
    "over the size limit": ("too_large", lambda good: good, {"max_bytes": 4096}),
    "actions beyond the spec's bounds": ("action_out_of_range", lambda good: make_bundle(
        good.onnx, spec=helpers.a1_spec(action_low=-0.05, action_high=0.05)),
        {"expected_spec": helpers.a1_spec(action_low=-0.05, action_high=0.05)}),
}


@pytest.fixture(scope="module")
def good():
    return make_bundle(helpers.exported("xs"))


def test_good_bundle_loads_with_single_threaded_session(good):
    runtime = load(good)
    options = runtime._session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert runtime.version == 1 and runtime.manifest["sha256"] == good.sha256
    action = runtime.step(np.zeros(SPEC.obs_dim, np.float32), explore=True)
    assert action.shape == (SPEC.act_dim,) and action.dtype == np.float32
    assert np.all(np.abs(action) <= 1.0)


@pytest.mark.parametrize("case", list(BAD_BUNDLES))
def test_bad_bundle_is_refused_with_its_reason(case, good):
    reason, make, kwargs = BAD_BUNDLES[case]
    assert len(good.onnx) > 4096  # the size case relies on it
    with pytest.raises(BundleRejected) as exc:
        load(make(good), **kwargs)
    assert exc.value.reason == reason, str(exc.value)
    assert len(str(exc.value)) > len(f"policy bundle refused ({reason}): ") + 20  # a real explanation


def test_refusal_message_names_the_joint_that_differs(good):
    with pytest.raises(BundleRejected, match="action joint 0 is 'FL_hip_joint', robot's is 'FR_hip_joint'"):
        load(make_bundle(good.onnx, spec=_swapped_legs()))


def test_development_mode_accepts_unsigned_bundles_loudly(good, caplog):
    with caplog.at_level(logging.WARNING):
        runtime = load(dataclasses.replace(good, signature=b""), allow_unsigned=True)
    assert "DEVELOPMENT MODE" in caplog.text
    assert runtime.step(np.zeros(SPEC.obs_dim, np.float32), explore=False).shape == (SPEC.act_dim,)


def test_failed_loads_leave_the_running_policy_untouched(good):
    # One runtime, run twice over the same episode from a reset: the second time a burst of bad
    # bundles arrives mid-episode. Some are refused only after their validation inference ran, so
    # state shared between runtimes (class-level buffers, a cached session) would change the rest
    # of this episode.
    assert {"non_finite_output", "action_out_of_range"} <= {reason for reason, _, _ in BAD_BUNDLES.values()}
    observations = np.random.default_rng(0).normal(size=(40, SPEC.obs_dim)).astype(np.float32)
    running = load(good)
    undisturbed = [running.step(obs, explore=True, rng=np.random.default_rng(t)) for t, obs in enumerate(observations)]
    running.reset()
    for t, obs in enumerate(observations):
        if t == 20:
            for reason, make, kwargs in BAD_BUNDLES.values():
                with pytest.raises(BundleRejected, match=reason):
                    load(make(good), **kwargs)
        np.testing.assert_array_equal(running.step(obs, explore=True, rng=np.random.default_rng(t)), undisturbed[t])


def test_step_matches_the_torch_tick_with_state_carried(good):
    module = helpers.agent("xs").policy_tick()
    runtime = load(good)
    rng_runtime, rng_torch = np.random.default_rng(4), np.random.default_rng(4)
    state = {k: torch.zeros(v.shape) for k, v in helpers.agent("xs").initial_state(1).items()}
    gumbel, eps = np.zeros(tuple(state["z"].shape), np.float32), np.zeros(tuple(state["prev_action"].shape), np.float32)
    for t, obs in enumerate(np.random.default_rng(1).normal(size=(30, SPEC.obs_dim)).astype(np.float32)):
        explore = t % 3 != 0
        action = runtime.step(obs, explore=explore, rng=rng_runtime)
        sample_noise(rng_torch, gumbel, eps, explore)
        feeds = {"obs": torch.from_numpy(obs[None]), **state, "is_first": torch.tensor([float(t == 0)]),
                 "gumbel": torch.from_numpy(gumbel), "eps": torch.from_numpy(eps)}
        with torch.no_grad():
            sampled, mean, h_next, z_next = module(*(feeds[name] for name in INPUT_NAMES))
        expected = sampled if explore else mean
        np.testing.assert_allclose(action, expected[0].numpy(), atol=1e-5)
        state = {"h": h_next, "z": z_next, "prev_action": expected}


def test_reset_starts_a_new_episode(good):
    observations = np.random.default_rng(2).normal(size=(10, SPEC.obs_dim)).astype(np.float32)
    runtime = load(good)
    first = [runtime.step(o, explore=True, rng=np.random.default_rng(t)) for t, o in enumerate(observations)]
    runtime.reset()
    again = [runtime.step(o, explore=True, rng=np.random.default_rng(t)) for t, o in enumerate(observations)]
    np.testing.assert_array_equal(first, again)
    # Without a reset the carried state changes what the same inputs produce.
    later = [runtime.step(o, explore=True, rng=np.random.default_rng(t)) for t, o in enumerate(observations)]
    assert not np.array_equal(first, later)


def test_mean_action_ignores_action_noise(good):
    obs = np.ones(SPEC.obs_dim, np.float32)
    a = load(good).step(obs, explore=False, rng=np.random.default_rng(0))
    b = load(good).step(obs, explore=False, rng=np.random.default_rng(0))
    c = load(good).step(obs, explore=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_observation_is_refused_without_touching_the_state(good):
    observations = np.random.default_rng(3).normal(size=(5, SPEC.obs_dim)).astype(np.float32)
    runtime, reference = load(good), load(good)
    for t, obs in enumerate(observations):
        if t == 2:
            with pytest.raises(ValueError, match="NaN"):
                runtime.step(np.full(SPEC.obs_dim, np.nan, np.float32), explore=True)
            with pytest.raises(ValueError, match="shape"):
                runtime.step(np.zeros(SPEC.obs_dim + 1, np.float32), explore=True)
        np.testing.assert_array_equal(runtime.step(obs, explore=True, rng=np.random.default_rng(t)),
                                      reference.step(obs, explore=True, rng=np.random.default_rng(t)))


def test_graph_reader_refuses_corrupted_onnx_with_a_reason(good):
    # Flip bytes where the graph structure lives (nodes first, inputs/outputs last) and truncate;
    # every outcome must be a clean parse or a malformed_onnx refusal, never another exception.
    rng = np.random.default_rng(0)
    data = good.onnx
    refused = 0
    for trial in range(300):
        corrupted = bytearray(data[: int(rng.integers(1, len(data)))] if trial % 3 == 0 else data)
        for _ in range(3):
            near_start = int(rng.integers(0, min(4096, len(corrupted))))
            corrupted[near_start if rng.random() < 0.5 else -1 - near_start] = int(rng.integers(256))
        try:
            read_onnx(bytes(corrupted))
        except BundleRejected as exc:
            assert exc.reason == "malformed_onnx"
            refused += 1
    assert refused > 0


ONBOARD_PROBE = textwrap.dedent(
    """
    import importlib.abc, sys
    import numpy as np

    class Block(importlib.abc.MetaPathFinder):  # the robot image has neither torch nor onnx
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "onnx"):
                raise ImportError(f"blocked import of {name}")

    sys.meta_path.insert(0, Block())
    from dreamer_core.deploy import PolicyRuntime, load_bundle_file, load_public_key, parse_manifest
    bundle = load_bundle_file(sys.argv[1])
    spec = parse_manifest(bundle.manifest_json).policy_spec()
    runtime = PolicyRuntime.load(bundle, expected_spec=spec, public_key=load_public_key(sys.argv[2]))
    action = runtime.step(np.zeros(spec.obs_dim, np.float32), explore=False)
    print("action", action.shape)
    """
)


def test_robot_loads_and_steps_a_bundle_file_without_torch_or_onnx(good, tmp_path):
    key_path, pub_path = generate_keypair(tmp_path)
    path = save_bundle_file(sign_bundle(good, load_private_key(key_path)), tmp_path / "policy.bundle")
    result = subprocess.run([sys.executable, "-c", ONBOARD_PROBE, str(path), str(pub_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"action ({SPEC.act_dim},)" in result.stdout


def test_sample_observations_must_be_finite_and_fit_the_spec(good):
    with pytest.raises(ValueError, match=rf"\[N, {SPEC.obs_dim}\]"):
        load(good, sample_observations=np.zeros((4, SPEC.obs_dim + 1), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        load(good, sample_observations=np.full((4, SPEC.obs_dim), np.nan, np.float32))
    recorded = np.random.default_rng(5).normal(size=(8, SPEC.obs_dim))  # float64 is converted
    assert load(good, sample_observations=recorded).version == good.version
