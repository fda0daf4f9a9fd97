"""Where locally built artifacts (the tiny offline models) are cached: $VIDEOPHY_CACHE or ~/.cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The project's cache root; an empty VIDEOPHY_CACHE counts as unset."""
    return Path(os.environ.get("VIDEOPHY_CACHE") or Path.home() / ".cache" / "videophy-bench")
