"""The manifest of a policy bundle and the policy-step contract it describes.

The manifest is signed (bundle.py), and it carries the ONNX's sha256, so one
signature authenticates both. Torch-free: the robot parses manifests too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import pydantic

from dreamer_core.deploy.errors import BundleRejected
from dreamer_core.spec import TICK_INPUTS, TICK_OUTPUTS, PolicyDims, PolicySpec

# 2: strict types, no unknown keys anywhere, the typed `evaluation` section instead of `extra`.
FORMAT_VERSION = 2

# The tick contract is defined beside PolicySpec; these names stay for callers of this module.
INPUT_NAMES, OUTPUT_NAMES = TICK_INPUTS, TICK_OUTPUTS


FiniteFloat = Annotated[float, pydantic.Field(allow_inf_nan=False)]
EvaluationName = Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Za-z0-9_./-]{1,128}$")]


class ManifestSpec(pydantic.BaseModel):
    """The :class:`PolicySpec` as the manifest carries it (``PolicySpec.to_dict``)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    robot_id: str
    observation: list[tuple[str, int]]
    action_joints: list[str]
    action_low: FiniteFloat
    action_high: FiniteFloat


class Manifest(pydantic.BaseModel):
    """What a bundle claims about its ONNX; every field is covered by the signature.

    Parsed strictly (:func:`parse_manifest`): no unknown keys at any depth and no
    type coercion (``"2"``, ``2.0`` or ``true`` is not a version).
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    format_version: int
    policy_version: pydantic.NonNegativeInt
    robot_id: str
    spec: ManifestSpec
    spec_hash: str = pydantic.Field(pattern=r"^[0-9a-f]{64}$")
    training_step: pydantic.NonNegativeInt
    model_preset: str
    sha256: str = pydantic.Field(pattern=r"^[0-9a-f]{64}$")
    onnx_size: pydantic.PositiveInt
    created: str
    opset: pydantic.PositiveInt
    dims: PolicyDims
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    # What the learner measured about this policy: a name -> a number or a curve (e.g. trust metrics).
    evaluation: dict[EvaluationName, FiniteFloat | list[FiniteFloat]] = {}

    def policy_spec(self) -> PolicySpec:
        """The spec the policy was trained for (validated against ``spec_hash`` by :func:`parse_manifest`)."""
        return PolicySpec.from_dict(self.spec.model_dump())

    def to_json(self) -> str:
        """Deterministic JSON text (sorted keys), the exact bytes that get signed."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2)


def make_manifest(
    *,
    spec: PolicySpec,
    policy_version: int,
    training_step: int,
    model_preset: str,
    sha256: str,
    onnx_size: int,
    opset: int,
    deter: int,
    stoch: int,
    evaluation: dict[str, float | list[float]] | None = None,
) -> Manifest:
    """A manifest for an ONNX policy step trained for ``spec``."""
    return Manifest(
        format_version=FORMAT_VERSION,
        policy_version=policy_version,
        robot_id=spec.robot_id,
        spec=spec.to_dict(),
        spec_hash=spec.hash(),
        training_step=training_step,
        model_preset=model_preset,
        sha256=sha256,
        onnx_size=onnx_size,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        opset=opset,
        dims=PolicyDims(obs=spec.obs_dim, act=spec.act_dim, deter=deter, stoch=stoch),
        inputs=INPUT_NAMES,
        outputs=OUTPUT_NAMES,
        evaluation=evaluation or {},
    )


def parse_manifest(text: str) -> Manifest:
    """Parse and check a manifest; raises :class:`BundleRejected` naming the offending key."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleRejected(
            "malformed_manifest", f"manifest is not JSON ({exc}); rebuild the bundle"
        ) from exc
    if not isinstance(data, dict):
        raise BundleRejected("malformed_manifest", "manifest JSON is not an object; rebuild the bundle")
    if data.get("format_version") != FORMAT_VERSION:
        raise BundleRejected(
            "format_unsupported",
            f"manifest format_version {data.get('format_version')!r}, this runtime reads {FORMAT_VERSION}; "
            "build the bundle with a dreamer_core matching the robot's",
        )
    try:
        manifest = Manifest.model_validate_json(text, strict=True)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise BundleRejected("malformed_manifest", f"manifest keys: {problems}") from exc
    try:
        spec = manifest.policy_spec()
    except ValueError as exc:
        raise BundleRejected("malformed_manifest", f"manifest spec: {exc}") from exc
    if spec.hash() != manifest.spec_hash or spec.robot_id != manifest.robot_id:
        raise BundleRejected(
            "malformed_manifest", "manifest spec disagrees with its spec_hash/robot_id; rebuild the bundle"
        )
    if (spec.obs_dim, spec.act_dim) != (manifest.dims.obs, manifest.dims.act):
        raise BundleRejected(
            "malformed_manifest",
            f"manifest dims obs={manifest.dims.obs}, act={manifest.dims.act} disagree with its spec "
            f"(obs={spec.obs_dim}, act={spec.act_dim}); rebuild the bundle",
        )
    if (manifest.inputs, manifest.outputs) != (INPUT_NAMES, OUTPUT_NAMES):
        raise BundleRejected(
            "malformed_manifest",
            f"manifest inputs/outputs {manifest.inputs}/{manifest.outputs} are not the "
            f"format-{FORMAT_VERSION} policy-step contract {INPUT_NAMES}/{OUTPUT_NAMES}; "
            "export with dreamer_core.deploy.export",
        )
    return manifest
