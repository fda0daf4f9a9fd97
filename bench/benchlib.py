"""Scaffolding shared by the bench scripts: repository imports and a JSON results recorder."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def use_repo_imports() -> None:
    """Make `videophy_bench` (the folder services/, with its generated stubs) importable from a plain
    checkout: the device machine gets the repository, not the installed package."""
    import importlib.util
    import types

    for p in (str(Path(__file__).resolve().parent), str(ROOT)):
        if p not in sys.path:
            sys.path.insert(0, p)
    if "videophy_bench" in sys.modules or importlib.util.find_spec("videophy_bench") is not None:
        return  # installed
    pkg = types.ModuleType("videophy_bench")
    pkg.__path__ = [str(ROOT / "services")]  # what pyproject's package-dir maps
    pkg.__file__ = str(ROOT / "services" / "__init__.py")
    sys.modules["videophy_bench"] = pkg


class Recorder:
    """A results dict written as `out/name` after every step, and timestamped log lines."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.out = Path(".")
        self.results: dict[str, Any] = {}
        self.t0 = time.perf_counter()

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", flush=True)

    def save(self) -> None:
        (self.out / self.name).write_text(json.dumps(self.results, indent=1, default=str))
