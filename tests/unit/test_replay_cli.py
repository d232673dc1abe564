"""The dreamer-replay command: info and export."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from replay_support import ACT, OBS, make

from dreamer_core.storage import ReplayStore
from dreamer_core.storage.cli import main


@pytest.fixture
def store_dir(tmp_path):
    with ReplayStore(tmp_path / "replay", obs_dim=OBS, act_dim=ACT, chunk_length=16) as s:
        for seq in range(40):
            s.add(make(seq, session="s1", robot="a1"))
        for seq in range(25):
            s.add(make(seq, session="s2", robot="a1", policy_version=3))
    return tmp_path / "replay"


def test_info_lists_sessions(store_dir, capsys):
    assert main(["info", str(store_dir)]) == 0
    out = capsys.readouterr().out
    assert "s1" in out and "s2" in out and "total: 2 sessions, 65 steps stored" in out
    assert main(["info", str(store_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["steps"] for s in data["sessions"]] == [40, 25]
    assert data["sessions"][0]["episodes"] == 4 and data["sessions"][1]["policy_versions"] == [3]
    assert data["stats"]["disk_bytes"] > 65 * (OBS + ACT) * 4


def test_export_writes_one_npz(store_dir, tmp_path, capsys):
    out = tmp_path / "out" / "all.npz"
    assert main(["export", str(store_dir), str(out)]) == 0
    with np.load(out) as data:
        assert data["obs"].shape == (65, OBS) and data["action"].shape == (65, ACT)
        np.testing.assert_array_equal(data["seq"], [*range(40), *range(25)])
        np.testing.assert_array_equal(data["session_index"], [0] * 40 + [1] * 25)
        assert list(data["session_ids"]) == ["s1", "s2"]
        np.testing.assert_array_equal(data["is_first"], data["seq"] % 10 == 0)
    one = tmp_path / "s2.npz"
    assert main(["export", str(store_dir), str(one), "--session", "s2"]) == 0
    with np.load(one) as data:
        np.testing.assert_array_equal(data["seq"], np.arange(25))
    assert main(["export", str(store_dir), str(tmp_path / "none.npz"), "--robot", "nobody"]) == 1
    assert "no session" in capsys.readouterr().err


def test_console_script_reports_bad_directory(tmp_path):
    exe = shutil.which("dreamer-replay")
    assert exe, "dreamer-replay is not installed; run: pip install --no-deps --no-build-isolation -e ."
    result = subprocess.run([exe, "info", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "not a replay store" in result.stderr
