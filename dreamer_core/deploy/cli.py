"""``dreamer-policy``: create signing keys, export, sign, verify, inspect and push policy bundles.

Exit status: 0 success, 1 a refused bundle or an unusable input (the message says why),
2 bad command-line usage. ``push``: 0 the robot accepted the bundle, 1 it refused it (or it
was not pushed), 2 no robot answered in time or ROS 2 is not available.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

from dreamer_core.deploy.bundle import (
    DEFAULT_MAX_BYTES,
    load_bundle_file,
    save_bundle_file,
    sign_bundle,
)
from dreamer_core.deploy.errors import BundleRejected
from dreamer_core.deploy.keys import generate_keypair, key_fingerprint, load_private_key, load_public_key
from dreamer_core.deploy.manifest import parse_manifest
from dreamer_core.deploy.runtime import PolicyRuntime
from dreamer_core.robots.config import load_robot_config
from dreamer_core.spec import PolicySpec


def _keygen(args: argparse.Namespace) -> None:
    key_path, pub_path = generate_keypair(args.out, force=args.force)
    print(f"private key: {key_path} (mode 0600; keep it on the learner host only)")
    print(f"public key:  {pub_path} (install on every robot)")
    print(f"fingerprint: {key_fingerprint(load_public_key(pub_path))}")


def _sign(args: argparse.Namespace) -> None:
    bundle = load_bundle_file(args.bundle, max_bytes=args.max_bytes)
    key = load_private_key(args.key)
    out = save_bundle_file(sign_bundle(bundle, key, args.max_bytes), args.out or args.bundle)
    print(
        f"signed policy version {bundle.version} for {bundle.robot_id} -> {out} "
        f"(key {key_fingerprint(key.public_key())})"
    )


def _export(args: argparse.Namespace) -> None:
    from dreamer_core.deploy.from_checkpoint import bundle_from_checkpoint  # torch: learner side only

    key = load_private_key(args.key)
    robot = load_robot_config(args.robot_config)
    bundle = bundle_from_checkpoint(args.checkpoint, robot, key, version=args.version)
    out = save_bundle_file(bundle, args.out)
    m = parse_manifest(bundle.manifest_json)
    print(f"exported policy version {bundle.version} for {bundle.robot_id} (update {m.training_step}, preset "
          f"{m.model_preset}) -> {out}, signed by {key_fingerprint(key.public_key())} and checked as a robot would")


# The module that publishes a bundle and waits for the robot (ROS 2; dreamer_core itself never imports ROS).
PUSH_MODULE = "dreamer_ros.policy_push"


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `dreamer-policy push` (also parsed by dreamer_ros.policy_push)."""
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--namespace", default="", help="the robot's namespace (as given to its stack)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the robot's verdict, from the start (default 30)")
    parser.add_argument("--robot-config",
                        help="robot config name or YAML path for topic names (default: the bundle's robot_id)")


def push(argv: list[str]) -> int:
    """Hand `dreamer-policy push ARGS` over to the ROS side; returns only when that cannot start."""
    if importlib.util.find_spec(PUSH_MODULE.split(".")[0]) is None:
        print("error: `dreamer-policy push` needs ROS 2 and the dreamer_ros package: `source scripts/env.sh` in "
              "this repository, or source your ROS 2 workspace's install/setup.bash", file=sys.stderr)
        return 2
    sys.stdout.flush()
    try:
        os.execv(sys.executable, [sys.executable, "-m", PUSH_MODULE, *argv])
    except OSError as exc:
        print(f"error: cannot run {PUSH_MODULE}: {exc}", file=sys.stderr)
    return 2


def _expected_spec(args: argparse.Namespace) -> PolicySpec | None:
    if args.robot_config:
        return load_robot_config(args.robot_config).policy_spec()
    if args.spec_json:
        return PolicySpec.from_dict(json.loads(Path(args.spec_json).read_text()))
    return None


def _verify(args: argparse.Namespace) -> None:
    bundle = load_bundle_file(args.bundle, max_bytes=args.max_bytes)
    public_key = load_public_key(args.pub)
    spec = _expected_spec(args)
    if spec is None:
        spec = parse_manifest(bundle.manifest_json).policy_spec()
        print("note: no --robot-config/--spec-json: spec checked against the bundle's own manifest only")
    samples = np.load(args.sample_obs) if args.sample_obs else None
    runtime = PolicyRuntime.load(
        bundle,
        expected_spec=spec,
        public_key=public_key,
        max_bytes=args.max_bytes,
        sample_observations=samples,
        min_version=args.min_version,
    )
    print(
        f"OK: policy version {runtime.version} for {spec.robot_id} verified "
        f"(signature by {key_fingerprint(public_key)}, sha256, spec, graph, validation inference)"
    )


