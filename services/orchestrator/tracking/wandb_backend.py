"""Weights & Biases: the record as one W&B run (config, summary, Tables, Videos, a results artifact).

The W&B run's id is kept in the run directory (tracking.json), so logging the same run directory again
(a resumed or extended run, `track` after `run`) updates that W&B run instead of adding another.
"""

from __future__ import annotations

import os
import re
from typing import Any

from videophy_bench.common.entry import one_line
from videophy_bench.orchestrator.tracking.options import TrackingOptions
from videophy_bench.orchestrator.tracking.record import TrackedRun

OFFLINE_MODES = ("offline", "dryrun", "disabled")
# W&B refuses these in project names (and names over 128 characters).
_BAD_PROJECT = re.compile(r"[/\\#?%:]")


def check(opts: TrackingOptions) -> str | None:
    """Why logging to W&B cannot work (None: it can), without starting anything."""
    project = opts.wandb or ""
    if _BAD_PROJECT.search(project) or not project.strip() or len(project) > 128:
        return f"--wandb {project!r}: a W&B project name has 1-128 characters and none of / \\ # ? % :"
    import wandb

    if os.environ.get("WANDB_MODE", "").lower() in OFFLINE_MODES:
        return None
    try:  # credentials only (no request): a missing key is found now, not after the run
        wandb.login(verify=False, relogin=False)
    except Exception as exc:
        first = one_line(exc)
        return (f"--wandb: no usable W&B credentials ({first}); set WANDB_API_KEY, run `wandb login`, "
                "or set WANDB_MODE=offline")
    return None


def _cell(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str | bool) else str(value)


def log(run: TrackedRun, opts: TrackingOptions, run_id: str | None) -> tuple[str, str]:
    """Log `run`; returns (the W&B run id, where it is: its URL, or its offline directory)."""
    import wandb

    wb = wandb.init(
        project=opts.wandb, entity=opts.wandb_entity, name=run.name, id=run_id, resume="allow",
        job_type="videophy2-benchmark", tags=["videophy2", *(v for k, v in run.tags.items()
                                                           if k.endswith("_model") and v)],
        config=run.config, settings=wandb.Settings(console="off", silent=True, save_code=False),
        reinit="create_new",
    )
    try:
        wb.summary.update({**run.metrics, **{f"tag/{k}": v for k, v in run.tags.items()}})
        logged: dict[str, Any] = {
            f"tables/{name}": wandb.Table(columns=t.columns, data=[[_cell(v) for v in r] for r in t.rows])
            for name, t in run.tables.items()
        }
        if run.samples:
            columns = [*list(run.samples[0].row), "video"]
            logged["samples"] = wandb.Table(columns=columns, data=[
                [*(_cell(v) for v in s.row.values()), wandb.Video(str(s.path), caption=s.caption,
                                                                  format="mp4")]
                for s in run.samples])
        wb.log(logged)
        artifact = wandb.Artifact(_artifact_name(run.name), type="videophy2-results",
                                  metadata={"config_hash": run.config["run"].get("config_hash")})
        for name, path in run.files.items():
            artifact.add_file(str(path), name=name)
        wb.log_artifact(artifact)
        offline = wb.settings.mode in OFFLINE_MODES  # (asking an offline run for its URL warns)
        return wb.id, str(f"{wb.dir} (offline: `wandb sync` uploads it)" if offline else wb.url)
    finally:
        wb.finish()


def _artifact_name(name: str) -> str:
    """W&B artifact names allow letters, digits, '-', '_' and '.'."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)[:100] + "-results"
