"""Why a policy bundle was refused.

The control node logs ``reason`` (a short code, stable across releases, good for
metrics and alerts) and ``str(exc)`` (a sentence naming the problem and what to do).
"""

from __future__ import annotations

# Every code a refusal can carry, with what it means (docs/policy_bundles.md lists the same).
REASONS: dict[str, str] = {
    "too_large": "the ONNX, manifest or bundle file is bigger than the configured limit",
    "truncated": "the bundle file or the ONNX bytes are shorter than announced",
    "malformed_bundle": "the bundle file is not a policy bundle container",
    "malformed_manifest": "the manifest is not valid JSON, misses or adds keys, or a value has the wrong type",
    "format_unsupported": "the manifest's format_version is not one this runtime reads",
    "header_mismatch": "the bundle's header fields disagree with its signed manifest",
    "sha256_mismatch": "the ONNX bytes do not hash to the manifest's sha256",
    "signature_missing": "the bundle is unsigned and development mode is off",
    "signature_invalid": "the signature does not verify with the installed public key",
    "no_public_key": "no public key is installed and development mode is off",
    "spec_mismatch": "the policy was trained for another observation/action spec",
    "malformed_onnx": "the ONNX bytes do not parse as an ONNX model",
    "external_data": "the model references weights outside the bundle",
    "opset_unsupported": "the model needs an opset newer than this runtime supports",
    "op_not_allowed": "the graph uses an operator outside the allowed set",
    "input_shape": "graph inputs differ from the policy-step contract (names, dtypes, shapes)",
    "output_shape": "graph outputs differ from the policy-step contract (names, dtypes, shapes)",
    "onnxruntime_error": "onnxruntime could not load or run the model",
    "non_finite_output": "the validation inference produced NaN or inf",
    "action_out_of_range": "the validation inference produced actions outside the spec's bounds",
    "version_too_old": "the policy version is below the minimum (the highest this robot accepted)",
    "version_rejected": "the robot rejected this version earlier; it is never run again",
}


class BundleRejected(ValueError):
    """A policy bundle failed a check; the running policy (if any) stays in charge.

    ``reason`` is one of :data:`REASONS`; ``str()`` is the human message.
    """

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown bundle refusal reason {reason!r}; add it to REASONS")
        super().__init__(f"policy bundle refused ({reason}): {message}")
        self.reason = reason
