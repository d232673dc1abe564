"""Ed25519 keys for signing policy bundles.

The private key stays on the learner host (the only place that may publish
policies); robots hold only the public key. Keys are PEM files.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PRIVATE_KEY_NAME = "policy_signing.key"
PUBLIC_KEY_NAME = "policy_signing.pub"


def generate_keypair(out_dir: str | Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write a new key pair to ``out_dir``: ``policy_signing.key`` (mode 0600) and ``policy_signing.pub``.

    Refuses to overwrite an existing key unless ``force`` (replacing the key means
    every robot needs the new public key).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = out / PRIVATE_KEY_NAME, out / PUBLIC_KEY_NAME
    if not force and (key_path.exists() or pub_path.exists()):
        raise FileExistsError(
            f"{key_path} or {pub_path} already exists; robots trust the old public key, "
            "so pass force=True (--force) only if you mean to replace it everywhere"
        )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path.unlink(missing_ok=True)
    # Created 0600 from the start, so the key is never readable by others, not even briefly.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    pub_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key_path, pub_path


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Load a signing key; refuses keys readable by group/others (like ssh does)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"signing key {path} not found; create one with `dreamer-policy keygen --out DIR`"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(
            f"signing key {path} has mode {mode:o}, readable by others; run `chmod 600 {path}`"
        )
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is a {type(key).__name__}, not an Ed25519 key; use `dreamer-policy keygen`")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Load the public key a robot verifies bundles with."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"public key {path} not found; copy policy_signing.pub from the learner host "
            "(docs/policy_bundles.md)"
        )
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise ValueError(
            f"{path} is not a PEM public key ({exc}); install policy_signing.pub, not the .key"
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is a {type(key).__name__}, not an Ed25519 public key")
    return key


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """Short sha256 fingerprint of a public key, to compare keys across hosts by eye."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()[:32]
