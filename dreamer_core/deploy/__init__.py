"""Onboard policy deployment: signed bundles and their runtime (numpy + onnxruntime, no torch).

The torch → ONNX export lives in :mod:`dreamer_core.deploy.export` and is not imported
here, so robots can use this package without torch.
"""

from dreamer_core.deploy.bundle import (
    DEFAULT_MAX_BYTES,
    PolicyBundle,
    authenticate,
    build_bundle,
    load_bundle_file,
    save_bundle_file,
    sign_bundle,
)
from dreamer_core.deploy.errors import REASONS, BundleRejected
from dreamer_core.deploy.keys import generate_keypair, key_fingerprint, load_private_key, load_public_key
from dreamer_core.deploy.manifest import INPUT_NAMES, OUTPUT_NAMES, Manifest, parse_manifest
from dreamer_core.deploy.runtime import PolicyRuntime

__all__ = [
    "DEFAULT_MAX_BYTES",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "REASONS",
    "BundleRejected",
    "Manifest",
    "PolicyBundle",
    "PolicyRuntime",
    "authenticate",
    "build_bundle",
    "generate_keypair",
    "key_fingerprint",
    "load_bundle_file",
    "load_private_key",
    "load_public_key",
    "parse_manifest",
    "save_bundle_file",
    "sign_bundle",
]
