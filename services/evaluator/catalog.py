"""The judge models the evaluator knows by name, and which `--model` values it accepts.

Torch-free on purpose: the orchestrator checks `--judge-model` / `--videocon-model` against this
before it creates or starts anything.
"""

from __future__ import annotations

import re
from pathlib import Path

from services.evaluator.model.templates import GENERATIVE_TASKS, VIDEOCON_TASKS

TINY = "tiny"  # random weights in the official layout, built offline
# name -> (Hub repo, tasks it was trained for)
KNOWN_MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "videophy_2_auto": ("videophysics/videophy_2_auto", GENERATIVE_TASKS),
    "videocon_physics": ("videophysics/videocon_physics", VIDEOCON_TASKS),
}
NAMES = (TINY, *KNOWN_MODELS)
HUB_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


def is_hub_repo_id(name: str) -> bool:
    """`owner/name` that is not a local path: fetched from the Hub."""
    return HUB_REPO_ID.fullmatch(name) is not None and not Path(name).expanduser().exists()


def unknown_judge(name: str) -> str | None:
    """Why the evaluator would refuse `--model name` (None: a name it knows, a directory or a Hub id)."""
    if name in NAMES or Path(name).expanduser().is_dir() or is_hub_repo_id(name):
        return None
    return (f"unknown judge model {name!r}: choose {', '.join(NAMES)}, a local checkpoint directory "
            "or a Hub repo id (owner/name)")
