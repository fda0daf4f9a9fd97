"""k8s/: every kustomization renders, passes kubernetes-validate --strict and checkov, and keeps our
own invariants (GPU limits, health probes, grace periods, security context, discovery addresses)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import (
    K8S,
    K8S_VERSION,
    KUSTOMIZATIONS,
    OVERLAYS,
    check_pod_security,
    container_env,
    find,
    one,
    pod_specs,
    render,
    render_docs,
    require_tool,
)

from videophy_bench.orchestrator import exit_codes
from videophy_bench.orchestrator.discovery import parse_targets

IDS = [str(p.relative_to(p.parents[1])) if p.parent.name == "overlays" else "base" for p in KUSTOMIZATIONS]
SERVICES = {"generator": 50051, "evaluator": 50052}
# Optional services (kustomize components) and their gRPC ports; checked like SERVICES where present.
OPTIONAL_SERVICES = {"evaluator-videocon": 50052}
# Plaintext grpc.health.v1 port (VIDEOPHY_HEALTH_BIND) the probes use, so they survive TLS on the gRPC port.
HEALTH_PORT = 8081
# Judge tasks each evaluator model serves (services/evaluator/judge.py presets).
MODEL_TASKS = {
    "tiny": {"sa", "pc", "rule", "videocon_sa", "videocon_pc"},
    "videophy_2_auto": {"sa", "pc", "rule"},
    "videocon_physics": {"videocon_sa", "videocon_pc"},
}
# Longest single item per model preset, in seconds on one H100 (docs/deploy.md). VIDEOPHY_GRACE_S must
# cover it, so a SIGTERM (scale-down, drain, rollout) never throws away a nearly finished video.
ITEM_BUDGET_S = {
    "tiny": 10,
    "wan2.2-ti2v-5b": 150,
    "wan2.2-t2v-a14b": 1000,
    "wan2.1-t2v-14b": 1200,
    "videophy_2_auto": 60,
    "videocon_physics": 60,
}
MIN_MODEL_LOAD_S = {"cpu": 5 * 60, "gpu": 20 * 60}


def test_every_overlay_is_covered() -> None:
    names = {p.name for p in OVERLAYS}
    assert {"dev", "gpu", "gpu-two-judges"} <= names


@pytest.fixture(scope="module", params=KUSTOMIZATIONS, ids=IDS)
def rendered(request: pytest.FixtureRequest) -> tuple[Path, list[dict[str, Any]]]:
    return request.param, render_docs(request.param)


def _deployment_parts(docs: list[dict[str, Any]], name: str) -> tuple[dict, dict, dict[str, str]]:
    dep = one(docs, "Deployment", name)
    spec = dep["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == _container_name(name)]
    return spec, container, container_env(container, docs)


def _services(docs: list[dict[str, Any]]) -> dict[str, int]:
    """The base's services plus every optional one this rendering deploys: name -> gRPC port."""
    deployed = {d["metadata"]["name"] for d in find(docs, "Deployment")}
    return {**SERVICES, **{n: p for n, p in OPTIONAL_SERVICES.items() if n in deployed}}


def _container_name(name: str) -> str:
    # The videocon evaluator runs the evaluator image in a container of the same name.
    return "evaluator" if name.startswith("evaluator") else name


def _uses_gpu(env: dict[str, str]) -> bool:
    return env.get("VIDEOPHY_DEVICE", "auto") != "cpu"


# --- rendering and external validators -----------------------------------------------------------------


def test_renders_namespaced_documents(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    assert docs
    for d in docs:
        assert d.get("apiVersion") and d.get("kind") and d["metadata"].get("name"), d
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "videophy", f"{d['kind']}/{d['metadata']['name']}"


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=IDS)
def test_kubernetes_validate_strict(path: Path, tmp_path: Path) -> None:
    tool = require_tool("kubernetes-validate")
    out = tmp_path / "rendered.yaml"
    out.write_text(render(path))
    proc = subprocess.run([tool, "-k", K8S_VERSION, "--strict", str(out)], capture_output=True, text=True)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert proc.returncode == 0, "\n".join(lines)
    assert not [ln for ln in lines if ln.startswith("ERROR")], "\n".join(lines)
    # Only CRDs we know about (KEDA, Prometheus operator) may go unchecked for lack of a schema.
    warned = [ln for ln in lines if ln.startswith("WARN")]
    assert all("ScaledObject" in ln or "PodMonitor" in ln for ln in warned), "\n".join(warned)


