"""Synthetic ledgers for the analysis tests, written in the results.csv layout of docs/results-schema.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from videophy_bench.common import csvio
from videophy_bench.orchestrator.analysis.loading import prepare_results

CATEGORIES = ("Sports and Physical Activities", "Object Interactions")


def frame(rows: Sequence[dict[str, object]]) -> pd.DataFrame:
    """Rows built with :func:`item` as a typed results frame."""
    return prepare_results(pd.DataFrame(rows))


def tables_of(out: Path) -> tuple[dict, dict[str, dict]]:
    """A written report's ``report.json`` and its tables by id."""
    data = json.loads((out / "report.json").read_text())
    return data, {b["id"]: b for s in data["sections"] for b in s["blocks"] if b["type"] == "table"}


def item(prompt_id: str, sa: float | None, pc: float | None, **extra: object) -> dict[str, object]:
    """One results.csv row; a judged item unless ``state`` says otherwise."""
    row: dict[str, object] = {
        "prompt_id": prompt_id,
        "seed": 0,
        "round": 0,
        "arm": "base",
        "caption": f"caption of {prompt_id}",
        "gen_prompt": f"caption of {prompt_id}",
        "action": "a0",
        "is_hard": False,
        "category": CATEGORIES[0],
        "state": "judged",
        "error": "",
        "video_path": f"videos/{prompt_id}.mp4",
        "sha256": "",
        "sa": sa,
        "pc": pc,
        "rule": None,
        "sa_parse": "parsed" if sa is not None else "",
        "pc_parse": "parsed" if pc is not None else "",
        "rule_parse": "",
        "sa_raw": "",
        "pc_raw": "",
        "rule_raw": "",
        "videocon_sa": None,
        "videocon_pc": None,
        "joint": None,
        "gen_seconds": 1.0,
        "judge_seconds": 1.0,
    }
    row.update(extra)
    return row


def write_run(
    root: Path,
    rows: Sequence[dict[str, object]],
    name: str = "run",
    manifest: dict | None = None,
    videos: bool = False,
) -> Path:
    """Write a run directory with results.csv (and manifest.json, and tiny video files) under ``root``."""
    run_dir = root / name
    run_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(list(rows))
    csvio.write_csv(run_dir / "results.csv", list(frame.columns), frame.itertuples(index=False))
    if manifest is not None:
        (run_dir / "manifest.json").write_text(json.dumps(manifest))
    if videos:
        (run_dir / "videos").mkdir(exist_ok=True)
        for rel in frame["video_path"].dropna():
            (run_dir / rel).write_bytes(b"\x00\x00\x00\x18ftypmp42")
    return run_dir


def benchmark_rows(
    n_prompts: int = 120,
    n_actions: int = 40,
    seeds: Sequence[int] = (0,),
    rng_seed: int = 1,
    pass_shift: float = 0.0,
    arm: str = "base",
) -> list[dict[str, object]]:
    """A random benchmark-like ledger: prompts spread over actions, 30% hard, two categories."""
    rng = np.random.default_rng(rng_seed)
    action_quality = rng.normal(0, 1, n_actions)
    rows = []
    for p in range(n_prompts):
        action = p % n_actions
        hard = p % 10 < 3
        for seed in seeds:
            base = 3.2 + action_quality[action] - (0.8 if hard else 0) + pass_shift
            sa = int(np.clip(round(base + rng.normal(0, 1)), 1, 5))
            pc = int(np.clip(round(base + 0.4 + rng.normal(0, 1)), 1, 5))
            rows.append(
                item(
                    f"p{p:04d}",
                    sa,
                    pc,
                    seed=seed,
                    arm=arm,
                    action=f"action {action:03d}",
                    is_hard=hard,
                    category=CATEGORIES[action % 2],
                    rule=float(rng.integers(0, 3)),
                    rule_parse="parsed",
                    video_path=f"videos/p{p:04d}_s{seed}.mp4",
                )
            )
    return rows
