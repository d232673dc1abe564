"""Property-based fuzzing of replay ingest: every field of the Transition message, hostile values
included, through the replay node's admission check into the store (see replay_fuzz.py for the
invariants). The example count and derandomization come from the hypothesis profile loaded in
tests/conftest.py; bench/fuzz_replay.py runs the same property for longer."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from replay_fuzz import check_ingest, ingest_runs


@given(run=ingest_runs())
def test_ingest_never_raises_loses_or_reorders_and_counts_every_refusal(run):
    with tempfile.TemporaryDirectory(prefix="replay_fuzz_") as directory:
        check_ingest(run, Path(directory))
