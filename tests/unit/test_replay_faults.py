"""Replay store faults: untrusted metadata, the writer lock, misaligned files, permissions, the policy spec.

Each test reproduces a fault found against the store (it deleted or misread data, or failed
with a traceback) and checks that the store now refuses with its documented error type and
changes nothing.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from replay_support import ACT, OBS, check_content, make, stored_seqs

from dreamer_core.spec import PolicySpec
from dreamer_core.storage import (
    InvalidTransitionError,
    MetadataError,
    ReplayStore,
    ReplayStoreError,
    ReplayWarning,
)
from dreamer_core.storage.cli import main as replay_cli

SUPPORT = Path(__file__).with_name("replay_support.py")


def write_sample(root: Path, count: int = 45, chunk_length: int = 10) -> None:
    with ReplayStore(root, obs_dim=OBS, act_dim=ACT, chunk_length=chunk_length) as s:
        for seq in range(count):
            s.add(make(seq))


def session_dir(root: Path) -> Path:
    return next((root / "sessions").iterdir())


def data_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in session_dir(root).iterdir() if p.suffix in (".rpc", ".rpt")}


def forge_meta(path: Path, change) -> None:
    """Rewrite a session's meta.json with ``change`` applied and a valid CRC (as a buggy tool would)."""
    meta = json.loads(path.read_text())
    meta.pop("crc32")
    change(meta)
    meta["crc32"] = zlib.crc32(json.dumps(meta, sort_keys=True).encode())
    path.write_text(json.dumps(meta))


def run_console(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("dreamer-replay")
    assert exe, "dreamer-replay is not installed; run: pip install --no-deps --no-build-isolation -e ."
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("evicted_chunks", lambda m: m.update(evicted_chunks=True)),
        ("evicted_chunks", lambda m: m.update(evicted_chunks="2")),
        ("created", lambda m: m.update(created="yesterday")),
        ("evicted.steps", lambda m: m["evicted"].update(steps="many")),
        ("robot_id", lambda m: m.update(robot_id=7)),
        # Well-typed but contradicted by the data: chunk 0's rows are not in the evicted summary.
        ("evicted_chunks", lambda m: m.update(evicted_chunks=1)),
    ],
)
def test_untrusted_meta_json_refuses_and_deletes_nothing(tmp_path, key, change):
    write_sample(tmp_path)
    before = data_files(tmp_path)
    meta = session_dir(tmp_path) / "meta.json"
    forge_meta(meta, change)
    forged = meta.read_bytes()
    for readonly in (False, True):
        with pytest.raises(MetadataError, match=f"meta.json: {key}: ") as info:
            ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, readonly=readonly)
        assert info.value.path == meta and info.value.key == key
    assert data_files(tmp_path) == before, "no chunk or tail may change because of untrusted metadata"
    assert meta.read_bytes() == forged
    result = run_console("info", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"meta.json: {key}: " in result.stderr and "refuses to open" in result.stderr


@pytest.mark.parametrize(
    ("key", "value"), [("obs_dim", "6"), ("act_dim", True), ("chunk_length", 1.5), ("format_version", 2)]
)
def test_store_json_with_wrong_types_is_refused(tmp_path, capsys, key, value):
    write_sample(tmp_path, count=5)
    path = tmp_path / "store.json"
    data = json.loads(path.read_text())
    data[key] = value
    path.write_text(json.dumps(data))
    with pytest.raises(MetadataError, match=f"store.json: {key}: "):
        ReplayStore(tmp_path, readonly=True)
    with pytest.raises(MetadataError, match=f"store.json: {key}: "):
        ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT)
    assert replay_cli(["info", str(tmp_path)]) == 1
    assert f"store.json: {key}: " in capsys.readouterr().err


