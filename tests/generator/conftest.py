"""Generator fixtures: the tiny pipelines are built once per session into a temporary cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from videophy_bench.generator.diffusers_backend import default_tiny_dir
from videophy_bench.generator.presets import PRESETS


@pytest.fixture(scope="session", autouse=True)
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Build the two tiny layouts once; VIDEOPHY_CACHE points the CLI (and subprocesses) at them."""
    from videophy_bench.generator.tiny import build_tiny_pipeline

    cache = tmp_path_factory.mktemp("videophy-cache")
    old = os.environ.get("VIDEOPHY_CACHE")
    os.environ["VIDEOPHY_CACHE"] = str(cache)
    try:
        dirs = {}
        for name in ("tiny", "tiny-moe"):
            layout = PRESETS[name].layout
            dirs[name] = build_tiny_pipeline(default_tiny_dir(layout), layout=layout)
        yield dirs
    finally:
        if old is None:
            os.environ.pop("VIDEOPHY_CACHE", None)
        else:
            os.environ["VIDEOPHY_CACHE"] = old
