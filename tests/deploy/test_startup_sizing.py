"""Startup probes sized from the model cache's measured throughput (`cluster check`,
services/orchestrator/startup_sizing.py), and the cache listing the preflight reports
(services/orchestrator/volume_check.py --hf-home) on a cache huggingface_hub itself filled from a
loopback Hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import K8S
from loopback_hub import LoopbackHub
from test_cluster import FakeKubectl

from videophy_bench.orchestrator import cluster
from videophy_bench.orchestrator.volume_check import REPORT_PREFIX, cached_models, main

GEN_REPO = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
GIB = 2**30


def test_the_preflight_lists_each_cached_snapshot_with_its_size(hub: LoopbackHub, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    files = {"model_index.json": b"{}", "transformer/diffusion_pytorch_model.safetensors": b"w" * 300_000,
             "vae/diffusion_pytorch_model.safetensors": b"v" * 50_000}
    old = hub.commit(GEN_REPO, files)
    new = hub.commit(GEN_REPO, {**files, "vae/diffusion_pytorch_model.safetensors": b"V" * 70_000})
    hf_home = tmp_path / "hf"
    for rev in (old, new):  # in a child: huggingface_hub reads HF_ENDPOINT when it is imported
        subprocess.run([sys.executable, "-c", "import sys, huggingface_hub as h; "
                        "h.snapshot_download(sys.argv[1], revision=sys.argv[2])", GEN_REPO, rev],
                       env={**os.environ, "HF_HOME": str(hf_home), "HF_ENDPOINT": hub.url}, check=True,
                       timeout=120)
    # Files the two snapshots share are one blob: each snapshot counts what it holds.
    assert cached_models(hf_home) == {f"{GEN_REPO}@{old}": 350_002, f"{GEN_REPO}@{new}": 370_002}
    volume = tmp_path / "cache"
    volume.mkdir()
    assert main(["--size-mib", "1", "--hf-home", str(hf_home), str(volume)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok") and "(cold)" in lines[0]
    report = json.loads(lines[-1].removeprefix(REPORT_PREFIX))
    assert report["models"] == cached_models(hf_home)
    (vol,) = report["volumes"]
    assert vol["ok"] and vol["path"] == str(volume) and vol["read_mb_s"] > 0 and vol["write_mb_s"] > 0


@pytest.fixture()
def done_fake(gpu_fake: FakeKubectl) -> FakeKubectl:
    """The gpu overlay, and a preflight Job that completed."""
    gpu_fake.job.write_text(json.dumps({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}))
    return gpu_fake


def _check(fake: FakeKubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mib_s: float,
           models: dict[str, int]) -> int:
    from videophy_bench.evaluator.catalog import judge_spec

    judge = judge_spec("videophy_2_auto")
    assert judge is not None
    report = {"volumes": [{"path": "/data", "ok": True, "message": "", "write_mb_s": 900, "read_mb_s": 900},
                          {"path": "/cache/hf", "ok": True, "message": "", "write_mb_s": mib_s,
                           "read_mb_s": mib_s * 3}],
              "models": {k.replace("JUDGE", judge.model_id): v for k, v in models.items()}}
    logs = tmp_path / "logs.txt"
    logs.write_text("ok    /data: ...\nok    /cache/hf: ...\n" + REPORT_PREFIX + json.dumps(report) + "\n")
    monkeypatch.setenv("FAKE_KUBECTL_LOGS", str(logs))
    return cluster.cluster_main(["check", "--overlay", str(K8S / "overlays" / "gpu"), "--no-deploy"])


def test_probes_that_cover_the_measured_load_pass(done_fake: FakeKubectl, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # 7 generators x 30 GiB at 100 MiB/s (the lower of write and read) x 1.5: 54 min of the 60 allowed.
    assert _check(done_fake, tmp_path, monkeypatch, 100, {f"{GEN_REPO}@{'a' * 40}": 30 * GIB,
                                                         f"JUDGE@{'b' * 40}": 15 * GIB}) == 0
    out = capsys.readouterr().out
    assert "sizing the startup probes at 100 MiB/s" in out
    gen = next(ln for ln in out.splitlines() if "deployment/generator " in ln)
    assert gen.startswith("ok") and "7 replica(s)" in gen and "54 min" in gen and "allows 60 min" in gen
    assert next(ln for ln in out.splitlines() if "deployment/evaluator " in ln).startswith("ok")
    assert REPORT_PREFIX not in out


def test_a_probe_too_short_for_the_storage_fails_naming_the_threshold(
        done_fake: FakeKubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Half the throughput: 7 x 30 GiB / 50 MiB/s x 1.5 = 6451 s > 3600 s; periodSeconds 10 -> 646.
    assert _check(done_fake, tmp_path, monkeypatch, 50, {f"{GEN_REPO}@{'a' * 40}": 30 * GIB}) == 1
    lines = capsys.readouterr().out.splitlines()
    gen = next(ln for ln in lines if "deployment/generator " in ln)
    assert gen.startswith("FAIL") and "failureThreshold to at least 646 (periodSeconds 10)" in gen
    judge = next(ln for ln in lines if "deployment/evaluator " in ln)
    assert judge.startswith("size") and "not in the model cache yet" in judge


def test_a_failed_preflight_prints_its_report_and_fails(done_fake: FakeKubectl, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    done_fake.job.write_text(json.dumps({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}))
    assert _check(done_fake, tmp_path, monkeypatch, 500, {}) == 1
