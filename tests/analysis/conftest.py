"""Fixtures of the analysis tests; the ledger builders live in analysis_ledgers.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from analysis_ledgers import write_run


@pytest.fixture
def run_factory(tmp_path: Path):
    """Call with rows (and write_run keyword arguments) to get a run directory."""

    def make(rows: Sequence[dict[str, object]], name: str = "run", **kwargs: object) -> Path:
        return write_run(tmp_path, rows, name=name, **kwargs)

    return make
