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
                          evaluation={"reward_skill": 0.35, "skill_reward": [0.1, 0.4]})
    unsigned_file = save_bundle_file(bundle, tmp_path / "policy.bundle")
    assert main(["inspect", str(unsigned_file)]) == 0
    out = capsys.readouterr().out
    assert "evaluation.reward_skill: 0.35" in out and "evaluation.skill_reward: [0.1, 0.4]" in out
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


@pytest.fixture(scope="module")
def learner_checkpoint(tmp_path_factory):
    """A learner's agent.ckpt (agent and learner state, as the learner node writes it) at policy version 3."""
    from dreamer_core.runners.learner import LearnerRunner
    from dreamer_core.runners.learner_settings import LearnerSettings

    run = tmp_path_factory.mktemp("learner")
    runner = LearnerRunner(load_robot_config("a1_sim"), LearnerSettings(replay_dir=run / "replay", run_dir=run,
                                                                       nice=0), log=lambda _: None)
    runner.state.policy_version = 3
    runner.checkpoint()
    runner.close()
    return runner.checkpoint_path


def test_export_makes_a_signed_bundle_the_robot_accepts(learner_checkpoint, keys, tmp_path, capsys):
    key, pub = keys
    out = tmp_path / "exported.bundle"
    args = ["export", str(learner_checkpoint), "--robot-config", "a1_sim", "--key", str(key), "--out", str(out)]
    assert main(args) == 0
    assert "exported policy version 4 for a1_sim" in capsys.readouterr().out  # the last promoted + 1
    assert main(["verify", str(out), "--pub", str(pub), "--robot-config", "a1_sim"]) == 0
    assert main([*args, "--version", "9"]) == 0 and load_bundle_file(out).version == 9


def test_export_refuses_a_checkpoint_of_another_robot_naming_both(learner_checkpoint, keys, tmp_path, capsys):
    import yaml

    from dreamer_core.robots.config import resolve_config_path

    config = yaml.safe_load(resolve_config_path("a1_sim").read_text())
    config["observation"] = [term for term in config["observation"] if term["name"] != "foot_contacts"]
    other = tmp_path / "a1_no_contacts.yaml"
    other.write_text(yaml.safe_dump(config))
    key, _ = keys
    assert main(["export", str(learner_checkpoint), "--robot-config", str(other), "--key", str(key),
                 "--out", str(tmp_path / "x.bundle")]) == 1
    err = capsys.readouterr().err
    assert "does not fit robot config 'a1_sim'" in err and "policy spec hash: checkpoint" in err
    assert "foot_contacts" in err and not (tmp_path / "x.bundle").exists()


def test_export_refuses_a_checkpoint_without_learner_state(keys, tmp_path, capsys):
    agent = helpers.new_agent("xs", obs_dim=load_robot_config("a1_sim").obs_dim)
    agent.save_checkpoint(tmp_path / "agent.ckpt")
    assert main(["export", str(tmp_path / "agent.ckpt"), "--robot-config", "a1_sim", "--key", str(keys[0]),
                 "--out", str(tmp_path / "x.bundle")]) == 1
    assert "has no learner state" in capsys.readouterr().err


def test_push_without_ros_says_what_is_missing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no ROS workspace on the path
    result = subprocess.run([sys.executable, "-m", "dreamer_core.deploy.cli", "push", str(tmp_path / "x.bundle")],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and "needs ROS 2 and the dreamer_ros package" in result.stderr
