"""Model revision pinning (`cluster run`, services/orchestrator/pinning.py) against a loopback Hub.

The Hub is tests/deploy/loopback_hub.py on 127.0.0.1; the cluster is the fake kubectl of test_cluster.py;
the prefetch is the real `python -m videophy_bench.common.weights` in a subprocess, filling a real HF cache
that the real generator resolution then reads with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import K8S, render_docs
from loopback_hub import LoopbackHub
from test_cluster import FakeKubectl

from videophy_bench.orchestrator import cluster, pinning

ROOT = Path(__file__).resolve().parents[2]
GPU = K8S / "overlays" / "gpu"
GEN_REPO = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
JUDGE_REPO = "videophysics/videophy_2_auto"


def _judge_repo() -> str:
    from videophy_bench.evaluator.catalog import judge_spec

    spec = judge_spec("videophy_2_auto")
    assert spec is not None
    return spec.model_id


def sent(fake: FakeKubectl, verb: str) -> list[list[dict[str, Any]]]:
    return [[d for d in yaml.safe_load_all(c["stdin"]) if d] for c in fake.calls() if verb in c["argv"]]


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def test_run_pins_each_model_prefetches_once_then_rolls_the_replicas(gpu_fake: FakeKubectl,
                                                                     hub: LoopbackHub) -> None:
    gen_sha = hub.commit(GEN_REPO, {"model_index.json": b"{}"})
    judge_sha = hub.commit(_judge_repo(), {"config.json": b"{}"})
    assert cluster.cluster_main(["run", "r1", "--prompts", "videophy2", "--overlay", str(GPU)]) == 0
    k = gpu_fake.kubectl
    verbs = [a[1:3] if a[1] != "--namespace" else a[3:5] for a in gpu_fake.argvs()]
    assert [v[0] for v in verbs] == ["kustomize", "get", "apply", "apply", "wait", "wait", "apply", "create"]
    first, prefetch, last = sent(gpu_fake, "apply")
    assert not [d for d in first if d["kind"] == "Deployment" and d["metadata"]["name"] in
                ("generator", "evaluator")], "replicas must not start before the cache is filled"
    assert {d["kind"] for d in first} >= {"PersistentVolumeClaim", "Service", "ConfigMap"}
    jobs = {j["metadata"]["name"]: j for j in prefetch}
    assert len(jobs) == 2 and all(n.startswith("videophy-prefetch-") for n in jobs)
    for j in prefetch:
        c = j["spec"]["template"]["spec"]["containers"][0]
        assert c["command"][:3] == ["python", "-m", "videophy_bench.common.weights"]
        assert "nvidia.com/gpu" not in c["resources"]["limits"], "a download needs no GPU"
        assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/cache/hf"}
    waited = [a for a in gpu_fake.argvs() if "wait" in a]
    assert {a[-2].removeprefix("job/") for a in waited} == set(jobs)
    pinned = {d["metadata"]["name"]: env_of(d) for d in last}
    assert pinned["generator"]["VIDEOPHY_REVISION"] == gen_sha
    assert pinned["evaluator"]["VIDEOPHY_REVISION"] == judge_sha
    assert all(e["HF_HUB_OFFLINE"] == "1" for e in pinned.values())
    job = sent(gpu_fake, "create")[0][0]
    record = {p.deployment: p.revision for p in pinning.recorded(job)}
    assert record == {"generator": gen_sha, "evaluator": judge_sha}
    assert next(a for a in gpu_fake.argvs() if "create" in a)[:2] == [k, "--namespace"]


def test_a_hub_commit_mid_run_does_not_move_a_replaced_run(gpu_fake: FakeKubectl, hub: LoopbackHub) -> None:
    gen_sha = hub.commit(GEN_REPO, {"model_index.json": b"{}"})
    hub.commit(_judge_repo(), {"config.json": b"{}"})
    assert cluster.cluster_main(["run", "r1", "--prompts", "videophy2", "--overlay", str(GPU)]) == 0
    gpu_fake.set_job(sent(gpu_fake, "create")[0][0], {"active": 1})
    new_sha = hub.commit(GEN_REPO, {"model_index.json": b'{"new": 1}'})  # someone pushes to main
    assert new_sha != gen_sha
    gpu_fake.log.unlink()
    argv = ["run", "r1", "--prompts", "videophy2", "--overlay", str(GPU), "--replace"]
    assert cluster.cluster_main(argv) == 0
    deployments = {d["metadata"]["name"]: env_of(d) for d in sent(gpu_fake, "apply")[-1]}
    assert deployments["generator"]["VIDEOPHY_REVISION"] == gen_sha
    job = sent(gpu_fake, "create")[0][0]
    assert {p.deployment: p.revision for p in pinning.recorded(job)}["generator"] == gen_sha


def test_a_revision_the_hub_does_not_have_fails_before_anything_is_applied(gpu_fake: FakeKubectl,
                                                                           hub: LoopbackHub,
                                                                           capsys: pytest.CaptureFixture[str],
                                                                           ) -> None:
    hub.commit(_judge_repo(), {"config.json": b"{}"})  # the generator repo is missing
    assert cluster.cluster_main(["run", "r1", "--prompts", "videophy2", "--overlay", str(GPU)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and GEN_REPO in err and "Traceback" not in err
    assert not [a for a in gpu_fake.argvs() if {"apply", "create"} & set(a)]


def test_a_commit_sha_is_kept_without_asking_the_hub(hub: LoopbackHub) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert pinning.resolve_revision(GEN_REPO, sha) == sha
    assert hub.requests == []


def test_no_pin_leaves_the_deployments_alone(gpu_fake: FakeKubectl) -> None:
    argv = ["run", "r1", "--prompts", "videophy2", "--overlay", str(GPU), "--no-pin"]
    assert cluster.cluster_main(argv) == 0
    applied = sent(gpu_fake, "apply")
    assert len(applied) == 1
    assert all("VIDEOPHY_REVISION" not in env_of(d) for d in applied[0] if d["kind"] == "Deployment")


def test_prefetch_job_validates(gpu_fake: FakeKubectl, hub: LoopbackHub, tmp_path: Path) -> None:
    from deploy_support import find_tool

    validator = find_tool("kubernetes-validate")
    if validator is None:
        pytest.skip("kubernetes-validate not installed")
    docs = render_docs(GPU)
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "generator")
    job = pinning.prefetch_job(deployment, pinning.ModelPin("generator", "generator", GEN_REPO, "a" * 40))
    f = tmp_path / "prefetch.yaml"
    f.write_text(yaml.safe_dump(job))
    proc = subprocess.run([validator, "--strict", "-k", "1.33.0", str(f)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the prefetch and the offline replica, real processes --------------------------------------------


def _weights(service: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    full = {**inherited, "PYTHONPATH": f"{ROOT}", **env}
    return subprocess.run([sys.executable, "-m", "videophy_bench.common.weights", service], env=full,
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_prefetch_fills_the_cache_once_and_replicas_load_the_pin_offline(hub: LoopbackHub,
                                                                        tmp_path: Path) -> None:
    from videophy_bench.generator.diffusers_backend import default_tiny_dir
    from videophy_bench.generator.tiny import build_tiny_pipeline

    repo = "videophy-test/tiny-wan"
    pinned = hub.commit_dir(repo, build_tiny_pipeline(default_tiny_dir("ti2v"), layout="ti2v"))
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.url, "VIDEOPHY_MODEL": "tiny",
           "VIDEOPHY_MODEL_PATH": repo, "VIDEOPHY_REVISION": pinned}
    first = _weights("generator", env)
    assert first.returncode == 0, (first.stderr, hub.requests)
    path, revision = first.stdout.split()
    assert revision == pinned and Path(path).name == pinned
    assert (Path(path) / "model_index.json").is_file()
    downloads = [r for r in hub.requests if r.startswith("GET") and "/resolve/" in r]
    assert downloads, "the prefetch downloaded the snapshot"
    hub.commit_dir(repo, tmp_path)  # main moves on; the pin does not
    hub.close()  # replicas run with the Hub offline: nothing may reach it
    offline = _weights("generator", {**env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.split() == [path, pinned]


def test_replica_with_an_unfilled_cache_fails_in_one_line(tmp_path: Path) -> None:
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "VIDEOPHY_MODEL": "tiny",
           "VIDEOPHY_MODEL_PATH": "videophy-test/tiny-wan", "VIDEOPHY_REVISION": "b" * 40}
    proc = _weights("generator", env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "videophy-test/tiny-wan" in lines[0] and "HF_HUB_OFFLINE" in lines[0]


def test_recorded_pins_round_trip() -> None:
    pins = [pinning.ModelPin("generator", "generator", GEN_REPO, "c" * 40)]
    job: dict[str, Any] = {"metadata": {}}
    pinning.record(job, pins)
    assert pinning.recorded(json.loads(json.dumps(job))) == pins
