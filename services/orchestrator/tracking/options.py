"""The experiment-tracking options of `run` (and `refine`) and of `track`: written once, as fields.

Torch-, wandb- and mlflow-free: the parser of every command imports it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from videophy_bench.common.cli_fields import cli_field, cli_values

GROUP = ("experiment tracking (logged when the run ends; `videophy-bench track RUN` logs an existing run; "
         "needs the wandb / mlflow extra)")
DEFAULT_EXPERIMENT = "videophy-bench"
DEFAULT_VIDEOS = 2


def _videos(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


@dataclass(frozen=True)
class TrackingOptions:
    """Where a run's config, numbers, tables and sample videos are logged (tracking/__init__.py)."""

    wandb: str | None = cli_field(
        "--wandb", "log to this Weights & Biases project (WANDB_API_KEY / `wandb login`; WANDB_MODE=offline "
        "writes under WANDB_DIR for `wandb sync`)", GROUP, default=None, metavar="PROJECT")
    wandb_entity: str | None = cli_field("--wandb-entity", "W&B team or user (default: your default entity)",
                                         GROUP, default=None, metavar="ENTITY")
    mlflow: str | None = cli_field(
        "--mlflow", "log to this MLflow tracking URI: http(s)://server, file:/dir or a directory (the local "
        "file store), databricks, sqlite:///file.db (needs the full mlflow package)", GROUP, default=None,
        metavar="URI")
    mlflow_experiment: str = cli_field("--mlflow-experiment", "MLflow experiment (default: %(default)s)",
                                       GROUP, default=DEFAULT_EXPERIMENT, metavar="NAME")
    track_name: str | None = cli_field("--track-name", "the tracked run's name (default: the run "
                                       "directory's name)", GROUP, default=None, metavar="NAME")
    track_videos: int = cli_field(
        "--track-videos", "sample videos logged: this many best and this many worst scored ones (0: none; "
        "default: %(default)s)", GROUP, default=DEFAULT_VIDEOS, type=_videos, metavar="N")

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace) -> TrackingOptions:
        return cls(**cli_values(cls, args))

    @property
    def targets(self) -> list[str]:
        """The backends asked for, by registry name (tracking.BACKENDS)."""
        return [name for name in ("wandb", "mlflow") if getattr(self, name)]