def test_kubernetes_validate_catches_typos(tmp_path: Path) -> None:
    """The gate is real: a misspelt probe field fails --strict."""
    tool = require_tool("kubernetes-validate")
    docs = render_docs(KUSTOMIZATIONS[0])
    dep = one(docs, "Deployment", "generator")
    probe = dep["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    probe["failureTreshold"] = probe.pop("failureThreshold")
    out = tmp_path / "typo.yaml"
    out.write_text(yaml.safe_dump(dep))
    proc = subprocess.run([tool, "-k", K8S_VERSION, "--strict", str(out)], capture_output=True, text=True)
    assert proc.returncode != 0


def test_checkov_passes_with_explained_skips(tmp_path: Path) -> None:
    tool = require_tool("checkov")
    for path, ident in zip(KUSTOMIZATIONS, IDS, strict=True):
        (tmp_path / f"{ident.replace('/', '-')}.yaml").write_text(render(path))
    proc = subprocess.run(
        # No --quiet: it drops the skipped checks from the JSON, and their reasons are checked below.
        [tool, "-d", str(tmp_path), "--framework", "kubernetes", "--output", "json", "--compact",
         "--skip-download"],
        capture_output=True, text=True,
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert not failed, "\n".join(f"{c['check_id']} {c['resource']} {c['file_path']}" for c in failed)
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    assert sum(r["summary"]["resource_count"] for r in reports) > 10, "checkov saw no manifests"
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    assert skipped, "expected the documented image-digest skips"
    for c in skipped:
        reason = (c.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) > 20, f"{c['check_id']} on {c['resource']} is skipped without a reason"
    assert proc.returncode == 0, proc.stderr[-2000:]


# --- our invariants ------------------------------------------------------------------------------------


def test_gpu_containers_have_gpu_limits(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    for name in _services(docs):
        spec, c, env = _deployment_parts(docs, name)
        res = c.get("resources", {})
        limit = res.get("limits", {}).get("nvidia.com/gpu")
        request = res.get("requests", {}).get("nvidia.com/gpu", limit)
        if _uses_gpu(env):
            device = env.get("VIDEOPHY_DEVICE")
            assert limit is not None and int(limit) >= 1, f"{name} runs on {device} without a GPU"
            assert request == limit, f"{name}: GPU requests must equal limits (no overcommit)"
            tolerated = {t.get("key") for t in spec.get("tolerations", [])}
            assert "nvidia.com/gpu" in tolerated, f"{name} cannot land on tainted GPU nodes"
        else:
            assert limit is None and request is None, f"{name} runs on the CPU but holds a GPU"
    for kind_name, spec in pod_specs(docs):
        for c in spec["containers"]:
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= res.get("requests", {}).keys(), kind_name
            assert "memory" in res.get("limits", {}), kind_name
            # The generator encodes MP4s on the CPU: a CFS quota would throttle it, so it has none.
            throttled = "cpu" in res.get("limits", {})
            assert throttled == (kind_name != "Deployment/generator"), f"{kind_name}: CPU limit {throttled}"


def test_probes_use_the_grpc_health_service(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    for name, port in _services(docs).items():
        _, c, env = _deployment_parts(docs, name)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["grpc"] == port
        assert env["VIDEOPHY_BIND"] == f"0.0.0.0:{port}", f"{name}: the Service targets the gRPC port"
        # Probes knock on the plaintext health-only port, which keeps answering when TLS is turned on
        # for the gRPC port (VIDEOPHY_TLS_CERT/KEY): the kubelet's gRPC probes cannot speak TLS.
        assert ports["health"] == HEALTH_PORT != port, f"{name}: a separate health port"
        assert env.get("VIDEOPHY_HEALTH_BIND") == f"0.0.0.0:{HEALTH_PORT}", \
            f"{name}: the health server must listen (on the pod IP) where the probes knock"
        for probe_name in ("startupProbe", "readinessProbe"):
            probe = c[probe_name]
            assert probe["grpc"] == {"port": HEALTH_PORT, "service": "readiness"}, f"{name}.{probe_name}"
        live = c["livenessProbe"]["grpc"]
        # "" = the overall status, which stays SERVING through the drain.
        assert live["port"] == HEALTH_PORT and live.get("service", "") == "", f"{name}.livenessProbe"
        startup = c["startupProbe"]
        budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        need = MIN_MODEL_LOAD_S["gpu" if _uses_gpu(env) else "cpu"]
        assert budget >= need, f"{name}: startup allows {budget}s, a model load needs {need}s"


def test_grace_period_outlasts_one_item(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    for name in _services(docs):
        spec, _, env = _deployment_parts(docs, name)
        model = env["VIDEOPHY_MODEL"]
        assert model in ITEM_BUDGET_S, f"{name}: add {model!r} to ITEM_BUDGET_S"
        grace = float(env["VIDEOPHY_GRACE_S"])
        # A generator also holds `--queue-depth` admitted requests (default 1); a drain finishes them too.
        items = 1 + int(env.get("VIDEOPHY_QUEUE_DEPTH", "1")) if name == "generator" else 1
        need = items * ITEM_BUDGET_S[model]
        assert grace >= need, f"{name}: grace {grace}s < {items} {model} item(s) ({need}s)"
        # SIGKILL must come after the server's own drain deadline, with room for endpoint propagation.
        assert spec["terminationGracePeriodSeconds"] >= grace + 30, name


def test_security_context_everywhere(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    for kind_name, spec in pod_specs(docs):
        check_pod_security(kind_name, spec)


def test_headless_services_match_discovery(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    config = one(docs, "ConfigMap", "run-config")["data"]
    services = _services(docs)
    expected_targets: dict[str, set[str]] = {"GENERATORS": set(), "EVALUATORS": set()}
    for name, port in services.items():
        svc = one(docs, "Service", name)
        dep = one(docs, "Deployment", name)
        assert svc["spec"]["clusterIP"] == "None", f"{name}: discovery needs one DNS record per pod"
        assert not svc["spec"].get("publishNotReadyAddresses"), f"{name}: only ready (loaded) replicas"
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items(), f"{name}: Service selects no pods"
        (sport,) = svc["spec"]["ports"]
        assert sport["port"] == port and sport.get("appProtocol") == "grpc"
        # A short name: the orchestrator pod's DNS search path completes it in its own namespace and
        # cluster domain, so neither is written into the manifests.
        key = "GENERATORS" if name == "generator" else "EVALUATORS"
        expected_targets[key].add(f"dns:///{name}:{port}")
    for key, expected in expected_targets.items():
        # The orchestrator's syntax: a comma list of targets (services/orchestrator/discovery.py).
        targets = parse_targets(config[key])
        assert all(tg.dns for tg in targets), f"{key}: headless Services are dns:/// targets"
        listed = {f"dns:///{tg.host}:{tg.port}" for tg in targets}
        assert len(listed) == len(targets), f"{key} lists a target twice"
        assert listed == expected, f"run-config {key} must list exactly the Services {sorted(expected)}"


def test_orchestrator_job_resumes_safely(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    job = one(docs, "Job", "videophy-run")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert 1 <= spec["backoffLimit"] <= 10
    rules = spec["podFailurePolicy"]["rules"]
    disruption = {"type": "DisruptionTarget", "status": "True"}
    assert any(r["action"] == "Ignore" and disruption in r.get("onPodConditions", []) for r in rules)
    assert spec.get("parallelism", 1) == 1 and spec.get("completions", 1) == 1, "one writer per ledger"
    # Applying the manifests starts no run: the template waits suspended; `cluster run` makes copies.
    assert spec.get("suspend") is True
    # Exactly the final exit codes fail the Job at once; the rest (1, 75 locked, 130/143 signals) retry.
    final = [r for r in rules if r["action"] == "FailJob"]
    assert [(r["onExitCodes"]["operator"], sorted(r["onExitCodes"]["values"])) for r in final] == [
        ("In", sorted(exit_codes.FINAL))]
    assert final[0]["onExitCodes"]["containerName"] == "orchestrator"
    assert {exit_codes.LOCKED, exit_codes.SIGTERM, exit_codes.SIGINT, exit_codes.FAILED}.isdisjoint(
        exit_codes.FINAL)
    (c,) = pod["containers"]
    args = c["args"]
    assert args[0] == "run"
    out = args[args.index("--out") + 1]
    assert out.startswith("/data/runs/"), "the ledger must live on the shared volume"
    assert args[args.index("--generators") + 1] == "$(GENERATORS)"
    assert args[args.index("--evaluators") + 1] == "$(EVALUATORS)"
    # The orchestrator must wait for replicas at least as long as their startup probe lets them load.
    gen = _deployment_parts(docs, "generator")[1]["startupProbe"]
    load_s = gen.get("periodSeconds", 10) * gen.get("failureThreshold", 3)
    assert float(args[args.index("--startup-timeout-s") + 1]) >= load_s
    # A retried pod outwaits its predecessor's drain (SIGTERM .. SIGKILL) before exiting 75.
    assert float(args[args.index("--lock-wait-s") + 1]) >= 2 * pod["terminationGracePeriodSeconds"]
    # Everyone mounts the same claim at the storage root.
    claims = set()
    for kind_name, pspec in pod_specs(docs):
        vols = {v["name"]: v for v in pspec.get("volumes", [])}
        for ctr in pspec["containers"]:
            env = container_env(ctr, docs)
            root = env.get("VIDEOPHY_STORAGE_ROOT")
            data = [m for m in ctr.get("volumeMounts", []) if m["mountPath"] == root]
            assert data, f"{kind_name}: storage root is not a mounted volume"
            claims.add(vols[data[0]["name"]]["persistentVolumeClaim"]["claimName"])
    assert claims == {"videos"}


def test_service_configs_are_content_addressed(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    """Every ConfigMap a Deployment reads through envFrom carries kustomize's content hash in its name,
    so changing a value changes the pod template and rolls the pods (envFrom is read only at start)."""
    _, docs = rendered
    for dep in find(docs, "Deployment"):
        for c in dep["spec"]["template"]["spec"]["containers"]:
            for src in c.get("envFrom", []):
                name = src["configMapRef"]["name"]
                one(docs, "ConfigMap", name)
                assert re.fullmatch(r".+-config-[a-z0-9]{10}", name), f"{dep['metadata']['name']}: {name}"
    # The orchestrator's run-config keeps its name: the Job's configMapKeyRefs and `cluster run` use it.
    one(docs, "ConfigMap", "run-config")


def test_a_service_config_change_rolls_only_that_service(tmp_path: Path) -> None:
    """An overlay of the gpu overlay that changes one generator setting: the generator pod template
    changes (a rollout), the evaluator's does not."""
    kubectl = require_tool("kubectl")
    gpu = next(p for p in OVERLAYS if p.name == "gpu")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(gpu, mine)],
        "configMapGenerator": [{"name": "generator-config", "behavior": "merge",
                                "literals": ["VIDEOPHY_LOG_LEVEL=DEBUG"]}],
    }))
    proc = subprocess.run([kubectl, "kustomize", str(mine)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    after = [d for d in yaml.safe_load_all(proc.stdout) if d]
    before = render_docs(gpu)

    def template(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
        return one(docs, "Deployment", name)["spec"]["template"]

    assert template(after, "generator") != template(before, "generator")
    assert _deployment_parts(after, "generator")[2]["VIDEOPHY_LOG_LEVEL"] == "DEBUG"
    assert template(after, "evaluator") == template(before, "evaluator")


def test_volumes_are_shared(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    path, docs = rendered
    for name in ("videos", "model-cache"):
        pvc = one(docs, "PersistentVolumeClaim", name)
        modes = pvc["spec"]["accessModes"]
        if path.name == "dev":
            assert modes in (["ReadWriteOnce"], ["ReadWriteMany"])  # single-node dev clusters
        else:
            assert modes == ["ReadWriteMany"], f"{name}: replicas on several nodes share it"


def test_disruption_budgets(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    for name in _services(docs):
        pdb = one(docs, "PodDisruptionBudget", name)
        labels = one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdb["spec"].get("maxUnavailable") == 1


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    sel = policy["spec"]["podSelector"].get("matchLabels", {})
    return sel.items() <= labels.items()


def test_only_the_orchestrator_reaches_the_services(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    policies = find(docs, "NetworkPolicy")
    assert any(p["spec"]["podSelector"] == {} and "Ingress" in p["spec"]["policyTypes"]
               and not p["spec"].get("ingress") for p in policies), "no default-deny ingress policy"
    orch = one(docs, "Job", "videophy-run")["spec"]["template"]["metadata"]["labels"]
    for name, port in _services(docs).items():
        labels = one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        selecting = [p for p in policies if _selects(p, labels) and p["spec"]["podSelector"]]
        assert selecting, f"no policy admits the orchestrator to {name}"
        for p in selecting:
            for rule in p["spec"].get("ingress", []):
                assert [pt["port"] for pt in rule["ports"]] == [port]
                for peer in rule["from"]:
                    where = p["metadata"]["name"]
                    assert set(peer) == {"podSelector"}, f"{where}: only pods of this namespace"
                    assert peer["podSelector"]["matchLabels"].items() <= orch.items()


# GPU Feature Discovery labels of real nodes (nvidia.com/gpu.product, .memory in MiB, .family).
GPU_NODES = {
    "H100 SXM": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559",
                 "nvidia.com/gpu.family": "hopper"},
    "H100 PCIe": {"nvidia.com/gpu.product": "NVIDIA-H100-PCIe", "nvidia.com/gpu.memory": "81559",
                  "nvidia.com/gpu.family": "hopper"},
    "H100 NVL": {"nvidia.com/gpu.product": "NVIDIA-H100-NVL", "nvidia.com/gpu.memory": "95830",
                 "nvidia.com/gpu.family": "hopper"},
    "H200": {"nvidia.com/gpu.product": "NVIDIA-H200", "nvidia.com/gpu.memory": "143771",
             "nvidia.com/gpu.family": "hopper"},
    "L40S": {"nvidia.com/gpu.product": "NVIDIA-L40S", "nvidia.com/gpu.memory": "46068",
             "nvidia.com/gpu.family": "ada-lovelace"},
    "T4": {"nvidia.com/gpu.product": "Tesla-T4", "nvidia.com/gpu.memory": "15360",
           "nvidia.com/gpu.family": "turing"},
}


def _matches(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    value = labels.get(expr["key"])
    op = expr["operator"]
    if op == "In":
        return value in expr["values"]
    if op == "Gt":
        return value is not None and int(value) > int(expr["values"][0])
    if op == "Exists":
        return value is not None
    raise AssertionError(f"add operator {op} to _matches")


def _schedulable(spec: dict[str, Any], labels: dict[str, str]) -> bool:
    """Required node affinity: any term whose expressions all match (Kubernetes' semantics)."""
    node = spec.get("affinity", {}).get("nodeAffinity", {})
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return True
    return any(all(_matches(e, labels) for e in t["matchExpressions"]) for t in required["nodeSelectorTerms"])


def test_gpu_overlay_selects_80gb_gpus_of_every_form_factor() -> None:
    docs = render_docs(next(p for p in OVERLAYS if p.name == "gpu"))
    gen = one(docs, "Deployment", "generator")
    assert gen["spec"]["replicas"] > 1
    spec = gen["spec"]["template"]["spec"]
    fits = {name for name, labels in GPU_NODES.items() if _schedulable(spec, labels)}
    assert fits == {"H100 SXM", "H100 PCIe", "H100 NVL", "H200"}
    evaluator = one(docs, "Deployment", "evaluator")["spec"]["template"]["spec"]
    judges = {n for n, labels in GPU_NODES.items() if _schedulable(evaluator, labels)}
    assert judges == GPU_NODES.keys() - {"T4"}
    preferred = spec["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    exprs = [e for p in preferred for e in p["preference"]["matchExpressions"]]
    assert any(_matches(e, GPU_NODES["H100 NVL"]) for e in exprs), "Hopper (FlashAttention-3) is preferred"


def test_clusters_without_gpu_labels_select_by_gpu_requests_alone(tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(K8S / "overlays" / "gpu-two-judges", mine)],
        "components": [os.path.relpath(K8S / "components" / "without-gpu-labels", mine)],
    }))
    proc = subprocess.run([kubectl, "kustomize", str(mine)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    for name in ("generator", "evaluator", "evaluator-videocon"):
        spec, c, _ = _deployment_parts(docs, name)
        assert _schedulable(spec, {}), f"{name} needs node labels"
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1, f"{name} must still ask for a GPU"


def test_dev_overlay_is_cpu_only() -> None:
    docs = render_docs(next(p for p in OVERLAYS if p.name == "dev"))
    for name in SERVICES:
        _, _, env = _deployment_parts(docs, name)
        assert env["VIDEOPHY_DEVICE"] == "cpu" and env["VIDEOPHY_MODEL"] == "tiny"
        assert one(docs, "Deployment", name)["spec"]["replicas"] == 1
    assert "nvidia.com" not in render(next(p for p in OVERLAYS if p.name == "dev")).replace(
        "nvidia.com/gpu.product", "")


def test_autoscaler_owns_generator_replicas() -> None:
    path = next((p for p in OVERLAYS if p.name == "gpu-autoscale"), None)
    if path is None:
        pytest.skip("no gpu-autoscale overlay")
    docs = render_docs(path)
    (so,) = find(docs, "ScaledObject")
    assert so["spec"]["scaleTargetRef"]["name"] == "generator"
    assert "replicas" not in one(docs, "Deployment", "generator")["spec"], "KEDA owns spec.replicas"
    assert "evaluator" not in {s["spec"]["scaleTargetRef"]["name"] for s in find(docs, "ScaledObject")}
    # A failing Prometheus holds some generators instead of dropping the metric (and the run) to zero.
    fallback = so["spec"]["fallback"]
    assert fallback["failureThreshold"] >= 1
    assert so["spec"].get("minReplicaCount", 0) < fallback["replicas"] <= so["spec"]["maxReplicaCount"]
    for trig in so["spec"]["triggers"]:
        assert trig.get("metricType", "AverageValue") == "AverageValue", "KEDA's fallback needs AverageValue"
        assert "last_over_time(" in trig["metadata"]["query"], "a missed scrape must not read as no work"


def test_judge_tasks_are_served_by_the_listed_evaluators(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    """Every task the run asks for is served by a model some listed evaluator pool runs."""
    _, docs = rendered
    (c,) = one(docs, "Job", "videophy-run")["spec"]["template"]["spec"]["containers"]
    env = container_env(c, docs)
    # Unset: the orchestrator's default, sa,pc (+ rule when the prompt set has rules): AutoEval's tasks.
    tasks = set((env.get("VIDEOPHY_JUDGE_TASKS") or "sa,pc").split(","))
    listed = {tg.host.split(".")[0] for tg in parse_targets(env["EVALUATORS"])}
    served: set[str] = set()
    for name in listed:
        model = _deployment_parts(docs, name)[2]["VIDEOPHY_MODEL"]
        assert model in MODEL_TASKS, f"{name}: add {model!r} to MODEL_TASKS"
        served |= MODEL_TASKS[model]
    assert tasks <= served, f"no listed evaluator serves {sorted(tasks - served)}"


def test_two_judges_overlay() -> None:
    docs = render_docs(next(p for p in OVERLAYS if p.name == "gpu-two-judges"))
    models = {n: _deployment_parts(docs, n)[2]["VIDEOPHY_MODEL"] for n in ("evaluator", "evaluator-videocon")}
    assert models == {"evaluator": "videophy_2_auto", "evaluator-videocon": "videocon_physics"}
    # One image for both pools, copied from the (pinned) evaluator Deployment.
    images = {_deployment_parts(docs, n)[1]["image"] for n in models}
    assert len(images) == 1 and images.pop().startswith("registry.example.com/"), "evaluator images differ"
    # Each pool's Service selects its own pods only: a mixed pool would route tasks to the wrong model.
    for name in models:
        sel = one(docs, "Service", name)["spec"]["selector"]
        for other in models:
            labels = one(docs, "Deployment", other)["spec"]["template"]["metadata"]["labels"]
            assert (sel.items() <= labels.items()) == (name == other), f"Service {name} selects {other}"
    (c,) = one(docs, "Job", "videophy-run")["spec"]["template"]["spec"]["containers"]
    env = container_env(c, docs)
    assert env["VIDEOPHY_JUDGE_TASKS"] == "sa,pc,videocon_sa,videocon_pc"
    assert one(docs, "Deployment", "evaluator-videocon")["spec"]["replicas"] >= 1
    spec = one(docs, "Deployment", "evaluator-videocon")["spec"]["template"]["spec"]
    required = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    terms = required["nodeSelectorTerms"]
    assert "nvidia.com/gpu.memory" in {e["key"] for t in terms for e in t["matchExpressions"]}


def test_metrics_port_matches_the_scrape_config(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    """Where a PodMonitor scrapes the orchestrator, the Job serves /metrics on that named port."""
    _, docs = rendered
    monitors = find(docs, "PodMonitor")
    job = one(docs, "Job", "videophy-run")
    pod = job["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    env = container_env(c, docs)
    if not monitors:
        assert "VIDEOPHY_METRICS_PORT" not in env, "metrics served but nothing scrapes them"
        return
    (pm,) = monitors
    assert pm["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert pm["metadata"]["namespace"] == job["metadata"]["namespace"]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for ep in pm["spec"]["podMetricsEndpoints"]:
        assert ep.get("path", "/metrics") == "/metrics"
        assert ports.get(ep["port"]) == int(env["VIDEOPHY_METRICS_PORT"]), "scraped port != --metrics-port"
    assert "--metrics-port" not in c.get("args", []), "one source of truth: VIDEOPHY_METRICS_PORT"
    port = int(env["VIDEOPHY_METRICS_PORT"])
    admitted = [p for p in find(docs, "NetworkPolicy") if _selects(p, pod["metadata"]["labels"])
                and p["spec"]["podSelector"]
                and any(pt["port"] == port for r in p["spec"].get("ingress", []) for pt in r["ports"])]
    assert admitted, "no NetworkPolicy admits Prometheus to the metrics port"
    for so in find(docs, "ScaledObject"):
        for trig in so["spec"]["triggers"]:
            query = trig["metadata"]["query"]
            ns = job["metadata"]["namespace"]
            assert "videophy_pending_items" in query and f'namespace="{ns}"' in query


def test_a_completed_run_releases_every_gpu_deployment(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    """The Job scales to zero (services/orchestrator/release.py) every GPU Deployment no autoscaler owns,
    with a Role allowing exactly that, through a token only the run Job mounts."""
    _, docs = rendered
    job = one(docs, "Job", "videophy-run")
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = container_env(c, docs)
    released = set(env["VIDEOPHY_RELEASE_DEPLOYMENTS"].split(","))
    keda_owned = {o["spec"]["scaleTargetRef"]["name"] for o in find(docs, "ScaledObject")}
    assert released == set(_services(docs)) - keda_owned
    by_name = {e["name"]: e for e in c["env"]}
    assert by_name["VIDEOPHY_JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['batch.kubernetes.io/job-name']")
    # RBAC: the Job's service account may patch the scale of those Deployments and list Jobs, nothing more.
    sa = pod["serviceAccountName"]
    assert one(docs, "ServiceAccount", sa)["automountServiceAccountToken"] is False
    (binding,) = [b for b in find(docs, "RoleBinding") if {"kind": "ServiceAccount", "name": sa} in
                  [{k: s[k] for k in ("kind", "name")} for s in b["subjects"]]]
    role = one(docs, "Role", binding["roleRef"]["name"])
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r for r in role["rules"]}
    assert set(rules) == {(("apps",), ("deployments/scale",)), (("batch",), ("jobs",))}
    scale = rules[("apps",), ("deployments/scale",)]
    assert released <= set(scale["resourceNames"]) and set(scale["verbs"]) == {"get", "patch"}
    assert rules[("batch",), ("jobs",)]["verbs"] == ["list"]
    # The token: projected into the orchestrator at the standard path, nowhere else.
    (vol,) = [v for v in pod["volumes"] if "projected" in v]
    token = {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}
    assert token in vol["projected"]["sources"]
    assert {"name": vol["name"], "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True} in c["volumeMounts"]
    for kind_name, spec in pod_specs(docs):
        if kind_name != "Job/videophy-run":
            assert "serviceAccountName" not in spec and not [v for v in spec.get("volumes", [])
                                                             if "projected" in v], kind_name


def test_gpu_services_watch_their_device_thread(rendered: tuple[Path, list[dict[str, Any]]]) -> None:
    """A wedged GPU fails liveness (services/common/watchdog.py): every GPU service sets a stall limit
    longer than one of its steps, and its liveness probe is the one the watchdog turns."""
    _, docs = rendered
    for name in _services(docs):
        _, c, env = _deployment_parts(docs, name)
        if not _uses_gpu(env):
            continue
        limit = float(env["VIDEOPHY_STALL_LIMIT_S"])
        # One denoising step (~20 s for A14B, minutes offloaded) or one judge batch: far below 5 min.
        assert limit >= 300, f"{name}: a slow but healthy step must not restart the pod"
        assert c["livenessProbe"]["grpc"]["service"] == ""
