"""Experiment tracking over a real tiny run: `run --mlflow/--wandb` when the run ends, `track RUN` for an
existing one; MLflow's local file store and W&B's offline mode, read back with their own readers."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from run_dirs import results
from scored_run import SCORES, cli, rescore, tiny_run
from wandb_offline import offline_runs

from videophy_bench.common import csvio

pytest.importorskip("mlflow")
pytest.importorskip("wandb")

PROJECT = "vp-test"


def wandb_env(root: Path) -> dict[str, str]:
    """W&B offline, everything it writes under `root`."""
    return {"WANDB_MODE": "offline", "WANDB_DIR": str(root), "WANDB_CONFIG_DIR": str(root / "config"),
            "WANDB_CACHE_DIR": str(root / "cache"), "WANDB_DATA_DIR": str(root / "data"),
            "WANDB_ARTIFACT_DIR": str(root / "artifacts")}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """A tiny run logged to both trackers when it ends: (root, run dir, MLflow URI, W&B dir, the run)."""
    root = tmp_path_factory.mktemp("tracking")
    run_dir, store, wandb_dir = root / "run", root / "mlruns", root / "wandb"
    wandb_dir.mkdir()
    done = tiny_run(run_dir, "--mlflow", str(store), "--wandb", PROJECT, env=wandb_env(wandb_dir))
    return root, run_dir, store.as_uri(), wandb_dir, done


def mlflow_runs(uri: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("videophy-bench")
    return client, client.search_runs([experiment.experiment_id])


def artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for info in client.list_artifacts(run_id, path):
        out |= artifact_paths(client, run_id, info.path) if info.is_dir else {info.path}
    return out


def test_a_run_ends_logged_to_mlflow_and_wandb(tracked, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    _, run_dir, uri, wandb_dir, done = tracked
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "MLflow: logged run" in done.stderr and "W&B: logged run" in done.stderr
    client, [run] = mlflow_runs(uri)
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params["config_hash"] == summary["config_hash"]
    assert run.data.params["generator_model"] == "tiny" and run.data.params["judge_model"] == "tiny"
    assert run.data.metrics["n_items"] == len(SCORES) and run.data.metrics["all/n_items"] == len(SCORES)
    assert run.data.tags["complete"] == "true"
    paths = artifact_paths(client, run.info.run_id)
    assert {"results/results.csv", "results/results.json", "results/summary.json", "results/manifest.json",
            "config.json", "tables/subsets.csv", "tables/actions.csv", "tables/samples.csv"} <= paths
    # The tiny judge's answers are unparseable: nothing is scored, so the samples are plain examples.
    assert len([p for p in paths if p.startswith("videos/example/") and p.endswith(".mp4")]) == 2
    [wb] = offline_runs(wandb_dir)
    assert (wb.project, wb.name) == (PROJECT, "run") and "videophy2" in wb.tags
    assert wb.config["run"]["config_hash"] == summary["config_hash"]
    assert wb.summary["n_items"] == len(SCORES)
    assert json.loads((run_dir / "tracking.json").read_text()) == {
        "wandb": {f"/{PROJECT}": wb.run_id}, "mlflow": {f"{uri}#videophy-bench": run.info.run_id}}


def test_track_logs_the_run_s_numbers_tables_and_videos_into_the_same_runs(tracked, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    _, run_dir, uri, wandb_dir, _ = tracked
    items = rescore(run_dir)
    done = cli(["track", str(run_dir), "--mlflow", uri, "--wandb", PROJECT, "--track-videos", "1"],
               wandb_env(wandb_dir))
    assert done.returncode == 0, done.stderr
    doc = json.loads((run_dir / "results.json").read_text())
    subsets = {row["subset"]: row for row in doc["conditions"][0]["subsets"]}
    assert doc["summary"]["joint"] == 0.5 and subsets["all"]["joint_lo"] < 0.5 < subsets["all"]["joint_hi"]
    best, worst = (next(r for r in results(run_dir) if r["prompt_id"] == items[i]["prompt_id"])
                   for i in (0, -1))

    client, [run] = mlflow_runs(uri)  # the run the end of `run` made, updated
    assert json.loads((run_dir / "tracking.json").read_text())["mlflow"][f"{uri}#videophy-bench"] == \
        run.info.run_id
    m = run.data.metrics
    assert (m["joint"], m["mean_sa"], m["mean_pc"]) == (0.5, 3.0, 3.25)
    for subset in ("all", "hard", "easy"):
        for stat in ("joint", "joint_lo", "joint_hi", "mean_sa", "mean_pc", "n"):
            if subsets[subset][stat] is not None:
                assert m[f"{subset}/{stat}"] == pytest.approx(subsets[subset][stat])
    assert m["all/joint_boot_lo"] == pytest.approx(subsets["all"]["joint_boot_lo"])
    local = Path(client.download_artifacts(run.info.run_id, "tables", str(run_dir.parent / "downloaded")))
    header, rows = csvio.read_rows(local / "subsets.csv")
    assert [r[header.index("subset")] for r in rows] == list(subsets)
    assert [float(r[header.index("n")]) for r in rows] == [float(s["n"]) for s in subsets.values()]
    header, rows = csvio.read_rows(local / "samples.csv")
    assert [(r[0], r[1], float(r[header.index("sa")])) for r in rows] == [
        ("best", best["prompt_id"], 5.0), ("worst", worst["prompt_id"], 1.0)]
    paths = artifact_paths(client, run.info.run_id)
    for kind, row in (("best", best), ("worst", worst)):
        name = f"videos/{kind}/{Path(row['video_path']).name}"
        assert name in paths
        got = Path(client.download_artifacts(run.info.run_id, name, str(run_dir.parent / f"dl-{kind}")))
        assert got.read_bytes() == (run_dir / row["video_path"]).read_bytes()

    first, second = offline_runs(wandb_dir)
    assert second.run_id == first.run_id  # resumed, not a second W&B run
    assert (second.summary["joint"], second.summary["mean_sa"]) == (0.5, 3.0)
    assert second.summary["hard/joint"] == pytest.approx(subsets["hard"]["joint"])
    assert second.summary["all/joint_hi"] == pytest.approx(subsets["all"]["joint_hi"])
    [logged] = second.history
    assert logged["samples"]["_type"] == "table-file" and logged["samples"]["nrows"] == 2
    assert logged["tables/subsets"]["nrows"] == len(subsets)
    # The samples table travels as an artifact with its videos (staged copies until `wandb sync`).
    [samples] = [a for a in second.artifacts if a.type == "run_table" and a.name.endswith("-samples")]
    staged = {c.path: Path(c.local_path) for c in samples.manifest.contents}
    table = json.loads(staged.pop("samples.table.json").read_text())
    kind = table["columns"].index("kind")
    assert [(r[kind], r[table["columns"].index("prompt_id")]) for r in table["data"]] == [
        ("best", best["prompt_id"]), ("worst", worst["prompt_id"])]
    assert all(p.endswith(".mp4") for p in staged)
    assert sorted(p.read_bytes() for p in staged.values()) == sorted(
        (run_dir / r["video_path"]).read_bytes() for r in (best, worst))
    [artifact] = [a for a in second.artifacts if a.type == "videophy2-results"]
    assert {c.path for c in artifact.manifest.contents} >= {"results.csv", "results.json", "summary.json",
                                                           "manifest.json"}


def test_a_tracker_that_fails_never_fails_the_run(tracked, unused_port, tmp_path):
    _, run_dir, _, _, _ = tracked
    before = (run_dir / "results.csv").read_bytes()
    down = f"http://127.0.0.1:{unused_port()}"  # nothing listens there
    done = cli(["run", "--local", "--model", "tiny", "--prompts", "sample", "--limit", str(len(SCORES)),
                "--out", str(run_dir), "--no-progress", "--mlflow", down],
               {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"})
    assert done.returncode == 0, done.stderr
    [warning] = [line for line in done.stderr.splitlines() if "MLflow tracking failed" in line]
    assert f"retry with `videophy-bench track {run_dir} --mlflow {down}`" in warning
    assert "Traceback" not in done.stderr
    assert (run_dir / "results.csv").read_bytes() == before  # nothing redone, nothing lost


def test_a_missing_tracking_library_is_one_line_before_anything_starts(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "wandb.py").write_text("raise ImportError('No module named wandb')\n")  # as if not installed
    run_dir = tmp_path / "run"
    path = f"{blocked}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    done = cli(["run", "--local", "--model", "tiny", "--prompts", "sample", "--out", str(run_dir),
                "--wandb", PROJECT], {"PYTHONPATH": path})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "videophy-bench run: --wandb needs the wandb package: pip install 'videophy-bench[wandb]'"]
    assert not run_dir.exists()


@pytest.mark.parametrize("args, env, line", [
    (["--wandb", "a/b"], {"WANDB_MODE": "offline"}, "--wandb 'a/b': a W&B project name has"),
    (["--wandb", PROJECT], {"WANDB_MODE": "online", "WANDB_API_KEY": ""},
     "--wandb: no usable W&B credentials (No API key configured"),
    pytest.param(["--mlflow", "sqlite:///x.db"], {}, "a database store needs the full mlflow package",
                 marks=pytest.mark.skipif(importlib.util.find_spec("sqlalchemy") is not None,
                                          reason="the full mlflow (with sqlalchemy) is installed")),
    (["--mlflow", "{tmp}/a-file/mlruns"], {}, "/a-file is not a writable directory"),
])
def test_an_unusable_tracker_is_refused_before_anything_starts(tmp_path, args, env, line):
    (tmp_path / "a-file").write_text("")
    run_dir = tmp_path / "run"
    env = {**env, "HOME": str(tmp_path), "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
           "NETRC": str(tmp_path / "no-netrc")}
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = cli(["run", "--local", "--model", "tiny", "--prompts", "sample", "--out", str(run_dir), *args],
               env)
    assert done.returncode == 2, done.stderr
    [only] = done.stderr.strip().splitlines()
    assert only.startswith("videophy-bench run: ") and line in only
    assert not run_dir.exists()


def test_track_refuses_what_it_cannot_log_in_one_line(tmp_path):
    done = cli(["track", str(tmp_path)])
    assert done.returncode == 2 and done.stderr.strip() == (
        "videophy-bench track: give --wandb PROJECT and/or --mlflow URI")
    done = cli(["track", str(tmp_path), "--mlflow", str(tmp_path / "mlruns")])
    assert done.returncode == 2
    [only] = done.stderr.strip().splitlines()
    assert only.startswith(f"videophy-bench track: {tmp_path}: no results.json")


def test_refine_is_tracked_once_after_its_last_round_with_each_condition(shared_services, tmp_path):
    from fake_openai import FakeOpenAI

    from videophy_bench.orchestrator.cli import main

    svc, gens, ev = shared_services
    run_dir = svc.root / "runs" / "refined"
    common = ["--storage-root", str(svc.root), "--generators", ",".join(g.address for g in gens),
              "--evaluators", ev.address, "--refresh-s", "0.5", "--no-progress"]
    assert main(["run", "--prompts", "sample", "--limit", "2", "--out", str(run_dir), *common]) == 0
    uri = (tmp_path / "mlruns").as_uri()
    with FakeOpenAI() as fake:
        assert main(["refine", "--run", str(run_dir), "--rounds", "2", "--llm-endpoint", fake.url,
                     "--llm-model", "fake-llm", "--frames", "2", "--mlflow", uri, *common]) == 0
    _, [run] = mlflow_runs(uri)  # one MLflow run for the two rounds' runs
    m = run.data.metrics
    for condition in ("base/round_0", "phyt2v/round_1", "phyt2v/round_2"):
        assert m[f"{condition}/all/n_items"] == 2
    assert "all/n_items" not in m  # with several conditions every key names its own


def test_uris_and_command_lines_as_they_leave_the_machine(tmp_path, monkeypatch):
    from videophy_bench.common.redact import redact_argv
    from videophy_bench.orchestrator.tracking.mlflow_backend import shown_uri, tracking_uri

    monkeypatch.chdir(tmp_path)
    assert tracking_uri("mlruns") == (tmp_path / "mlruns").as_uri()  # a directory: the file store
    for uri in ("file:/x/mlruns", "http://host:5000", "databricks", "databricks://profile", "sqlite:///a.db"):
        assert tracking_uri(uri) == uri
    assert shown_uri("https://me:pw@host:5000/p") == "https://me:***@host:5000/p"
    assert shown_uri("http://host:5000") == "http://host:5000"
    argv = ["videophy-bench", "run", "--auth-token", "s1", "--api-key=s2", "--auth-token-file", "/f",
            "--api-key-env", "KEY", "--out", "runs/x", "--llm-api-token", "s3"]
    assert redact_argv(argv) == ["videophy-bench", "run", "--auth-token", "REDACTED", "--api-key=REDACTED",
                                 "--auth-token-file", "/f", "--api-key-env", "KEY", "--out", "runs/x",
                                 "--llm-api-token", "REDACTED"]