def _inspect(args: argparse.Namespace) -> None:
    bundle = load_bundle_file(args.bundle, max_bytes=args.max_bytes)
    if args.json:
        print(bundle.manifest_json)
        return
    m = parse_manifest(bundle.manifest_json)
    spec = m.policy_spec()
    rows = [
        ("policy version", m.policy_version),
        ("robot", m.robot_id),
        ("model preset", m.model_preset),
        ("training step", m.training_step),
        ("created", m.created),
        ("spec hash", m.spec_hash),
        ("observation", ", ".join(f"{name}[{width}]" for name, width in spec.observation)),
        ("action joints", ", ".join(spec.action_joints)),
        ("action bounds", f"[{spec.action_low}, {spec.action_high}]"),
        ("dims", f"obs {m.dims.obs}, act {m.dims.act}, h {m.dims.deter}, z {m.dims.stoch}"),
        ("onnx", f"{m.onnx_size} bytes, opset {m.opset}, sha256 {m.sha256}"),
        ("signature", "present (check it with `verify`)" if bundle.signed else "NONE (development bundle)"),
    ]
    rows += [(f"evaluation.{key}", json.dumps(value)) for key, value in sorted(m.evaluation.items())]
    for name, value in rows:
        print(f"{name + ':':<15} {value}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    parser = argparse.ArgumentParser(
        prog="dreamer-policy",
        description="Create signing keys, export, sign, verify, inspect and push policy bundles "
                    "(docs/policy_bundles.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("keygen", help="create an Ed25519 signing key pair")
    p.add_argument("--out", required=True, type=Path, help="directory for policy_signing.key/.pub")
    p.add_argument("--force", action="store_true", help="replace an existing key pair")
    p.set_defaults(func=_keygen)

    p = sub.add_parser("export", help="make a signed bundle from a learner checkpoint (agent.ckpt)")
    p.add_argument("checkpoint", type=Path, help="a learner's agent.ckpt (<run_dir>/learner/agent.ckpt)")
    p.add_argument("--robot-config", required=True, help="robot config name (a1_sim) or YAML path the policy is for")
    p.add_argument("--key", required=True, type=Path, help="policy_signing.key")
    p.add_argument("--out", required=True, type=Path, help="the bundle file to write")
    p.add_argument("--version", type=int, help="policy version (default: the checkpoint's last promoted + 1)")
    p.set_defaults(func=_export)

    p = sub.add_parser("sign", help="sign a bundle file with the learner's private key")
    p.add_argument("bundle", type=Path)
    p.add_argument("--key", required=True, type=Path, help="policy_signing.key")
    p.add_argument("--out", type=Path, help="write the signed bundle here (default: in place)")
    p.set_defaults(func=_sign)

    p = sub.add_parser("verify", help="run every check the robot runs before accepting a bundle")
    p.add_argument("bundle", type=Path)
    p.add_argument("--pub", required=True, type=Path, help="policy_signing.pub")
    spec = p.add_mutually_exclusive_group()
    spec.add_argument("--robot-config", help="robot config name (a1_sim) or YAML path whose spec must match")
    spec.add_argument("--spec-json", type=Path, help="PolicySpec JSON (PolicySpec.to_dict) that must match")
    p.add_argument("--sample-obs", type=Path, help=".npy array [N, obs_dim] for the validation inference")
    p.add_argument("--min-version", type=int, default=0,
                   help="refuse a bundle whose policy version is below this (version_too_old)")
    p.set_defaults(func=_verify)

    p = sub.add_parser("inspect", help="print a bundle's manifest summary")
    p.add_argument("bundle", type=Path)
    p.add_argument("--json", action="store_true", help="print the raw manifest JSON")
    p.set_defaults(func=_inspect)

    for p in sub.choices.values():
        p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="largest ONNX accepted")

    p = sub.add_parser("push", help="publish a bundle to a robot and wait for its accept or refusal (needs ROS 2)",
                       description="Exit status: 0 accepted, 1 refused (the reason printed) or not pushed, "
                                   "2 no robot answered within --timeout.")
    add_push_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dreamer-policy``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    # `push ... --ros-args ...`: the ROS arguments are rclpy's, passed on untouched.
    args = build_parser().parse_args(argv[:argv.index("--ros-args")] if "--ros-args" in argv else argv)
    if args.command == "push":
        return push(argv[1:])  # no option precedes the command
    try:
        args.func(args)
    except BundleRejected as exc:
        print(exc, file=sys.stderr)  # "policy bundle refused (<reason>): <what to do>"
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