def test_removing_the_lock_file_does_not_let_a_second_writer_in(tmp_path):
    """Two processes: a writer holds the store; deleting every file that looks like a lock must
    not let another writer open it (on the base commit the second writer got in and cut the
    first writer's fsynced rows)."""
    proc = subprocess.Popen(
        [sys.executable, str(SUPPORT), str(tmp_path), "100", "--chunk", "64", "--hold"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        while (line := proc.stdout.readline().strip()) != "holding":
            assert line.startswith("durable"), line
        for name in ("writer.lock", "writer.pid"):
            (tmp_path / name).unlink(missing_ok=True)
        with pytest.raises(ReplayStoreError, match="already open for writing"):
            ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=64)
        proc.stdin.write("go on\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=64) as store:  # free once it closed
        np.testing.assert_array_equal(stored_seqs(store), np.arange(200))
        check_content(store)


def rewrite_header(path: Path, **changes) -> None:
    """Change header keys of a chunk/tail file in place, with a valid header CRC (format: magic,
    uint32 length, JSON, uint32 CRC32 of the JSON)."""
    data = path.read_bytes()
    (length,) = struct.unpack_from("<I", data, 8)
    header = json.loads(data[12 : 12 + length])
    header.update(changes)
    body = json.dumps(header, sort_keys=True).encode()
    rest = data[12 + length + 4 :]
    path.write_bytes(data[:8] + struct.pack("<I", len(body)) + body + struct.pack("<I", zlib.crc32(body)) + rest)


@pytest.mark.parametrize("kind", ["chunk", "tail"])
def test_file_with_another_obs_act_split_is_refused_not_misread(tmp_path, kind):
    write_sample(tmp_path)  # chunks hold 0..39 in four files, the tail 40..44
    victim = sorted(session_dir(tmp_path).glob("chunk-*.rpc"))[1] if kind == "chunk" else next(
        session_dir(tmp_path).glob("tail-*.rpt")
    )
    rewrite_header(victim, obs_dim=OBS - 1, act_dim=ACT + 1)  # the same record size, other columns
    expected = [*range(10), *range(20, 45)] if kind == "chunk" else list(range(40))
    with pytest.warns(ReplayWarning, match=f"{victim.name}: holds obs_dim={OBS - 1}, act_dim={ACT + 1}"):
        reader = ReplayStore(tmp_path, readonly=True)
    np.testing.assert_array_equal(stored_seqs(reader), expected)
    check_content(reader)
    with pytest.warns(ReplayWarning, match=victim.name):
        writer = ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10)
    writer.close()
    assert not victim.exists() and victim.with_name(victim.name + ".quarantine").exists()


def _drop_file_permission_override() -> None:
    """In the child: make root subject to file permissions (drop CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from the bounding set, so the exec'd interpreter lacks them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


OPEN_AS_WRITER = """
import sys
from dreamer_core.storage import ReplayStore, ReplayStoreError
try:
    ReplayStore(sys.argv[1], obs_dim=6, act_dim=3)
except ReplayStoreError as exc:
    print(f"{type(exc).__name__}: {exc}")
else:
    print("opened")
with ReplayStore(sys.argv[1], readonly=True) as reader:
    print("reader steps", reader.num_steps)
"""


def test_read_only_store_gives_a_clear_store_error(tmp_path):
    write_sample(tmp_path)
    paths = [tmp_path, *tmp_path.rglob("*")]
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        root = os.geteuid() == 0  # root ignores file modes unless it gives up the capability
        result = subprocess.run(
            [sys.executable, "-c", OPEN_AS_WRITER, str(tmp_path)], capture_output=True, text=True, timeout=120,
            preexec_fn=_drop_file_permission_override if root else None,
        )
    finally:
        for path in paths:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert result.returncode == 0, result.stderr
    assert "ReplayStoreError: cannot open replay store" in result.stdout and "Permission denied" in result.stdout
    assert "reader steps 45" in result.stdout  # a read-only store still serves readers


def a1_spec(**changes) -> PolicySpec:
    fields = dict(
        robot_id="robot",
        observation=(("joint_pos", 3), ("joint_vel", 3)),
        action_joints=("hip", "thigh", "knee"),
    )
    fields.update(changes)
    return PolicySpec(**fields)


def test_policy_spec_is_kept_in_store_json(tmp_path):
    spec = a1_spec()
    with ReplayStore(tmp_path / "new", spec=spec) as store:
        assert (store.spec, store.obs_dim, store.act_dim) == (spec, OBS, ACT)
        store.add(make(0))
    with ReplayStore(tmp_path / "new", readonly=True) as reader:
        assert reader.spec == spec
    with ReplayStore(tmp_path / "new", obs_dim=OBS, act_dim=ACT) as store:  # a writer without a spec keeps it
        assert store.spec == spec
    swapped = a1_spec(action_joints=("knee", "thigh", "hip"))  # same sizes, another meaning
    with pytest.raises(ReplayStoreError, match="is not the one replay store"):
        ReplayStore(tmp_path / "new", spec=swapped)
    with pytest.raises(ReplayStoreError, match="contradict the given spec"):
        ReplayStore(tmp_path / "other", obs_dim=OBS + 1, spec=spec)
    write_sample(tmp_path / "old", count=3)
    with ReplayStore(tmp_path / "old", readonly=True) as reader:
        assert reader.spec is None
    meta = json.loads((tmp_path / "new" / "store.json").read_text())
    meta["spec"]["action_joints"] = ["knee", "thigh", "hip"]  # edited without its hash
    (tmp_path / "new" / "store.json").write_text(json.dumps(meta))
    with pytest.raises(MetadataError, match=r"store\.json: spec_hash: "):
        ReplayStore(tmp_path / "new", readonly=True)


def test_invalid_transitions_raise_the_documented_type(tmp_path):
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT) as store:
        store.add(make(0))
        for field, value in (
            ("reward", 3e39),  # beyond float32: would be stored as inf
            ("seq", 1.0),
            ("seq", True),
            ("obs", np.full(OBS, 1e39)),
            ("reward", "1"),
        ):
            with pytest.raises(InvalidTransitionError, match=f"Transition.{field}"):
                store.add(dataclasses.replace(make(1), **{field: value}))
        assert store.num_steps == 1
