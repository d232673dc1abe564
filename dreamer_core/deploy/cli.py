"""``dreamer-policy``: create signing keys, sign, verify and inspect policy bundle files.

Exit status: 0 success, 1 a refused bundle or an unusable input (the message says why),
2 bad command-line usage.
"""

from __future__ import annotations

import argparse
import json
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
        prog="dreamer-policy", description="Create signing keys, sign, verify and inspect policy bundle files."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("keygen", help="create an Ed25519 signing key pair")
    p.add_argument("--out", required=True, type=Path, help="directory for policy_signing.key/.pub")
    p.add_argument("--force", action="store_true", help="replace an existing key pair")
    p.set_defaults(func=_keygen)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dreamer-policy``; returns the exit status."""
    args = build_parser().parse_args(argv)
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
