"""The tool's identity: package version and, when run from a git checkout, the commit (best effort).

Recorded in every results.json and shown by `videophy-bench --version`. Nothing here may fail: a
missing package record or git gives None.
"""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from pathlib import Path
from typing import Any

PACKAGE = "videophy-bench"
# The checkout this source file lives in (services/common/version.py -> repository root).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def package_version() -> str | None:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def tool_info() -> dict[str, Any]:
    """{"name", "version", "git_commit", "git_dirty"}; the git keys are None unless this source tree
    is itself a git checkout (an installed wheel under some other repository reports no commit)."""
    commit = dirty = None
    if (SOURCE_ROOT / ".git").exists():  # a directory, or a file in a worktree
        commit = _git("rev-parse", "HEAD")
        if commit is not None:
            status = _git("status", "--porcelain", "--untracked-files=no")
            dirty = None if status is None else bool(status)
    return {"name": PACKAGE, "version": package_version(), "git_commit": commit, "git_dirty": dirty}


def version_line() -> str:
    """e.g. `videophy-bench 0.1.0 (git 1a2b3c4d5e6f, modified)`."""
    info = tool_info()
    text = f"{PACKAGE} {info['version'] or 'unknown version'}"
    if info["git_commit"]:
        text += f" (git {info['git_commit'][:12]}{', modified' if info['git_dirty'] else ''})"
    return text
