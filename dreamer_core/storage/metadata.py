"""store.json and meta.json: read with strict types, written atomically.

The store acts on what these files say (a session's ``evicted_chunks`` makes the writer
delete chunk files), so a value of the wrong type is never coerced: ``true`` is not 1 and
``"5"`` is not 5. A file that fails its checks raises a ``MetadataError`` naming the file
and the key, and the store refuses to open.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError

from dreamer_core.io import atomic_write
from dreamer_core.spec import PolicySpec

from .chunk import FORMAT_VERSION
from .errors import CorruptFileError, MetadataError
from .sessions import Summary

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


class StoreMeta(BaseModel):
    """``store.json``: what every file of the store is laid out for."""

    model_config = _STRICT

    format: Literal["dreamer-replay"] = "dreamer-replay"
    format_version: Literal[1] = FORMAT_VERSION
    obs_dim: PositiveInt
    act_dim: PositiveInt
    chunk_length: PositiveInt
    # The robot's PolicySpec (``PolicySpec.to_dict()``) and its hash, when the creating writer had one.
    spec: dict[str, Any] | None = None
    spec_hash: str | None = None


class SessionMeta(BaseModel):
    """A session's ``meta.json`` (without its ``crc32``)."""

    model_config = _STRICT

    format_version: Literal[1] = FORMAT_VERSION
    robot_id: Annotated[str, Field(min_length=1)]
    session_id: Annotated[str, Field(min_length=1)]
    created: float  # time.time() when the writer made the session's folder
    evicted_chunks: NonNegativeInt = 0  # chunks with a lower index were evicted (folded into ``evicted``)
    evicted: Summary = Summary()


def _first_problem(path: Path, exc: ValidationError) -> MetadataError:
    problem = exc.errors()[0]
    if problem["type"] == "json_invalid":
        return MetadataError(path, "", f"not valid JSON ({problem['msg']})")
    key = ".".join(map(str, problem["loc"])) or "(top level)"
    given = f" (found {problem['input']!r})" if "input" in problem and not isinstance(problem["input"], dict) else ""
    return MetadataError(path, key, f"{problem['msg']}{given}")


def read_store_meta(path: Path) -> tuple[StoreMeta, PolicySpec | None]:
    """Parse ``store.json``; a MetadataError names the key when anything is off."""
    try:
        meta = StoreMeta.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise _first_problem(path, exc) from None
    if meta.spec is None:
        if meta.spec_hash is not None:
            raise MetadataError(path, "spec_hash", "given without a spec")
        return meta, None
    try:
        spec = PolicySpec.from_dict(meta.spec)
    except ValueError as exc:
        raise MetadataError(path, "spec", str(exc)) from None
    if spec.hash() != meta.spec_hash:
        raise MetadataError(path, "spec_hash", f"{meta.spec_hash!r} is not the hash of the stored spec")
    if (spec.obs_dim, spec.act_dim) != (meta.obs_dim, meta.act_dim):
        raise MetadataError(path, "spec", f"sizes {spec.obs_dim}/{spec.act_dim} differ from obs_dim/act_dim")
    return meta, spec


def write_store_meta(path: Path, meta: StoreMeta) -> None:
    atomic_write(path, json.dumps(meta.model_dump(mode="json"), indent=1).encode())


def read_session_meta(path: Path) -> SessionMeta:
    """Parse a session's ``meta.json``.

    CorruptFileError when it is not JSON or fails its CRC32 (damaged bytes: the writer
    rebuilds the session's identity from its data files). MetadataError when the CRC holds
    but a value has the wrong type (the file was written wrong: nothing may act on it).
    FileNotFoundError passes through.
    """
    try:
        data = json.loads(path.read_bytes())
    except ValueError as exc:
        raise CorruptFileError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "crc32" not in data:
        raise CorruptFileError(f"{path}: no checksum")
    crc = data.pop("crc32")
    body = json.dumps(data, sort_keys=True)
    if zlib.crc32(body.encode()) != crc:
        raise CorruptFileError(f"{path}: checksum mismatch")
    try:
        return SessionMeta.model_validate_json(body)
    except ValidationError as exc:
        raise _first_problem(path, exc) from None


def write_session_meta(path: Path, meta: SessionMeta) -> None:
    """Write a session's meta.json atomically, with a CRC32 of its content."""
    data = meta.model_dump(mode="json")
    body = json.dumps(data, sort_keys=True)
    atomic_write(path, json.dumps({**data, "crc32": zlib.crc32(body.encode())}).encode())
