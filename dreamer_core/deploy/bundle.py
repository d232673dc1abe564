"""Policy bundles: an ONNX policy step, its manifest, and an Ed25519 signature.

The signature covers the manifest's exact bytes; the manifest carries the ONNX's
sha256 and size, so a valid signature plus a matching hash authenticates the ONNX.
On disk a bundle is a zip (stored, not compressed) holding ``manifest.json``,
``policy.onnx`` and, when signed, ``signature`` (64 raw bytes).
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dreamer_core.deploy.errors import BundleRejected
from dreamer_core.deploy.manifest import Manifest, make_manifest, parse_manifest
from dreamer_core.deploy.validation import read_onnx
from dreamer_core.io import atomic_write
from dreamer_core.spec import PolicySpec

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 2**20
MAX_MANIFEST_BYTES = 2**20
MANIFEST_FILE, ONNX_FILE, SIGNATURE_FILE = "manifest.json", "policy.onnx", "signature"


@dataclass(frozen=True)
class PolicyBundle:
    """One policy as it travels (mirrors ``dreamer_msgs/PolicyBundle`` field for field).

    ``version``, ``robot_id``, ``spec_hash`` and ``sha256`` repeat manifest values so a
    receiver can route or drop a bundle cheaply; the signed manifest is what counts.
    """

    version: int
    robot_id: str
    spec_hash: str
    sha256: str
    manifest_json: str
    onnx: bytes
    signature: bytes = b""

    @property
    def signed(self) -> bool:
        return bool(self.signature)


def build_bundle(
    onnx_bytes: bytes,
    spec: PolicySpec,
    version: int,
    training_step: int,
    preset: str,
    private_key: Ed25519PrivateKey | None,
    evaluation: dict[str, float | list[float]] | None = None,
) -> PolicyBundle:
    """Wrap an exported policy step; signs it when ``private_key`` is given (else a development bundle).

    The h/z widths and the opset are read from the graph itself; obs/action widths come from ``spec``.
    ``evaluation`` goes into the manifest's typed evaluation section (finite numbers or lists of them).
    """
    graph = read_onnx(onnx_bytes)
    try:
        deter, stoch = graph.inputs["h"][1][-1], graph.inputs["z"][1][-1]
    except (KeyError, IndexError) as exc:
        raise ValueError(
            "the ONNX graph has no h/z inputs; export it with dreamer_core.deploy.export"
        ) from exc
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    manifest = make_manifest(
        spec=spec,
        policy_version=version,
        training_step=training_step,
        model_preset=preset,
        sha256=digest,
        onnx_size=len(onnx_bytes),
        opset=graph.opset,
        deter=deter,
        stoch=stoch,
        evaluation=evaluation,
    )
    bundle = PolicyBundle(version, spec.robot_id, spec.hash(), digest, manifest.to_json(), bytes(onnx_bytes))
    if private_key is None:
        return bundle
    # Size limits are the robot's to set (PolicyRuntime.load's max_bytes), not the builder's.
    return sign_bundle(bundle, private_key, max_bytes=len(bundle.onnx))


def sign_bundle(
    bundle: PolicyBundle, private_key: Ed25519PrivateKey, max_bytes: int = DEFAULT_MAX_BYTES
) -> PolicyBundle:
    """The same bundle with a fresh signature; refuses to sign a bundle whose contents do not check out."""
    check_integrity(bundle, max_bytes)
    return replace(bundle, signature=private_key.sign(bundle.manifest_json.encode("utf-8")))


def verify_signature(
    bundle: PolicyBundle, public_key: Ed25519PublicKey | None, *, allow_unsigned: bool
) -> None:
    """Raise :class:`BundleRejected` unless the manifest is signed by ``public_key``.

    Development mode (``allow_unsigned``) accepts unsigned bundles, or any bundle when no
    key is installed, and says so loudly; a signature that is present and wrong is
    refused in every mode, because it means tampering or a wrong key.
    """
    if bundle.signed and public_key is not None:
        try:
            public_key.verify(bundle.signature, bundle.manifest_json.encode("utf-8"))
        except InvalidSignature as exc:
            raise BundleRejected(
                "signature_invalid",
                "signature does not verify with the installed public "
                "key: the bundle was altered or signed with another key",
            ) from exc
        return
    if not allow_unsigned:
        if not bundle.signed:
            raise BundleRejected(
                "signature_missing",
                "bundle is unsigned; sign it on the learner host with "
                "`dreamer-policy sign BUNDLE --key policy_signing.key`",
            )
        raise BundleRejected(
            "no_public_key",
            "no public key installed to verify bundles; install the "
            "learner's policy_signing.pub on the robot (docs/policy_bundles.md)",
        )
    log.warning(
        "!!! DEVELOPMENT MODE: accepting policy version %s WITHOUT signature verification (%s). Anyone who "
        "can publish on this robot's ROS graph can drive it. Never use this on a real robot. !!!",
        bundle.version,
        "bundle is unsigned" if not bundle.signed else "no public key installed",
    )


def authenticate(
    bundle: PolicyBundle,
    public_key: Ed25519PublicKey | None,
    *,
    allow_unsigned: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Manifest:
    """Size limits, then the signature (before any manifest parsing), then :func:`check_integrity`."""
    _check_size(bundle, max_bytes)
    verify_signature(bundle, public_key, allow_unsigned=allow_unsigned)
    return check_integrity(bundle, max_bytes)


def _check_size(bundle: PolicyBundle, max_bytes: int) -> None:
    if len(bundle.onnx) > max_bytes or len(bundle.manifest_json) > MAX_MANIFEST_BYTES:
        raise BundleRejected(
            "too_large",
            f"ONNX is {len(bundle.onnx)} bytes, limit {max_bytes} (manifest "
            f"{len(bundle.manifest_json)}, limit {MAX_MANIFEST_BYTES}); use a smaller preset or "
            "raise max_bytes in the robot's deployment settings",
        )


def check_integrity(bundle: PolicyBundle, max_bytes: int = DEFAULT_MAX_BYTES) -> Manifest:
    """Check sizes, manifest, header fields and the ONNX hash (not the signature); returns the manifest."""
    _check_size(bundle, max_bytes)
    manifest = parse_manifest(bundle.manifest_json)
    header = (bundle.version, bundle.robot_id, bundle.spec_hash, bundle.sha256)
    if header != (manifest.policy_version, manifest.robot_id, manifest.spec_hash, manifest.sha256):
        raise BundleRejected(
            "header_mismatch",
            f"header (version, robot_id, spec_hash, sha256) = {header} "
            "disagrees with the signed manifest; the message was altered or built by hand",
        )
    if len(bundle.onnx) < manifest.onnx_size:
        raise BundleRejected(
            "truncated",
            f"ONNX is {len(bundle.onnx)} bytes, manifest says {manifest.onnx_size}; "
            "the transfer was cut short, send the bundle again",
        )
    digest = hashlib.sha256(bundle.onnx).hexdigest()
    if digest != manifest.sha256:
        raise BundleRejected(
            "sha256_mismatch",
            f"ONNX sha256 is {digest}, manifest says {manifest.sha256}; "
            "the ONNX was altered or corrupted, rebuild or resend the bundle",
        )
    return manifest


def save_bundle_file(bundle: PolicyBundle, path: str | Path) -> Path:
    """Write the bundle as one zip file, atomically and durably (:func:`dreamer_core.io.atomic_write`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(raw) -> None:
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(MANIFEST_FILE, bundle.manifest_json)
            zf.writestr(ONNX_FILE, bundle.onnx)
            if bundle.signed:
                zf.writestr(SIGNATURE_FILE, bundle.signature)

    return atomic_write(path, write)


def load_bundle_file(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> PolicyBundle:
    """Read a bundle file written by :func:`save_bundle_file` (no checks beyond the container's)."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes + MAX_MANIFEST_BYTES + 2**16:
        raise BundleRejected("too_large", f"{path} is {size} bytes, over the {max_bytes}-byte ONNX limit")
    try:
        with zipfile.ZipFile(path) as zf:
            entries = {info.filename: info for info in zf.infolist()}
            missing = {MANIFEST_FILE, ONNX_FILE} - set(entries)
            if missing:
                raise BundleRejected(
                    "malformed_bundle", f"{path} lacks {sorted(missing)}; not a policy bundle"
                )
            # Sizes from the directory are checked before reading, so a crafted file cannot balloon in memory.
            if entries[ONNX_FILE].file_size > max_bytes:
                raise BundleRejected(
                    "too_large",
                    f"{path}: policy.onnx is {entries[ONNX_FILE].file_size} bytes, limit {max_bytes}",
                )
            if entries[MANIFEST_FILE].file_size > MAX_MANIFEST_BYTES:
                raise BundleRejected("too_large", f"{path}: manifest.json over {MAX_MANIFEST_BYTES} bytes")
            manifest_json = zf.read(MANIFEST_FILE).decode("utf-8")
            onnx = zf.read(ONNX_FILE)
            signature = zf.read(SIGNATURE_FILE) if SIGNATURE_FILE in entries else b""
    except zipfile.BadZipFile as exc:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
        if is_zip:
            raise BundleRejected(
                "truncated", f"{path} is cut short or corrupted ({exc}); copy it again"
            ) from exc
        raise BundleRejected("malformed_bundle", f"{path} is not a policy bundle (not a zip file)") from exc
    except UnicodeDecodeError as exc:
        raise BundleRejected("malformed_manifest", f"{path}: manifest.json is not UTF-8") from exc
    manifest = parse_manifest(manifest_json)
    return PolicyBundle(
        manifest.policy_version,
        manifest.robot_id,
        manifest.spec_hash,
        manifest.sha256,
        manifest_json,
        onnx,
        signature,
    )
