"""The import package is `videophy_bench` (the folder services/, mapped by package-dir): its package
list in pyproject.toml names every folder of the tree, and no generic top-level name is installed."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_package_list_names_every_folder_of_services() -> None:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert cfg["package-dir"] == {"videophy_bench": "services"}
    root = REPO / "services"
    tree = sorted(".".join(("videophy_bench", *d.parent.relative_to(root).parts))
                  for d in root.rglob("__init__.py") if "__pycache__" not in d.parts)
    assert sorted(cfg["packages"]) == tree


def test_no_generic_top_level_package_is_installed(tmp_path: Path) -> None:
    """Outside the checkout (no cwd on sys.path), the installed project provides `videophy_bench` and
    neither `services` nor `videophy`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import importlib.util as u, videophy_bench.proto.v1.common_pb2, videophy_bench.orchestrator.cli"
            "\nprint(u.find_spec('services') is None, u.find_spec('videophy') is None)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "True"]
