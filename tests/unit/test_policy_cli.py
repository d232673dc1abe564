"""The dreamer-policy command line: keygen, sign, verify, inspect on real files."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess
import sys

import deploy_helpers as helpers
import pytest

from dreamer_core.deploy import build_bundle, load_bundle_file, save_bundle_file
from dreamer_core.deploy.cli import main
from dreamer_core.robots.config import load_robot_config


@pytest.fixture()
def keys(tmp_path):
    assert main(["keygen", "--out", str(tmp_path / "keys")]) == 0
    return tmp_path / "keys" / "policy_signing.key", tmp_path / "keys" / "policy_signing.pub"


@pytest.fixture()
def unsigned_file(tmp_path):
    bundle = build_bundle(helpers.exported("xs"), helpers.a1_spec(), 5, 2000, "xs", None)
    return save_bundle_file(bundle, tmp_path / "policy.bundle")


@pytest.fixture()
def spec_json(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(helpers.a1_spec().to_dict()))
    return path


def test_keygen_writes_owner_only_private_key_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path)]) == 0
    key, pub = tmp_path / "policy_signing.key", tmp_path / "policy_signing.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and pub.is_file()
    assert "fingerprint: SHA256:" in capsys.readouterr().out
    assert main(["keygen", "--out", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_sign_then_verify_against_the_robot_spec(keys, unsigned_file, spec_json, capsys):
    key, pub = keys
    assert main(["verify", str(unsigned_file), "--pub", str(pub), "--spec-json", str(spec_json)]) == 1
    assert "policy bundle refused (signature_missing)" in capsys.readouterr().err
    assert main(["sign", str(unsigned_file), "--key", str(key)]) == 0
    assert load_bundle_file(unsigned_file).signed
    assert main(["verify", str(unsigned_file), "--pub", str(pub), "--spec-json", str(spec_json)]) == 0
    assert "OK: policy version 5 for a1_test verified" in capsys.readouterr().out


def test_verify_refuses_a_version_below_min_version(keys, unsigned_file, spec_json, capsys):
    key, pub = keys
    assert main(["sign", str(unsigned_file), "--key", str(key)]) == 0
    args = ["verify", str(unsigned_file), "--pub", str(pub), "--spec-json", str(spec_json)]
    assert main([*args, "--min-version", "6"]) == 1
    assert "policy bundle refused (version_too_old)" in capsys.readouterr().err
    assert main([*args, "--min-version", "5"]) == 0


def test_verify_reports_a_tampered_bundle(keys, unsigned_file, spec_json, capsys):
    key, pub = keys
    signed_path = unsigned_file.with_name("signed.bundle")
    assert main(["sign", str(unsigned_file), "--key", str(key), "--out", str(signed_path)]) == 0
    bundle = load_bundle_file(signed_path)
    tampered = dataclasses.replace(bundle, onnx=bundle.onnx[:100] + bytes([bundle.onnx[100] ^ 1]) + bundle.onnx[101:])
    save_bundle_file(tampered, signed_path)
    assert main(["verify", str(signed_path), "--pub", str(pub), "--spec-json", str(spec_json)]) == 1
    assert "policy bundle refused (sha256_mismatch)" in capsys.readouterr().err


def test_verify_against_a_robot_config_by_name(keys, tmp_path, capsys):
    key, pub = keys
    spec = load_robot_config("a1_sim").policy_spec()
    bundle = build_bundle(helpers.exported("xs", 0, spec.obs_dim), spec, 1, 0, "xs", None)
    path = save_bundle_file(bundle, tmp_path / "a1.bundle")
    assert main(["sign", str(path), "--key", str(key)]) == 0
    assert main(["verify", str(path), "--pub", str(pub), "--robot-config", "a1_sim"]) == 0
    # The test spec (robot a1_test) is another robot's: its bundle must not pass for a1_sim.
    other = save_bundle_file(build_bundle(helpers.exported("xs"), helpers.a1_spec(), 1, 0, "xs", None),
                             tmp_path / "other.bundle")
    assert main(["sign", str(other), "--key", str(key)]) == 0
    capsys.readouterr()
    assert main(["verify", str(other), "--pub", str(pub), "--robot-config", "a1_sim"]) == 1
    assert "policy bundle refused (spec_mismatch)" in capsys.readouterr().err


def test_inspect_prints_the_manifest_summary(tmp_path, capsys):
    bundle = build_bundle(helpers.exported("xs"), helpers.a1_spec(), 5, 2000, "xs", None,
                          evaluation={"return_H": 3.5, "reward_error_by_k": [0.1, 0.4]})
    unsigned_file = save_bundle_file(bundle, tmp_path / "policy.bundle")
    assert main(["inspect", str(unsigned_file)]) == 0
    out = capsys.readouterr().out
    assert "evaluation.return_H: 3.5" in out and "evaluation.reward_error_by_k: [0.1, 0.4]" in out
    assert "policy version: 5" in out and "training step:  2000" in out
    assert "FR_hip_joint, FR_upper_joint" in out and "NONE (development bundle)" in out
    assert main(["inspect", str(unsigned_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policy_version"] == 5


def test_module_entry_point_runs_and_reports_missing_files(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dreamer_core.deploy.cli", "inspect", str(tmp_path / "absent.bundle")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1 and "absent.bundle" in result.stderr
