"""MLflow: the record as one MLflow run (params, metrics, tags, tables and sample videos as artifacts).

Local directories and `file:` URIs are MLflow's file store, which MLflow 3 keeps in maintenance mode
behind MLFLOW_ALLOW_FILE_STORE: naming one with --mlflow is that opt-in. The run id is kept in the run
directory (tracking.json) so logging the same run directory again updates that MLflow run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from videophy_bench.common import csvio
from videophy_bench.orchestrator.tracking.options import TrackingOptions
from videophy_bench.orchestrator.tracking.record import SAMPLE_COLUMNS, TrackedRun

MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
BARE_URIS = ("databricks", "databricks-uc", "uc")  # MLflow URIs without "://"


def tracking_uri(uri: str) -> str:
    """A directory becomes a `file:` URI (relative paths are relative to where the command runs)."""
    scheme = urlsplit(uri).scheme
    if (scheme and len(scheme) > 1) or uri in BARE_URIS:  # (a one-letter scheme is a Windows drive)
        return uri
    return Path(uri).expanduser().resolve().as_uri()


def shown_uri(uri: str) -> str:
    """The URI without a password it may carry (https://user:pass@host), for logs and tracking.json."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def _file_store(uri: str) -> Path | None:
    parts = urlsplit(uri)
    return Path(parts.path) if parts.scheme == "file" else None


def check(opts: TrackingOptions) -> str | None:
    """Why logging to MLflow cannot work (None: it can), without starting anything."""
    uri = tracking_uri(opts.mlflow or "")
    scheme = urlsplit(uri).scheme.split("+")[0]
    if scheme in DATABASE_SCHEMES:
        try:
            import sqlalchemy  # noqa: F401  (the database store of the full mlflow package)
        except ImportError:
            return (f"--mlflow {opts.mlflow}: a database store needs the full mlflow package "
                    "(pip install mlflow); mlflow-skinny serves file stores and tracking servers")
    store = _file_store(uri)
    if store is not None:
        existing = next((p for p in (store, *store.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
            return f"--mlflow {opts.mlflow}: {existing or store} is not a writable directory"
    import mlflow  # noqa: F401

    return None


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    if _file_store(uri) is not None:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=uri)


def _run_to_use(client, experiment_id: str, run_id: str | None, run: TrackedRun) -> str:
    """The stored MLflow run when it still exists (active), else a new one."""
    from mlflow.exceptions import MlflowException

    if run_id:
        try:
            if client.get_run(run_id).info.lifecycle_stage == "active":
                client.update_run(run_id, status="RUNNING")
                return run_id
        except MlflowException:
            pass
    return client.create_run(experiment_id, run_name=run.name).info.run_id


def log(run: TrackedRun, opts: TrackingOptions, run_id: str | None) -> tuple[str, str]:
    """Log `run`; returns (the MLflow run id, the experiment and run it is in)."""
    from mlflow.entities import Metric, Param, RunTag

    uri = tracking_uri(opts.mlflow or "")
    client = _client(uri)
    experiment = client.get_experiment_by_name(opts.mlflow_experiment)
    experiment_id = (experiment.experiment_id if experiment is not None
                     else client.create_experiment(opts.mlflow_experiment))
    run_id = _run_to_use(client, experiment_id, run_id, run)
    status = "FAILED"
    try:
        existing = client.get_run(run_id).data.params
        params = [Param(k, v[:MAX_PARAM_CHARS]) for k, v in run.params.items()
                  if k not in existing]  # params are fixed once logged (and the configuration is too)
        metrics = [Metric(k, v, 0, 0) for k, v in run.metrics.items()]
        tags = [RunTag(k, v) for k, v in run.tags.items()] + [RunTag("mlflow.runName", run.name)]
        for i in range(0, max(len(metrics), len(params), 1), 100):  # MLflow's batch limits
            client.log_batch(run_id, metrics=metrics[i:i + 100], params=params[i:i + 100],
                             tags=tags if i == 0 else [])
        client.log_dict(run_id, run.config, "config.json")
        for name, path in run.files.items():
            parent = Path(name).parent.as_posix()
            client.log_artifact(run_id, str(path), "results" if parent == "." else f"results/{parent}")
        with tempfile.TemporaryDirectory(prefix="videophy-mlflow-") as tmp:
            tables = Path(tmp) / "tables"
            tables.mkdir()
            for name, table in run.tables.items():
                csvio.write_csv(tables / f"{name.replace('/', '__')}.csv", table.columns, table.rows)
            if run.samples:
                csvio.write_csv(tables / "samples.csv", SAMPLE_COLUMNS,
                                [[s.row.get(c) for c in SAMPLE_COLUMNS] for s in run.samples])
            client.log_artifacts(run_id, str(tables), "tables")
        for sample in run.samples:
            client.log_artifact(run_id, str(sample.path), f"videos/{sample.kind}")
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status=status)
    return run_id, f"{shown_uri(uri)} experiment {opts.mlflow_experiment!r} run {run_id}"
