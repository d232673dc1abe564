"""Policy bundles: manifest contents, Ed25519 signing, the file container, and keys."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import stat
import zipfile
from pathlib import Path

import deploy_helpers as helpers
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dreamer_core.deploy import (
    REASONS,
    BundleRejected,
    authenticate,
    build_bundle,
    generate_keypair,
    load_bundle_file,
    load_private_key,
    load_public_key,
    save_bundle_file,
    sign_bundle,
)
from dreamer_core.deploy.manifest import FORMAT_VERSION, INPUT_NAMES, OUTPUT_NAMES, parse_manifest


@pytest.fixture(scope="module")
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def bundle(key):
    return build_bundle(helpers.exported("xs"), helpers.a1_spec(), 7, 12_345, "xs", key,
                        evaluation={"reward_skill": 0.5, "skill_reward": [0.1, 0.2, 0.5]})


def test_manifest_describes_the_onnx_and_the_spec(bundle):
    manifest = parse_manifest(bundle.manifest_json)
    spec = helpers.a1_spec()
    agent = helpers.agent("xs")
    assert manifest.format_version == FORMAT_VERSION
    assert (manifest.policy_version, manifest.training_step, manifest.model_preset) == (7, 12_345, "xs")
    assert manifest.robot_id == spec.robot_id and manifest.policy_spec() == spec
    assert manifest.spec_hash == spec.hash() == bundle.spec_hash
    assert manifest.sha256 == hashlib.sha256(bundle.onnx).hexdigest() == bundle.sha256
    assert manifest.onnx_size == len(bundle.onnx)
    state = agent.initial_state(1)
    assert manifest.dims.model_dump() == {
        "obs": spec.obs_dim, "act": spec.act_dim, "deter": state["h"].shape[1], "stoch": state["z"].shape[1]
    }
    assert manifest.opset == 17
    assert (manifest.inputs, manifest.outputs) == (INPUT_NAMES, OUTPUT_NAMES)
    assert manifest.evaluation == {"reward_skill": 0.5, "skill_reward": [0.1, 0.2, 0.5]}
    assert bundle.version == 7 and bundle.signed


def test_signature_authenticates_manifest_and_onnx(bundle, key):
    manifest = authenticate(bundle, key.public_key())
    assert manifest.policy_version == 7
    # Any edit of the signed manifest (here: claim a later training step) breaks the signature.
    forged = bundle.manifest_json.replace('"training_step": 12345', '"training_step": 99999')
    assert forged != bundle.manifest_json
    with pytest.raises(BundleRejected) as exc:
        authenticate(dataclasses.replace(bundle, manifest_json=forged), key.public_key())
    assert exc.value.reason == "signature_invalid"


def test_header_fields_must_match_the_signed_manifest(bundle, key):
    with pytest.raises(BundleRejected) as exc:
        authenticate(dataclasses.replace(bundle, version=8), key.public_key())
    assert exc.value.reason == "header_mismatch"


def test_unsigned_bundle_needs_development_mode_which_logs_loudly(bundle, key, caplog):
    unsigned = dataclasses.replace(bundle, signature=b"")
    with pytest.raises(BundleRejected) as exc:
        authenticate(unsigned, key.public_key())
    assert exc.value.reason == "signature_missing"
    with caplog.at_level(logging.WARNING, logger="dreamer_core.deploy.bundle"):
        authenticate(unsigned, key.public_key(), allow_unsigned=True)
    assert "DEVELOPMENT MODE" in caplog.text and "WITHOUT signature verification" in caplog.text


def test_no_public_key_is_refused_outside_development_mode(bundle):
    with pytest.raises(BundleRejected) as exc:
        authenticate(bundle, None)
    assert exc.value.reason == "no_public_key"


def test_a_wrong_signature_is_refused_even_in_development_mode(bundle):
    other = Ed25519PrivateKey.generate()
    with pytest.raises(BundleRejected) as exc:
        authenticate(bundle, other.public_key(), allow_unsigned=True)
    assert exc.value.reason == "signature_invalid"


def test_sign_refuses_a_bundle_whose_onnx_does_not_match(bundle, key):
    corrupted = bytearray(bundle.onnx)
    corrupted[len(corrupted) // 2] ^= 0xFF
    with pytest.raises(BundleRejected) as exc:
        sign_bundle(dataclasses.replace(bundle, onnx=bytes(corrupted)), key)
    assert exc.value.reason == "sha256_mismatch"


def test_file_round_trip_keeps_every_field(bundle, tmp_path):
    path = save_bundle_file(bundle, tmp_path / "policy.bundle")
    assert load_bundle_file(path) == bundle
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "policy.onnx", "signature"]
        assert zf.read("manifest.json").decode() == bundle.manifest_json
    unsigned = dataclasses.replace(bundle, signature=b"")
    assert load_bundle_file(save_bundle_file(unsigned, tmp_path / "dev.bundle")) == unsigned
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_truncated_bundle_file_is_refused(bundle, tmp_path):
    path = save_bundle_file(bundle, tmp_path / "policy.bundle")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BundleRejected) as exc:
        load_bundle_file(path)
    assert exc.value.reason == "truncated"
    assert str(path) in str(exc.value)


def test_file_that_is_not_a_bundle_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a bundle")
    with pytest.raises(BundleRejected) as exc:
        load_bundle_file(path)
    assert exc.value.reason == "malformed_bundle"


def test_oversized_bundle_file_is_refused_before_reading(bundle, tmp_path):
    path = save_bundle_file(bundle, tmp_path / "policy.bundle")
    with pytest.raises(BundleRejected) as exc:
        load_bundle_file(path, max_bytes=len(bundle.onnx) - 1)
    assert exc.value.reason == "too_large"


def test_malformed_manifest_names_the_key(bundle):
    data = json.loads(bundle.manifest_json)
    data["dims"]["deter"] = "wide"
    with pytest.raises(BundleRejected) as exc:
        parse_manifest(json.dumps(data))
    assert exc.value.reason == "malformed_manifest" and "dims.deter" in str(exc.value)
    del data["sha256"]
    with pytest.raises(BundleRejected, match="sha256"):
        parse_manifest(json.dumps(data))


@pytest.mark.parametrize("path, value", [
    (("policy_version",), "2"),
    (("policy_version",), 2.0),
    (("policy_version",), True),
    (("training_step",), "12345"),
    (("dims", "act"), 12.0),
    (("spec", "observation", 0, 1), "12"),
    (("spec", "action_joints", 0), 1),
    (("spec", "unknown_key"), 1),  # unknown keys are refused at every depth
    (("dims", "extra_dim"), 1),
    (("extra",), {"note": "anything"}),
    (("evaluation",), {"trust": {"nested": 1.0}}),
    (("evaluation",), {"score": "high"}),
    (("evaluation",), {"bad name!": 1.0}),
])
def test_manifest_types_are_strict_and_unknown_keys_refused_anywhere(bundle, path, value):
    data = json.loads(bundle.manifest_json)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(BundleRejected) as exc:
        parse_manifest(json.dumps(data))
    assert exc.value.reason == "malformed_manifest", exc.value
    assert ".".join(str(p) for p in path[:2]) in str(exc.value)


def test_manifest_evaluation_values_must_be_finite(bundle):
    data = json.loads(bundle.manifest_json)
    data["evaluation"] = {"return": float("nan")}
    with pytest.raises(BundleRejected, match="evaluation"):
        parse_manifest(json.dumps(data))


def test_newer_manifest_format_is_refused(bundle):
    data = json.loads(bundle.manifest_json)
    data["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(BundleRejected) as exc:
        parse_manifest(json.dumps(data))
    assert exc.value.reason == "format_unsupported"


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path):
    key_path, pub_path = generate_keypair(tmp_path / "keys")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key, pub = load_private_key(key_path), load_public_key(pub_path)
    bundle = build_bundle(helpers.exported("xs"), helpers.a1_spec(), 1, 0, "xs", key)
    authenticate(bundle, pub)
    with pytest.raises(FileExistsError):
        generate_keypair(tmp_path / "keys")
    new_key, _ = generate_keypair(tmp_path / "keys", force=True)
    assert new_key.read_bytes() != b"" and load_private_key(new_key).public_key() != pub


def test_keys_with_loose_permissions_or_of_the_wrong_kind_are_refused(tmp_path):
    key_path, _ = generate_keypair(tmp_path)
    key_path.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_private_key(key_path)
    with pytest.raises(ValueError, match=r"policy_signing\.pub"):
        load_public_key(key_path)
    with pytest.raises(FileNotFoundError, match="keygen"):
        load_private_key(tmp_path / "missing.key")


def test_docs_explain_every_refusal_reason():
    text = (Path(__file__).resolve().parents[2] / "docs" / "policy_bundles.md").read_text()
    assert [reason for reason in REASONS if f"`{reason}`" not in text] == []
