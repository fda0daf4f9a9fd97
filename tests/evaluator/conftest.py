"""Shared fixtures: the official parity fixture and example videos in ../shared beside the repo
(or where VIDEOPHY_SHARED_DIR points).

Missing data FAILS the tests that need it, never skips them: parity with the official judge is the
product's core promise, and a skipped parity test reads as a passed one in CI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

SHARED = Path(os.environ.get("VIDEOPHY_SHARED_DIR") or Path(__file__).resolve().parents[2].parent / "shared")
FIXTURE = SHARED / "fixtures" / "autoeval_parity_a"
VIDEOPHY2 = SHARED / "data" / "videophy2"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(
            f"shared test data not found: {path}. The evaluator's parity tests need the project's shared "
            "test data (fixtures/autoeval_parity_a, data/videophy2/examples) in ../shared beside the "
            "repository, or set VIDEOPHY_SHARED_DIR to its folder (README, 'Tests').",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    return _require(FIXTURE / "reference.json").parent


@pytest.fixture(scope="session")
def reference(fixture_dir: Path) -> dict:
    return json.loads((fixture_dir / "reference.json").read_text())


@pytest.fixture(scope="session")
def videophy2_dir() -> Path:
    return _require(VIDEOPHY2 / "examples" / "sa_pc.csv").parent.parent


@pytest.fixture(scope="session")
def fp32_judge(fixture_dir: Path):
    from videophy_bench.evaluator.judge import load_judge

    torch.set_num_threads(2)
    judge = load_judge(fixture_dir, device="cpu", dtype="float32")
    yield judge
    judge.close()
