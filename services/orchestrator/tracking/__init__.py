"""Optional experiment tracking: a run's config, headline numbers with CIs, tables and sample videos in
Weights & Biases and/or MLflow (docs/orchestrator.md, "Experiment tracking").

One record of the run (record.py, read from its exports) and one module per backend behind this lazy
registry: nothing here imports wandb or mlflow until a backend is used, and a missing library is one line
naming the extra to install, found before the run starts (`check`). Logging happens when the run ends
(`log_run`) or for any run directory with `videophy-bench track`; it never fails a run: a tracker that
cannot be reached is a warning, and the results stay on disk to be logged later.
"""

from __future__ import annotations

import importlib
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videophy_bench.common import csvio
from videophy_bench.orchestrator.tracking.options import TrackingOptions

log = logging.getLogger(__name__)
STATE_FILE = "tracking.json"  # in the run directory: the tracked run of each target, to update it later


@dataclass(frozen=True)
class Backend:
    module: str
    library: str  # what must import
    extra: str  # pip install 'videophy-bench[extra]'
    label: str


BACKENDS = {
    "wandb": Backend("videophy_bench.orchestrator.tracking.wandb_backend", "wandb", "wandb", "W&B"),
    "mlflow": Backend("videophy_bench.orchestrator.tracking.mlflow_backend", "mlflow", "mlflow", "MLflow"),
}


class TrackingUnavailable(ValueError):
    """A tracker asked for cannot be used (library missing, bad project or URI, no credentials)."""


def _backend(name: str) -> Any:
    backend = BACKENDS[name]
    try:
        importlib.import_module(backend.library)
    except ImportError:
        raise TrackingUnavailable(
            f"--{name} needs the {backend.library} package: pip install 'videophy-bench[{backend.extra}]'"
        ) from None
    return importlib.import_module(backend.module)


def check(opts: TrackingOptions) -> None:
    """Raise TrackingUnavailable (one line) when a requested tracker cannot work; starts nothing."""
    for name in opts.targets:
        problem = _backend(name).check(opts)
        if problem:
            raise TrackingUnavailable(problem)


def _target_key(name: str, opts: TrackingOptions) -> str:
    if name == "wandb":
        return f"{opts.wandb_entity or ''}/{opts.wandb}"
    from videophy_bench.orchestrator.tracking.mlflow_backend import shown_uri, tracking_uri

    return f"{shown_uri(tracking_uri(opts.mlflow or ''))}#{opts.mlflow_experiment}"


def _state(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def log_run(run_dir: Path, opts: TrackingOptions) -> bool:
    """Log `run_dir` to every requested tracker; never raises. True when every one took it (each
    success is logged with where the run is, each failure is one warning naming the way to retry)."""
    from videophy_bench.orchestrator.tracking.record import tracked_run

    if not opts.targets:
        return True
    run_dir = Path(run_dir)
    from videophy_bench.orchestrator.tracking.mlflow_backend import shown_uri

    retry = f"videophy-bench track {run_dir} " + " ".join(
        f"--{n} {shown_uri(getattr(opts, n))}" for n in opts.targets)
    with tempfile.TemporaryDirectory(prefix="videophy-track-") as scratch:
        try:
            record = tracked_run(run_dir, opts.track_name, opts.track_videos, Path(scratch))
        except Exception as exc:
            log.warning("experiment tracking skipped: %s (the results are in %s)", _line(exc), run_dir)
            return False
        return _log_record(record, opts, retry)


def _log_record(record: Any, opts: TrackingOptions, retry: str) -> bool:
    run_dir = record.run_dir
    ok = True
    for name in opts.targets:
        label = BACKENDS[name].label
        key = _target_key(name, opts)
        state = _state(run_dir)
        try:
            run_id, where = _backend(name).log(record, opts, state.get(name, {}).get(key))
        except Exception as exc:  # any tracker fault: the finished run and its files stay as they are
            log.debug("%s tracking failed", label, exc_info=True)
            log.warning("%s tracking failed: %s; the results are in %s; retry with `%s`",
                        label, _line(exc), run_dir, retry)
            ok = False
            continue
        state.setdefault(name, {})[key] = run_id
        try:
            csvio.write_atomic(run_dir / STATE_FILE, (json.dumps(state, indent=1) + "\n").encode())
        except OSError as exc:
            log.warning("could not record the %s run id in %s: %s", label, run_dir / STATE_FILE, exc)
        log.info("%s: logged %s (%d numbers, %d tables, %d videos) to %s", label, record.name,
                 len(record.metrics), len(record.tables), len(record.samples), where)
    return ok


def _line(exc: BaseException) -> str:
    from videophy_bench.common.entry import one_line

    return one_line(exc)
