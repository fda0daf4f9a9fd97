"""`videophy-bench cluster`: rendering of the run Job and the exact kubectl argument lists.

There is no cluster here: a fake `kubectl` on PATH records every argv and stdin as JSON lines and
answers with canned output (the rendered overlay, a Job's status). That is enough to check what we send
to the API server; the manifests themselves are also validated with kubernetes-validate when present.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import K8S, K8S_VERSION, check_pod_security, find_tool, one, require_tool

from videophy_bench.orchestrator import cluster

FAKE = r'''#!{python}
import json, os, sys
argv = sys.argv[1:]
stdin = "" if sys.stdin.isatty() else sys.stdin.read()
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv, "stdin": stdin}}) + "\n")
# Global flags (--context X, --namespace X) come first.
rest = list(argv)
while rest and rest[0] in ("--context", "--namespace"):
    rest = rest[2:]
verb = rest[0] if rest else ""
if verb == "kustomize":
    sys.stdout.write(open(os.environ["FAKE_KUBECTL_RENDER"]).read())
elif verb == "get" and rest[1] == "pods":
    print(os.environ.get("FAKE_KUBECTL_PODS", ""))
elif verb == "get":
    path = os.environ.get("FAKE_KUBECTL_JOB", "")
    if not path or not os.path.exists(path):
        if "--ignore-not-found" in rest:
            sys.exit(0)
        sys.stderr.write('Error from server (NotFound): jobs.batch "x" not found\n')
        sys.exit(1)
    sys.stdout.write(open(path).read())
elif verb == "exec" and "videophy_bench.orchestrator.snapshot" in rest:
    container = rest[rest.index("-c") + 1]
    rc = int(os.environ.get("FAKE_KUBECTL_SNAPSHOT_RC_" + container.upper(), "0"))
    if rc:
        sys.stderr.write("live: the run directory is in use by an orchestrator (pid 7)\n")
    sys.exit(rc)
elif verb == "exec":
    print("prompts 600, generated 120, evaluated 100")
elif verb == "logs" and os.environ.get("FAKE_KUBECTL_LOGS"):
    sys.stdout.write(open(os.environ["FAKE_KUBECTL_LOGS"]).read())
elif verb == "cp":
    sys.exit(int(os.environ.get("FAKE_KUBECTL_CP_RC", "0")))
elif verb == "delete":
    sys.exit(int(os.environ.get("FAKE_KUBECTL_DELETE_RC", "0")))
'''


def base_render() -> str:
    """What `kubectl kustomize k8s/base` yields, without kubectl: the base files plus the namespace."""
    docs = []
    for f in sorted((K8S / "base").glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        for d in yaml.safe_load_all(f.read_text()):
            if d and d["kind"] != "Namespace":
                d["metadata"]["namespace"] = "videophy"
            if d:
                docs.append(d)
    return yaml.safe_dump_all(docs)


class FakeKubectl:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = tmp / "bin"
        self.dir.mkdir()
        exe = self.dir / "kubectl"
        exe.write_text(FAKE.format(python=sys.executable))
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
        self.log = tmp / "kubectl.jsonl"
        self.render = tmp / "rendered.yaml"
        self.render.write_text(base_render())
        self.job = tmp / "job.json"
        monkeypatch.setenv("PATH", f"{self.dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.delenv("VIDEOPHY_KUBECTL", raising=False)
        monkeypatch.setenv("FAKE_KUBECTL_LOG", str(self.log))
        monkeypatch.setenv("FAKE_KUBECTL_RENDER", str(self.render))
        monkeypatch.setenv("FAKE_KUBECTL_JOB", str(self.job))
        self.kubectl = str(exe)

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(ln) for ln in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls()]

    def set_job(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        self.job.write_text(json.dumps({**job, "status": status}))


@pytest.fixture()
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    return FakeKubectl(tmp_path, monkeypatch)


OVERLAY = str(K8S / "overlays" / "dev")


def created(fake: FakeKubectl, kind: str) -> dict[str, Any]:
    for c in fake.calls():
        if "create" in c["argv"] or "apply" in c["argv"]:
            for d in yaml.safe_load_all(c["stdin"]):
                if d and d["kind"] == kind:
                    return d
    raise AssertionError(f"no {kind} was sent")


def job_args(fake: FakeKubectl) -> list[str]:
    return created(fake, "Job")["spec"]["template"]["spec"]["containers"][0]["args"]


# --- run -----------------------------------------------------------------------------------------------


def test_run_applies_services_then_creates_the_job(fake: FakeKubectl) -> None:
    assert cluster.cluster_main(["run", "wan5b-a", "--prompts", "videophy2", "--overlay", OVERLAY]) == 0
    k = fake.kubectl
    assert fake.argvs() == [
        [k, "kustomize", OVERLAY],
        # A live run of that name is refused before anything is applied.
        [k, "--namespace", "videophy", "get", "job", "videophy-run-wan5b-a", "-o", "json",
         "--ignore-not-found"],
        [k, "apply", "-f", "-"],
        [k, "--namespace", "videophy", "create", "-f", "-"],
    ]
    applied = [d for d in yaml.safe_load_all(fake.calls()[2]["stdin"]) if d]
    assert {d["kind"] for d in applied} >= {"Deployment", "Service", "PersistentVolumeClaim", "NetworkPolicy"}
    assert not [d for d in applied if d["kind"] == "Job"], "applying the services must not start a run"
    job = created(fake, "Job")
    assert job["metadata"]["name"] == "videophy-run-wan5b-a"
    assert job["metadata"]["labels"]["videophy-bench/run"] == "wan5b-a"
    assert job["spec"]["template"]["metadata"]["labels"]["videophy-bench/run"] == "wan5b-a"
    assert job_args(fake) == [
        "run", "--prompts", "videophy2", "--out", "/data/runs/wan5b-a",
        "--generators", "dns:///generator:50051",
        "--evaluators", "dns:///evaluator:50052",
        "--startup-timeout-s", "3600", "--lock-wait-s", "300",
    ]
    env = {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not env & {"RUN_NAME", "PROMPTS", "GENERATORS", "EVALUATORS"}, "parameters are baked in"
    # The failure policy and the resume-on-retry behaviour come along from the template.
    template = yaml.safe_load(base_render_job())
    assert job["spec"]["podFailurePolicy"] == template["spec"]["podFailurePolicy"]
    # The template is suspended (applying the overlay starts no run); the run's copy is not.
    assert template["spec"]["suspend"] is True and job["spec"]["suspend"] is False


def base_render_job() -> str:
    return (K8S / "base" / "orchestrator-job.yaml").read_text()


def test_user_values_stay_single_literal_arguments(fake: FakeKubectl) -> None:
    nasty = "videophy2; rm -rf / `id` $(HOME) 'q'"
    rc = cluster.cluster_main(["run", "exp1", "--prompts", nasty, "--overlay", OVERLAY, "--no-deploy",
                               "--", "--seed", "$(SEED)", "--note", "a b"])
    assert rc == 0
    args = job_args(fake)
    # One list element each; `$(` escaped so the kubelet does not expand it.
    assert args[args.index("--prompts") + 1] == "videophy2; rm -rf / `id` $$(HOME) 'q'"
    assert args[-4:] == ["--seed", "$$(SEED)", "--note", "a b"]
    # get, create: --no-deploy applies nothing
    assert [a[1] for a in fake.argvs()] == ["kustomize", "--namespace", "--namespace"]


def test_no_shell_anywhere() -> None:
    src = Path(cluster.__file__).read_text()
    assert "shell=True" not in src and "os.system" not in src and "Popen(" not in src


@pytest.mark.parametrize("name", ["Bad", "-x", "x-", "a_b", "a/b", "../x", "", "x" * 60])
def test_bad_run_names_are_usage_errors(fake: FakeKubectl, name: str) -> None:
    assert cluster.cluster_main(["run", name, "--prompts", "p", "--overlay", OVERLAY]) == 2
    assert fake.argvs() == []


def test_prompts_file_is_shipped_in_a_configmap(fake: FakeKubectl, tmp_path: Path) -> None:
    csv = tmp_path / "mine.csv"
    csv.write_text("caption\na ball falls\n")
    assert cluster.cluster_main(["run", "mine", "--prompts-file", str(csv), "--overlay", OVERLAY]) == 0
    # The services also contain ConfigMaps: pick the run's by name.
    cms = [d for c in fake.calls() if c["argv"][-3:] == ["apply", "-f", "-"]
           for d in yaml.safe_load_all(c["stdin"])
           if d and d["metadata"]["name"] == "videophy-run-mine-prompts"]
    assert len(cms) == 1 and cms[0]["data"] == {"prompts.csv": "caption\na ball falls\n"}
    job = created(fake, "Job")
    pod = job["spec"]["template"]["spec"]
    assert {"name": "prompts", "configMap": {"name": "videophy-run-mine-prompts"}} in pod["volumes"]
    assert job_args(fake)[1:3] == ["--prompts", "/prompts/prompts.csv"]


def test_prompts_file_too_big(fake: FakeKubectl, tmp_path: Path) -> None:
    csv = tmp_path / "big.csv"
    csv.write_bytes(b"x" * (cluster.MAX_PROMPTS_BYTES + 1))
    assert cluster.cluster_main(["run", "big", "--prompts-file", str(csv), "--overlay", OVERLAY]) == 1
    assert not [a for a in fake.argvs() if "create" in a]


def test_replace_waits_for_the_old_pods_before_creating_the_new_job(fake: FakeKubectl) -> None:
    assert cluster.cluster_main(["--context", "lab", "run", "r1", "--prompts", "p", "--overlay", OVERLAY,
                                 "--no-deploy", "--replace"]) == 0
    k = fake.kubectl
    # Foreground cascading: the Job (which `--wait` waits for) goes only after every pod it owns.
    assert fake.argvs()[2:] == [
        [k, "--context", "lab", "--namespace", "videophy", "delete", "job", "videophy-run-r1",
         "--ignore-not-found", "--cascade=foreground", "--wait=true", "--timeout=600s"],
        [k, "--context", "lab", "--namespace", "videophy", "create", "-f", "-"],
    ]


def test_replace_whose_old_pods_do_not_go_creates_nothing(fake: FakeKubectl, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FAKE_KUBECTL_DELETE_RC", "1")
    assert cluster.cluster_main(["run", "r1", "--prompts", "p", "--overlay", OVERLAY, "--no-deploy",
                                 "--replace"]) == 1
    assert [a[3] for a in fake.argvs()[1:]] == ["get", "delete"], "no new Job while the old pod has the lock"
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "job/videophy-run-r1 still had pods after 600 s" in err
    assert "get pods -l batch.kubernetes.io/job-name=videophy-run-r1" in err


def test_run_refuses_a_live_run_name_before_applying_anything(fake: FakeKubectl,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    fake.set_job(_job("r1"), {"active": 1})
    assert cluster.cluster_main(["run", "r1", "--prompts", "p", "--overlay", OVERLAY]) == 2
    assert not [a for a in fake.argvs() if {"apply", "create"} & set(a)]
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--replace" in err


def test_run_refuses_a_namespace_other_than_the_overlays(fake: FakeKubectl) -> None:
    assert cluster.cluster_main(["-n", "other", "run", "r1", "--prompts", "p", "--overlay", OVERLAY]) == 2
    assert [a[1] for a in fake.argvs()] == ["kustomize"]


def test_dry_run_changes_nothing(fake: FakeKubectl, capsys: pytest.CaptureFixture[str]) -> None:
    assert cluster.cluster_main(["--dry-run", "run", "r1", "--prompts", "p", "--overlay", OVERLAY]) == 0
    assert [a[1] for a in fake.argvs()] == ["kustomize", "--namespace"]  # and a read-only `get job`
    assert fake.argvs()[1][3] == "get"
    out = capsys.readouterr().out
    assert "create -f -" in out and "name: videophy-run-r1" in out and "would create" in out


def test_follow_streams_the_log(fake: FakeKubectl) -> None:
    assert cluster.cluster_main(["run", "r1", "--prompts", "p", "--overlay", OVERLAY, "--no-deploy",
                                 "--follow"]) == 0
    assert fake.argvs()[-1] == [fake.kubectl, "--namespace", "videophy", "logs", "--follow",
                                "job/videophy-run-r1", "-c", "orchestrator", "--pod-running-timeout=30m"]


# --- status --------------------------------------------------------------------------------------------


def _job(name: str = "r1") -> dict[str, Any]:
    docs = cluster.load_documents(base_render())
    return cluster.make_run_job(docs, cluster.RunSpec(name=name, prompts="videophy2"))


def test_status_of_a_running_job_asks_the_ledger(fake: FakeKubectl,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    fake.set_job(_job(), {"active": 1})
    assert cluster.cluster_main(["status", "r1"]) == 0
    k = fake.kubectl
    assert fake.argvs() == [
        [k, "--namespace", "videophy", "get", "job", "videophy-run-r1", "-o", "json"],
        [k, "--namespace", "videophy", "exec", "job/videophy-run-r1", "-c", "orchestrator", "--",
         "videophy-bench", "status", "/data/runs/r1"],
    ]
    assert "running" in capsys.readouterr().out


def test_status_of_a_failed_job(fake: FakeKubectl, capsys: pytest.CaptureFixture[str]) -> None:
    fake.set_job(_job(), {"failed": 5, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "too many"}]})
    assert cluster.cluster_main(["status", "r1", "--logs", "5"]) == 1
    assert fake.argvs()[-1][-4:] == ["job/videophy-run-r1", "-c", "orchestrator", "--tail=5"]
    out = capsys.readouterr().out
    assert "failed" in out and "BackoffLimitExceeded" in out


def test_status_of_a_missing_job(fake: FakeKubectl) -> None:
    assert cluster.cluster_main(["status", "nope"]) == 1


# --- fetch ---------------------------------------------------------------------------------------------


def test_fetch_copies_through_a_read_only_pod(fake: FakeKubectl, tmp_path: Path) -> None:
    fake.set_job(_job(), {"succeeded": 1})
    dest = tmp_path / "results"
    # What a copy of a live ledger leaves behind: the snapshot replaces all of it.
    (dest / "r1").mkdir(parents=True)
    for torn in ("ledger.sqlite-wal", "ledger.sqlite-shm"):
        (dest / "r1" / torn).write_text("torn")
    assert cluster.cluster_main(["fetch", "r1", str(dest), "--path", "videos/wan2.2-ti2v-5b"]) == 0
    k, ns = fake.kubectl, ["--namespace", "videophy"]
    snap = ["python", "-m", "videophy_bench.orchestrator.snapshot", "/data/runs/r1", "/tmp/videophy-snapshot"]
    assert fake.argvs() == [
        [k, *ns, "get", "job", "videophy-run-r1", "-o", "json"],
        [k, *ns, "delete", "pod", "videophy-fetch-r1", "--ignore-not-found", "--wait=true"],
        [k, *ns, "create", "-f", "-"],
        [k, *ns, "wait", "--for=condition=Ready", "pod/videophy-fetch-r1", "--timeout=600s"],
        # No orchestrator holds the run: the fetch pod snapshots it itself, before anything is copied.
        [k, *ns, "exec", "videophy-fetch-r1", "-c", "fetch", "--", *snap],
        [k, *ns, "cp", "--retries=5", "-c", "fetch", "videophy-fetch-r1:/data/runs/r1", str(dest / "r1")],
        [k, *ns, "cp", "--retries=5", "-c", "fetch", "videophy-fetch-r1:/data/videos/wan2.2-ti2v-5b",
         str(dest / "videos" / "wan2.2-ti2v-5b")],
        [k, *ns, "cp", "--retries=5", "-c", "fetch", "videophy-fetch-r1:/tmp/videophy-snapshot/ledger.sqlite",
         str(dest / "r1" / "ledger.sqlite")],
        [k, *ns, "delete", "pod", "videophy-fetch-r1", "--ignore-not-found", "--wait=false"],
    ]
    assert sorted(p.name for p in (dest / "r1").iterdir()) == [], "the copied WAL and -shm are gone"
    pod = created(fake, "Pod")
    (c,) = pod["spec"]["containers"]
    assert {"name": "videos", "mountPath": "/data", "readOnly": True} in c["volumeMounts"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "fetch"  # no access to the services
    check_pod_security("Pod/fetch", pod["spec"])


def test_fetch_of_a_live_run_snapshots_beside_the_orchestrator(fake: FakeKubectl, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake.set_job(_job(), {"active": 1})
    monkeypatch.setenv("FAKE_KUBECTL_SNAPSHOT_RC_FETCH", "3")  # snapshot.LIVE: the run's lock is held
    monkeypatch.setenv("FAKE_KUBECTL_PODS", "videophy-run-r1-x7k2p")
    assert cluster.cluster_main(["fetch", "r1", str(tmp_path)]) == 0
    k, ns, pod = fake.kubectl, ["--namespace", "videophy"], "videophy-run-r1-x7k2p"
    snap = ["python", "-m", "videophy_bench.orchestrator.snapshot", "/data/runs/r1", "/tmp/videophy-snapshot"]
    assert fake.argvs()[4:] == [
        [k, *ns, "exec", "videophy-fetch-r1", "-c", "fetch", "--", *snap],
        [k, *ns, "get", "pods", "-l", "batch.kubernetes.io/job-name=videophy-run-r1",
         "--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}"],
        [k, *ns, "exec", pod, "-c", "orchestrator", "--", *snap, "--live"],
        [k, *ns, "cp", "--retries=5", "-c", "fetch", "videophy-fetch-r1:/data/runs/r1", str(tmp_path / "r1")],
        [k, *ns, "cp", "--retries=5", "-c", "orchestrator", f"{pod}:/tmp/videophy-snapshot/ledger.sqlite",
         str(tmp_path / "r1" / "ledger.sqlite")],
        [k, *ns, "exec", pod, "-c", "orchestrator", "--", "rm", "-rf", "/tmp/videophy-snapshot"],
        [k, *ns, "delete", "pod", "videophy-fetch-r1", "--ignore-not-found", "--wait=false"],
    ]


def test_fetch_of_a_locked_run_without_a_running_pod_copies_nothing(
        fake: FakeKubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake.set_job(_job(), {"active": 1})
    monkeypatch.setenv("FAKE_KUBECTL_SNAPSHOT_RC_FETCH", "3")
    assert cluster.cluster_main(["fetch", "r1", str(tmp_path)]) == 1
    assert not [a for a in fake.argvs() if "cp" in a]
    assert fake.argvs()[-1][-4:] == ["pod", "videophy-fetch-r1", "--ignore-not-found", "--wait=false"]
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no running pod" in err


def test_fetch_cleans_up_when_the_copy_fails(fake: FakeKubectl, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake.set_job(_job(), {"succeeded": 1})
    monkeypatch.setenv("FAKE_KUBECTL_CP_RC", "1")
    assert cluster.cluster_main(["fetch", "r1", str(tmp_path)]) == 1
    assert fake.argvs()[-1][-4:] == ["pod", "videophy-fetch-r1", "--ignore-not-found", "--wait=false"]


@pytest.mark.parametrize("bad", ["../etc", "/etc", "a/../../b", ""])
def test_fetch_refuses_paths_outside_the_storage_root(fake: FakeKubectl, tmp_path: Path, bad: str) -> None:
    assert cluster.cluster_main(["fetch", "r1", str(tmp_path), "--path", bad]) == 2
    assert fake.argvs() == []


def test_only_run_takes_passthrough_arguments(fake: FakeKubectl) -> None:
    assert cluster.cluster_main(["status", "r1", "--", "--x"]) == 2


def test_missing_kubectl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("VIDEOPHY_KUBECTL", raising=False)
    assert cluster.cluster_main(["status", "r1"]) == 1


# --- against the real renderer and validator -----------------------------------------------------------


@pytest.mark.parametrize("overlay", ["dev", "gpu", "gpu-autoscale", "gpu-two-judges"])
def test_rendered_run_job_and_fetch_pod_validate(overlay: str, tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    k = cluster.Kubectl(binary=kubectl)
    docs = cluster.render_overlay(k, K8S / "overlays" / overlay)
    job = cluster.make_run_job(docs, cluster.RunSpec(name="exp-7", prompts="videophy2", extra_args=("--x",)))
    pod = cluster.fetch_pod(job, "exp-7")
    check_pod_security("Job", job["spec"]["template"]["spec"])
    check_pod_security("Pod", pod["spec"])
    assert one([job], "Job", "videophy-run-exp-7")["metadata"]["namespace"] == "videophy"
    tool = find_tool("kubernetes-validate")
    if tool is None:
        require_tool("kubernetes-validate")
    out = tmp_path / "run.yaml"
    out.write_text(cluster.dump_documents([job, pod]))
    proc = subprocess.run([tool, "-k", K8S_VERSION, "--strict", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_job_bakes_judge_tasks_and_both_evaluator_pools() -> None:
    kubectl = require_tool("kubectl")
    docs = cluster.render_overlay(cluster.Kubectl(binary=kubectl), K8S / "overlays" / "gpu-two-judges")
    job = cluster.make_run_job(docs, cluster.RunSpec(name="two", prompts="videophy2"))
    (c,) = job["spec"]["template"]["spec"]["containers"]
    args = c["args"]
    assert args[args.index("--evaluators") + 1] == (
        "dns:///evaluator:50052,dns:///evaluator-videocon:50052")
    env = {e["name"]: e for e in c["env"]}
    # A literal, not a ConfigMap reference: a retried pod judges the same tasks.
    assert env["VIDEOPHY_JUDGE_TASKS"] == {"name": "VIDEOPHY_JUDGE_TASKS",
                                           "value": "sa,pc,videocon_sa,videocon_pc"}
    assert not [e for e in c["env"] if "valueFrom" in e and
                e["valueFrom"].get("configMapKeyRef", {}).get("name") == cluster.RUN_CONFIG]


def test_run_job_keeps_the_metrics_port() -> None:
    kubectl = require_tool("kubectl")
    docs = cluster.render_overlay(cluster.Kubectl(binary=kubectl), K8S / "overlays" / "gpu-autoscale")
    job = cluster.make_run_job(docs, cluster.RunSpec(name="scaled", prompts="videophy2"))
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in c["ports"]
    assert {"name": "VIDEOPHY_METRICS_PORT", "value": "9090"} in c["env"]
    # The PodMonitor selects the run's pods too (it matches name + component, not the Job's name).
    (pm,) = [d for d in docs if d["kind"] == "PodMonitor"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_missing_run_config_key_is_an_error() -> None:
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": cluster.RUN_CONFIG, "key": "NOPE"}}},
           {"name": "GENERATORS", "valueFrom": {"configMapKeyRef": {"name": cluster.RUN_CONFIG,
                                                                     "key": "GENERATORS"}}},
           {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": cluster.RUN_CONFIG, "key": "OPT",
                                                            "optional": True}}},
           {"name": "Z", "value": "$(kept)"}]
    with pytest.raises(cluster.ClusterError, match="NOPE"):
        cluster.bake_run_config_env(env, {"GENERATORS": "g"})
    assert cluster.bake_run_config_env(env[1:], {"GENERATORS": "g"}) == [{"name": "Z", "value": "$(kept)"}]
    assert cluster.bake_run_config_env(env[:1], {"NOPE": "$(a)"}) == [{"name": "X", "value": "$$(a)"}]


# --- placement: Kueue queue, priority and runtime classes; namespace and cluster domain -----------------


# Found before any test puts the fake kubectl first on PATH.
REAL_KUBECTL = find_tool("kubectl")


def real_render(overlay: Path) -> str:
    """`kubectl kustomize` by the real kubectl (the fake one answers with a canned rendering)."""
    if REAL_KUBECTL is None:
        require_tool("kubectl")  # skips, or fails in CI
    return subprocess.run([str(REAL_KUBECTL), "kustomize", str(overlay)], check=True, capture_output=True,
                          text=True).stdout


def _applied(fake: FakeKubectl) -> list[dict[str, Any]]:
    return [d for c in fake.calls() if "apply" in c["argv"] or "create" in c["argv"]
            for d in yaml.safe_load_all(c["stdin"]) if d]


def test_placement_flags_reach_the_job_and_the_services(fake: FakeKubectl) -> None:
    fake.render.write_text(real_render(K8S / "overlays" / "gpu"))
    assert cluster.cluster_main(["run", "q1", "--prompts", "videophy2", "--overlay", OVERLAY, "--no-pin",
                                 "--queue", "team-gpus", "--priority-class", "batch-low",
                                 "--runtime-class", "nvidia"]) == 0
    workloads = {d["metadata"]["name"]: d for d in _applied(fake) if d["kind"] in ("Deployment", "Job")}
    assert set(workloads) == {"generator", "evaluator", "videophy-run-q1"}
    for name, d in workloads.items():
        pod = d["spec"]["template"]
        assert d["metadata"]["labels"][cluster.QUEUE_LABEL] == "team-gpus", name
        assert pod["metadata"]["labels"][cluster.QUEUE_LABEL] == "team-gpus", name
        assert pod["spec"]["priorityClassName"] == "batch-low", name
    # The runtime class (the GPU container runtime) only where a GPU is requested.
    assert workloads["generator"]["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    assert workloads["evaluator"]["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    assert "runtimeClassName" not in workloads["videophy-run-q1"]["spec"]["template"]["spec"]


def test_without_placement_flags_nothing_is_added(fake: FakeKubectl) -> None:
    assert cluster.cluster_main(["run", "p1", "--prompts", "sample", "--overlay", OVERLAY]) == 0
    for d in _applied(fake):
        if d["kind"] in ("Deployment", "Job"):
            assert cluster.QUEUE_LABEL not in d["metadata"].get("labels", {})
            assert not {"priorityClassName", "runtimeClassName"} & set(d["spec"]["template"]["spec"])


@pytest.mark.parametrize("flag", ["--queue", "--priority-class", "--runtime-class"])
def test_bad_placement_names_are_refused_before_anything(fake: FakeKubectl, flag: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cluster.cluster_main(["run", "p1", "--prompts", "sample", "--overlay", OVERLAY, flag,
                                 "Team GPUs"]) == 2
    assert fake.argvs() == []
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _overlay_in(tmp_path: Path, namespace: str, base: str) -> Path:
    d = tmp_path / "overlay"
    d.mkdir()
    rel = os.path.relpath(K8S / "overlays" / base, d)
    (d / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": namespace, "resources": [rel]}))
    return d


def test_another_namespace_needs_only_the_overlays_namespace(fake: FakeKubectl, tmp_path: Path) -> None:
    """Nothing names the namespace or the cluster domain but the overlay: the addresses are short names
    the orchestrator pod's DNS search path completes, the RBAC and the objects follow the overlay."""
    overlay = _overlay_in(tmp_path, "team-a", "dev")
    text = real_render(overlay)
    fake.render.write_text(text)
    docs = cluster.load_documents(text)
    assert one(docs, "Namespace", "team-a")
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"team-a"}
    assert "cluster.local" not in text and ".videophy" not in text and "namespace: videophy" not in text
    assert cluster.cluster_main(["run", "r1", "--prompts", "sample", "--overlay", str(overlay)]) == 0
    job = created(fake, "Job")
    assert job["metadata"]["namespace"] == "team-a"
    args = job_args(fake)
    assert args[args.index("--generators") + 1] == "dns:///generator:50051"
    assert fake.argvs()[-1][:3] == [fake.kubectl, "--namespace", "team-a"]


def test_an_autoscaler_left_on_another_namespace_is_refused(fake: FakeKubectl, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    overlay = _overlay_in(tmp_path, "team-a", "gpu-autoscale")
    fake.render.write_text(real_render(overlay))
    assert cluster.cluster_main(["run", "r1", "--prompts", "sample", "--overlay", str(overlay),
                                 "--no-pin"]) == 2
    assert [a[1] for a in fake.argvs()] == ["kustomize"]
    assert "queries namespace 'videophy'" in capsys.readouterr().err
