"""`videophy-bench cluster run|status|fetch`: trigger, watch and collect a benchmark run on Kubernetes.

- `run NAME` renders a kustomize overlay (`kubectl kustomize`), applies the services (everything but the
  template Job), then creates `videophy-run-NAME`: a copy of the overlay's orchestrator Job whose
  arguments are baked in literally, so a retried pod resumes the same run from its ledger in
  /data/runs/NAME whatever happens to the `run-config` ConfigMap afterwards.
- `status NAME` prints the Job's state and, while it runs, `videophy-bench status` from inside its pod.
- `fetch NAME DEST` starts a short-lived pod that mounts the videos volume read-only, snapshots the
  run's SQLite ledger (services/orchestrator/snapshot.py: in that pod, or in the orchestrator's pod
  while the run is live), copies the run directory (and any extra storage paths) out with `kubectl
  cp`, puts the snapshot in place of the copied ledger, and deletes the pod.

Every kubectl call is an argument list (never a shell string), and user values reach the pod only as
single list elements, with `$(` escaped so Kubernetes does not expand it as a variable reference.

There is no cluster in CI: tests/deploy/test_cluster.py puts a fake `kubectl` on PATH that records its
argv and stdin and answers canned output, and checks the rendering and the exact argument lists.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from videophy_bench.common.arguments import Parser
from videophy_bench.orchestrator import pinning
from videophy_bench.orchestrator.volume_check import REPORT_PREFIX

JOB_PREFIX = "videophy-run-"
FETCH_PREFIX = "videophy-fetch-"
RUN_LABEL = "videophy-bench/run"
COMPONENT_LABEL = "app.kubernetes.io/component"
CONTAINER = "orchestrator"
RUN_CONFIG = "run-config"
DEFAULT_NAMESPACE = "videophy"
MOUNT_ROOT = "/data"  # where the videos volume (the storage root) is mounted in the orchestrator pod
PROMPTS_MOUNT = "/prompts"
# Kubernetes object names are DNS labels; the Job name adds JOB_PREFIX, and the run name is also
# the run directory's name, so the same rule keeps it a safe path component.
_RUN_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_RUN_NAME = 63 - max(len(JOB_PREFIX), len(FETCH_PREFIX))
# A ConfigMap holds at most 1 MiB; bigger prompt files belong on the videos volume.
MAX_PROMPTS_BYTES = 1000 * 1024
USAGE_ERROR = 2
# `run --replace`: the old pod drains within its terminationGracePeriodSeconds (60 s in the base).
REPLACE_TIMEOUT_S = 600
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"  # set by the Job controller on its pods


class ClusterError(RuntimeError):
    """A user-facing failure: printed without a traceback, exit code 1."""


class UsageError(ClusterError):
    """Bad arguments: exit code 2, like argparse."""


def _default_overlay() -> Path:
    return Path(__file__).resolve().parents[2] / "k8s" / "overlays" / "gpu"


# Kueue's LocalQueue label; on the run's Job and on the services' Deployments and their pods.
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Placement:
    """Where the cluster puts a run's pods: a Kueue queue, a PriorityClass, a RuntimeClass (GPU pods)."""

    queue: str | None = None
    priority_class: str | None = None
    runtime_class: str | None = None

    def __post_init__(self) -> None:
        for flag, value in (("--queue", self.queue), ("--priority-class", self.priority_class),
                            ("--runtime-class", self.runtime_class)):
            if value is not None and (len(value) > 63 or not _OBJECT_NAME.fullmatch(value)):
                raise UsageError(f"{flag} {value!r} is not a Kubernetes object name (lowercase letters, "
                                 "digits, '-' and '.', at most 63)")

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Set the placement on a Deployment or Job (in place; other kinds are returned as they are)."""
        if doc.get("kind") not in ("Deployment", "Job"):
            return doc
        pod = doc["spec"]["template"]
        if self.queue:
            # Kueue reads the workload's own label (Job, Deployment); the pods carry it too, for its
            # pod integration and for the prefetch Jobs made from the Deployments' pod templates.
            doc["metadata"].setdefault("labels", {})[QUEUE_LABEL] = self.queue
            pod.setdefault("metadata", {}).setdefault("labels", {})[QUEUE_LABEL] = self.queue
        if self.priority_class:
            pod["spec"]["priorityClassName"] = self.priority_class
        if self.runtime_class and _requests_gpu(pod["spec"]):
            pod["spec"]["runtimeClassName"] = self.runtime_class
        return doc


def _requests_gpu(pod_spec: dict[str, Any]) -> bool:
    return any(GPU_RESOURCE in (c.get("resources", {}).get("limits") or {}) for c in pod_spec["containers"])


def check_autoscaler_namespace(docs: Sequence[dict[str, Any]], namespace: str) -> None:
    """A KEDA query names the namespace whose pending work it reads; an overlay that moved the objects to
    another namespace must move the query too (docs/deploy.md), or the generators scale on nothing."""
    for d in docs:
        if d.get("kind") != "ScaledObject":
            continue
        for trigger in d["spec"].get("triggers", []):
            query = trigger.get("metadata", {}).get("query", "")
            found = re.findall(r'namespace="([^"]*)"', query)
            if found and set(found) != {namespace}:
                raise UsageError(f"ScaledObject/{d['metadata']['name']} queries namespace {found[0]!r} but "
                                 f"the overlay deploys to {namespace!r}; patch its query in the overlay")


def validate_run_name(name: str) -> str:
    if len(name) > MAX_RUN_NAME or not _RUN_NAME.fullmatch(name):
        raise UsageError(
            f"run name {name!r} must be 1-{MAX_RUN_NAME} characters of lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


def job_name(run: str) -> str:
    return JOB_PREFIX + run


def fetch_pod_name(run: str) -> str:
    return FETCH_PREFIX + run


def k8s_literal(value: str) -> str:
    """Escape `$(` so the kubelet passes the value through instead of expanding `$(VAR)`."""
    return value.replace("$(", "$$(")


def storage_path(rel: str) -> str:
    """An absolute path under the storage mount for a storage-root-relative path; refuses escapes."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts or "\x00" in rel:
        raise UsageError(f"{rel!r} must be a relative path under the storage root, without '..'")
    return str(PurePosixPath(MOUNT_ROOT) / p)


# --- kubectl -----------------------------------------------------------------------------------------


@dataclass
class Kubectl:
    """Builds and runs kubectl argument lists; `dry_run` prints them instead of running mutations."""

    binary: str = "kubectl"
    context: str | None = None
    namespace: str | None = None
    dry_run: bool = False
    out: Any = field(default_factory=lambda: sys.stdout)

    def argv(self, *args: str, namespaced: bool = True) -> list[str]:
        cmd = [self.binary]
        if self.context:
            cmd += ["--context", self.context]
        if namespaced and self.namespace:
            cmd += ["--namespace", self.namespace]
        return [*cmd, *args]

    def run(self, *args: str, stdin: str | None = None, capture: bool = False, check: bool = True,
            namespaced: bool = True, mutates: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = self.argv(*args, namespaced=namespaced)
        if self.dry_run and mutates:
            print("+ " + " ".join(cmd), file=self.out)
            if stdin:
                print(stdin, file=self.out)
            return subprocess.CompletedProcess(cmd, 0, "", "")
        try:
            proc = subprocess.run(cmd, input=stdin, text=True, check=False,
                                  stdout=subprocess.PIPE if capture else None,
                                  stderr=subprocess.PIPE if capture else None)
        except FileNotFoundError as e:
            raise ClusterError(f"kubectl not found ({self.binary!r}); install it or pass --kubectl") from e
        if check and proc.returncode != 0:
            detail = (proc.stderr or "").strip() if capture else ""
            raise ClusterError(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}"
                               + (f": {detail}" if detail else ""))
        return proc


def find_kubectl(explicit: str | None) -> str:
    candidate = explicit or os.environ.get("VIDEOPHY_KUBECTL") or "kubectl"
    found = shutil.which(candidate)
    if not found:
        raise ClusterError(f"kubectl not found ({candidate!r}); install it or pass --kubectl PATH")
    return found


# --- rendering ---------------------------------------------------------------------------------------


def load_documents(text: str) -> list[dict[str, Any]]:
    import yaml  # the orchestrator extra ships PyYAML

    return [d for d in yaml.safe_load_all(text) if d]


def dump_documents(docs: Sequence[dict[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump_all(list(docs), sort_keys=False)


def render_overlay(kubectl: Kubectl, overlay: Path) -> list[dict[str, Any]]:
    if not (overlay / "kustomization.yaml").is_file():
        raise ClusterError(f"{overlay} is not a kustomize directory (no kustomization.yaml)")
    proc = kubectl.run("kustomize", str(overlay), capture=True, namespaced=False, mutates=False)
    return load_documents(proc.stdout)


def _is_template_job(doc: dict[str, Any]) -> bool:
    labels = doc.get("metadata", {}).get("labels", {})
    return doc.get("kind") == "Job" and labels.get(COMPONENT_LABEL) == CONTAINER


def template_job(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    jobs = [d for d in docs if _is_template_job(d)]
    if len(jobs) != 1:
        raise ClusterError(f"expected one orchestrator Job in the rendered overlay, found {len(jobs)}")
    return jobs[0]


def run_config(docs: Sequence[dict[str, Any]]) -> dict[str, str]:
    for d in docs:
        if d.get("kind") == "ConfigMap" and d.get("metadata", {}).get("name") == RUN_CONFIG:
            return dict(d.get("data") or {})
    raise ClusterError(f"the rendered overlay has no ConfigMap {RUN_CONFIG!r}")


def service_documents(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everything the overlay deploys except the template Job (which would start the default run)."""
    return [d for d in docs if not _is_template_job(d)]


def _container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    for c in pod_spec.get("containers", []):
        if c.get("name") == name:
            return c
    raise ClusterError(f"no container {name!r} in the orchestrator Job")


@dataclass(frozen=True)
class RunSpec:
    name: str
    prompts: str | None = None  # a set name or a path on the cluster (e.g. /data/prompts/x.csv)
    prompts_file: Path | None = None  # a local CSV shipped in a ConfigMap
    generators: str | None = None  # default: the overlay's run-config
    evaluators: str | None = None
    extra_args: tuple[str, ...] = ()


def prompts_configmap(spec: RunSpec, namespace: str) -> dict[str, Any] | None:
    if spec.prompts_file is None:
        return None
    data = spec.prompts_file.read_bytes()
    if len(data) > MAX_PROMPTS_BYTES:
        raise ClusterError(f"{spec.prompts_file} is {len(data)} bytes; a ConfigMap holds ~1 MiB. Copy it "
                           "onto the videos volume and pass --prompts /data/<path> instead")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ClusterError(f"{spec.prompts_file} is not UTF-8 text") from e
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{job_name(spec.name)}-prompts", "namespace": namespace,
                     "labels": {RUN_LABEL: spec.name, COMPONENT_LABEL: CONTAINER}},
        "data": {"prompts.csv": text},
    }


def make_run_job(docs: Sequence[dict[str, Any]], spec: RunSpec) -> dict[str, Any]:
    """The overlay's orchestrator Job, renamed for `spec.name`, with literal arguments."""
    validate_run_name(spec.name)
    if (spec.prompts is None) == (spec.prompts_file is None):
        raise UsageError("give exactly one of --prompts and --prompts-file")
    config = run_config(docs)
    job = copy.deepcopy(template_job(docs))
    meta = job["metadata"]
    meta["name"] = job_name(spec.name)
    meta.setdefault("labels", {})[RUN_LABEL] = spec.name
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation"):
        meta.pop(key, None)
    job.pop("status", None)
    job["spec"]["suspend"] = False  # the overlay's template is suspended: applying it starts nothing
    pod = job["spec"]["template"]
    pod.setdefault("metadata", {}).setdefault("labels", {})[RUN_LABEL] = spec.name
    pod_spec = pod["spec"]
    container = _container(pod_spec, CONTAINER)

    prompts = spec.prompts
    if spec.prompts_file is not None:
        prompts = f"{PROMPTS_MOUNT}/prompts.csv"
        pod_spec.setdefault("volumes", []).append(
            {"name": "prompts", "configMap": {"name": f"{job_name(spec.name)}-prompts"}})
        container.setdefault("volumeMounts", []).append(
            {"name": "prompts", "mountPath": PROMPTS_MOUNT, "readOnly": True})
    assert prompts is not None
    generators = spec.generators or config.get("GENERATORS")
    evaluators = spec.evaluators or config.get("EVALUATORS")
    if not generators or not evaluators:
        raise ClusterError(f"no generator/evaluator addresses: set them in {RUN_CONFIG} or pass them")
    # Keep the template's other arguments (e.g. --startup-timeout-s); replace the run's parameters.
    args = list(container.get("args", ["run"]))
    values = {"--prompts": k8s_literal(prompts), "--out": f"{MOUNT_ROOT}/runs/{spec.name}",
              "--generators": k8s_literal(generators), "--evaluators": k8s_literal(evaluators)}
    for flag, value in values.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    container["args"] = [*args, *(k8s_literal(a) for a in spec.extra_args)]
    # The run-config values are baked in; keep the pod independent of later ConfigMap edits.
    container["env"] = bake_run_config_env(container.get("env", []), config)
    return job


# run-config keys the Job passes as `$(VAR)` arguments, which make_run_job replaces with literals.
ARG_KEYS = frozenset({"RUN_NAME", "PROMPTS", "GENERATORS", "EVALUATORS"})


def bake_run_config_env(env: Sequence[dict[str, Any]], config: dict[str, str]) -> list[dict[str, Any]]:
    """Drop the env entries feeding the baked arguments; turn other run-config refs into literals.

    E.g. the videocon-evaluator component's VIDEOPHY_JUDGE_TASKS (run-config key JUDGE_TASKS) becomes
    a plain value, so a retried pod judges the same tasks whatever happens to the ConfigMap.
    """
    out = []
    for e in env:
        ref = e.get("valueFrom", {}).get("configMapKeyRef", {})
        if ref.get("name") != RUN_CONFIG:
            out.append(e)
        elif e.get("name") in ARG_KEYS:
            continue
        elif ref.get("key") in config:
            out.append({"name": e["name"], "value": k8s_literal(config[ref["key"]])})
        elif not ref.get("optional"):
            raise ClusterError(f"{RUN_CONFIG} has no key {ref.get('key')!r} (needed for {e.get('name')})")
    return out


def fetch_pod(job: dict[str, Any], run: str, image: str | None = None) -> dict[str, Any]:
    """A pod that mounts the run's videos volume read-only and idles until `kubectl cp` is done."""
    pod_spec = job["spec"]["template"]["spec"]
    container = _container(pod_spec, CONTAINER)
    mounts = [m for m in container.get("volumeMounts", []) if m.get("mountPath") == MOUNT_ROOT]
    if not mounts:
        raise ClusterError(f"the orchestrator Job mounts nothing at {MOUNT_ROOT}")
    volumes = [v for v in pod_spec.get("volumes", []) if v.get("name") == mounts[0]["name"]]
    tmp = {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": fetch_pod_name(run),
            "namespace": job["metadata"].get("namespace", DEFAULT_NAMESPACE),
            # Not the orchestrator's label: the NetworkPolicies give this pod no access to the services.
            "labels": {"app.kubernetes.io/name": "videophy-bench", COMPONENT_LABEL: "fetch", RUN_LABEL: run},
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": 6 * 3600,  # reaped even if the client dies mid-copy
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": copy.deepcopy(pod_spec.get("securityContext", {})),
            "containers": [{
                "name": "fetch",
                "image": image or container["image"],
                "imagePullPolicy": container.get("imagePullPolicy", "IfNotPresent"),
                "command": ["sleep", "21600"],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "1", "memory": "512Mi"}},
                "securityContext": copy.deepcopy(container.get("securityContext", {})),
                "volumeMounts": [{"name": mounts[0]["name"], "mountPath": MOUNT_ROOT, "readOnly": True},
                                 {"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [*copy.deepcopy(volumes), tmp],
        },
    }


# --- commands ----------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, kubectl: Kubectl) -> int:
    spec = RunSpec(
        name=validate_run_name(args.name),
        prompts=args.prompts,
        prompts_file=Path(args.prompts_file) if args.prompts_file else None,
        generators=args.generators,
        evaluators=args.evaluators,
        extra_args=tuple(args.orchestrator_args),
    )
    placement = Placement(args.queue, args.priority_class, args.runtime_class)
    docs = render_overlay(kubectl, Path(args.overlay))
    namespace = template_job(docs)["metadata"].get("namespace") or DEFAULT_NAMESPACE
    if args.namespace and args.namespace != namespace:
        # The services, the volumes and the DNS addresses all live in the overlay's namespace.
        raise UsageError(f"the overlay deploys to namespace {namespace!r}; change it in the overlay")
    kubectl.namespace = namespace
    check_autoscaler_namespace(docs, namespace)
    existing = find_job(kubectl, spec.name)
    if existing is not None and not args.replace:
        # Checked before anything is applied: the services (and their pins) stay as the live run has them.
        raise UsageError(f"job/{job_name(spec.name)} already exists; --replace resumes that run in a new Job")
    pins: list[pinning.ModelPin] = []
    if args.deploy and args.pin:
        # A resumed run keeps the revisions it started with, whatever the Hub's main says now.
        before = pinning.recorded(existing)
        try:
            pins = pinning.resolve_pins(docs, before)
        except pinning.PinError as e:
            raise ClusterError(str(e)) from None
        docs = pinning.pin_deployments(docs, pins)
    docs = [placement.apply(copy.deepcopy(d)) for d in docs]
    job = make_run_job(docs, spec)
    job["metadata"]["namespace"] = namespace
    pinning.record(job, pins)
    cm = prompts_configmap(spec, kubectl.namespace)
    if args.deploy:
        deploy_services(kubectl, service_documents(docs), pins, args.prefetch_timeout_s)
    if args.replace:
        replace_job(kubectl, spec.name)
    if cm is not None:
        kubectl.run("apply", "-f", "-", stdin=dump_documents([cm]))
    # `create`, not `apply`: reusing a live run's name is an error, not a silent no-op.
    kubectl.run("create", "-f", "-", stdin=dump_documents([job]))
    verb = "would create" if kubectl.dry_run else "created"
    print(f"{verb} job/{job_name(spec.name)} in namespace {kubectl.namespace}; run directory "
          f"{MOUNT_ROOT}/runs/{spec.name} on the videos volume", file=kubectl.out)
    if args.follow:
        return follow_logs(kubectl, spec.name)
    return 0


def deploy_services(kubectl: Kubectl, docs: Sequence[dict[str, Any]], pins: Sequence[pinning.ModelPin],
                    timeout_s: int) -> None:
    """Apply the services; pinned Deployments only after their prefetch Jobs filled the weights cache
    (their replicas run with the Hub offline and would crash-loop on an empty cache)."""
    pinned = {p.deployment for p in pins}
    held = [d for d in docs if d.get("kind") == "Deployment" and d["metadata"]["name"] in pinned]
    first = [d for d in docs if d not in held]
    kubectl.run("apply", "-f", "-", stdin=dump_documents(first), namespaced=False)
    if not pins:
        return
    deployments = {d["metadata"]["name"]: d for d in held}
    jobs = [pinning.prefetch_job(deployments[p.deployment], p) for p in pins]
    kubectl.run("apply", "-f", "-", stdin=dump_documents(jobs))
    for pin, pj in zip(pins, jobs, strict=True):
        name = pj["metadata"]["name"]
        print(f"prefetching {pin.repo}@{pin.revision} for deployment/{pin.deployment} (job/{name})",
              file=kubectl.out)
        try:
            kubectl.run("wait", "--for=condition=complete", f"job/{name}", f"--timeout={timeout_s}s")
        except ClusterError:
            raise ClusterError(f"job/{name} did not fill the weights cache within {timeout_s} s; see "
                               f"`kubectl -n {kubectl.namespace} logs job/{name}` (deployment/"
                               f"{pin.deployment} was not changed)") from None
    kubectl.run("apply", "-f", "-", stdin=dump_documents(held), namespaced=False)


def find_job(kubectl: Kubectl, run: str) -> dict[str, Any] | None:
    proc = kubectl.run("get", "job", job_name(run), "-o", "json", "--ignore-not-found", capture=True,
                       mutates=False)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def replace_job(kubectl: Kubectl, run: str) -> None:
    """Delete the run's Job and wait until its pods are gone, so the new Job's first pod does not meet
    the old one still holding the run directory (a held lock only delays it: --lock-wait-s, exit 75).

    Foreground cascading keeps the Job until every pod it owns is deleted (after its grace period),
    and `--wait` waits for the Job itself."""
    name = job_name(run)
    try:
        kubectl.run("delete", "job", name, "--ignore-not-found", "--cascade=foreground", "--wait=true",
                    f"--timeout={REPLACE_TIMEOUT_S}s")
    except ClusterError as e:
        raise ClusterError(
            f"job/{name} still had pods after {REPLACE_TIMEOUT_S} s (a lost node?): {e}. Check `kubectl -n "
            f"{kubectl.namespace} get pods -l {JOB_NAME_LABEL}={name}`, then run --replace again") from None


def follow_logs(kubectl: Kubectl, run: str) -> int:
    proc = kubectl.run("logs", "--follow", f"job/{job_name(run)}", "-c", CONTAINER,
                       "--pod-running-timeout=30m", check=False, mutates=False)
    return proc.returncode


def job_state(job: dict[str, Any]) -> str:
    status = job.get("status", {})
    for cond in status.get("conditions", []) or []:
        if cond.get("status") == "True" and cond.get("type") in {"Complete", "Failed", "Suspended"}:
            return {"Complete": "succeeded", "Failed": "failed", "Suspended": "suspended"}[cond["type"]]
    if status.get("active"):
        return "running"
    return "pending"


def get_job(kubectl: Kubectl, run: str) -> dict[str, Any]:
    proc = kubectl.run("get", "job", job_name(run), "-o", "json", capture=True, check=False, mutates=False)
    if proc.returncode != 0:
        raise ClusterError(f"job/{job_name(run)} not found in namespace {kubectl.namespace}: "
                           f"{(proc.stderr or '').strip()}")
    return json.loads(proc.stdout)


def cmd_status(args: argparse.Namespace, kubectl: Kubectl) -> int:
    run = validate_run_name(args.name)
    job = get_job(kubectl, run)
    status = job.get("status", {})
    state = job_state(job)
    print(f"job/{job_name(run)}: {state} (active {status.get('active', 0)}, succeeded "
          f"{status.get('succeeded', 0)}, failed {status.get('failed', 0)})", file=kubectl.out)
    for cond in status.get("conditions", []) or []:
        if cond.get("status") == "True":
            print(f"  {cond.get('type')}: {cond.get('reason', '')} {cond.get('message', '')}".rstrip(),
                  file=kubectl.out)
    if state == "running":
        # Progress from the ledger, read by the orchestrator's own CLI inside its pod.
        kubectl.run("exec", f"job/{job_name(run)}", "-c", CONTAINER, "--", "videophy-bench", "status",
                    f"{MOUNT_ROOT}/runs/{run}", check=False, mutates=False)
    elif args.logs:
        kubectl.run("logs", f"job/{job_name(run)}", "-c", CONTAINER, f"--tail={args.logs}", check=False,
                    mutates=False)
    if args.follow:
        return follow_logs(kubectl, run)
    return 1 if state == "failed" else 0


SNAPSHOT_DIR = "/tmp/videophy-snapshot"  # in the pod that takes the ledger snapshot (an emptyDir)


def running_pod(kubectl: Kubectl, run: str) -> str:
    """The name of the run's running orchestrator pod; ClusterError if there is none."""
    proc = kubectl.run("get", "pods", "-l", f"{JOB_NAME_LABEL}={job_name(run)}",
                       "--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}",
                       capture=True, mutates=False)
    names = proc.stdout.split()
    if not names:
        raise ClusterError(f"the run directory of {run} is locked by an orchestrator, but "
                           f"job/{job_name(run)} has no running pod (it is stopping?); run fetch again "
                           "in a minute")
    return names[0]


def snapshot_ledger(kubectl: Kubectl, run: str, fetch_pod_name: str) -> tuple[str, str]:
    """Take a consistent snapshot of the run's ledger (services/orchestrator/snapshot.py); returns the pod
    and container holding it at SNAPSHOT_DIR/ledger.sqlite.

    First in the fetch pod, which refuses (exit LIVE) while an orchestrator holds the run; then in that
    orchestrator's own pod, beside the writer, where SQLite's WAL index is coherent."""
    from videophy_bench.orchestrator.snapshot import LIVE

    run_dir = f"{MOUNT_ROOT}/runs/{run}"
    module = ["python", "-m", "videophy_bench.orchestrator.snapshot"]
    proc = kubectl.run("exec", fetch_pod_name, "-c", "fetch", "--", *module, run_dir, SNAPSHOT_DIR,
                       capture=True, check=False)
    if proc.returncode == 0:
        return fetch_pod_name, "fetch"
    if proc.returncode != LIVE:
        raise ClusterError(f"ledger snapshot failed: {(proc.stderr or '').strip() or proc.returncode}")
    pod = running_pod(kubectl, run)
    proc = kubectl.run("exec", pod, "-c", CONTAINER, "--", *module, run_dir, SNAPSHOT_DIR, "--live",
                       capture=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"ledger snapshot in pod/{pod} failed: "
                           f"{(proc.stderr or '').strip() or proc.returncode}")
    return pod, CONTAINER


def cmd_fetch(args: argparse.Namespace, kubectl: Kubectl) -> int:
    """Snapshot the ledger first, then copy the run directory (videos written before their ledger rows
    are then all there), then put the snapshot in place of the copied, possibly torn, ledger files."""
    from videophy_bench.orchestrator.ledger import LEDGER_NAME
    from videophy_bench.orchestrator.snapshot import WAL_SUFFIX

    run = validate_run_name(args.name)
    extra = [storage_path(p) for p in args.path]
    dest = Path(args.dest)
    pod = fetch_pod(get_job(kubectl, run), run, image=args.image)
    name = pod["metadata"]["name"]
    kubectl.run("delete", "pod", name, "--ignore-not-found", "--wait=true")
    kubectl.run("create", "-f", "-", stdin=dump_documents([pod]))
    try:
        kubectl.run("wait", "--for=condition=Ready", f"pod/{name}", f"--timeout={args.timeout_s}s")
        snap_pod, container = ("", "") if kubectl.dry_run else snapshot_ledger(kubectl, run, name)
        sources = [(f"{MOUNT_ROOT}/runs/{run}", dest / run)]
        sources += [(src, dest / PurePosixPath(src).relative_to(MOUNT_ROOT)) for src in extra]
        for src, local in sources:
            if not args.dry_run:
                local.parent.mkdir(parents=True, exist_ok=True)
            kubectl.run("cp", "--retries=5", "-c", "fetch", f"{name}:{src}", str(local))
            print(f"fetched {src} -> {local}", file=kubectl.out)
        if snap_pod:
            ledger = dest / run / LEDGER_NAME
            for suffix in (WAL_SUFFIX, "-shm", "-journal"):  # the copied WAL belongs to the torn copy
                ledger.with_name(LEDGER_NAME + suffix).unlink(missing_ok=True)
            kubectl.run("cp", "--retries=5", "-c", container, f"{snap_pod}:{SNAPSHOT_DIR}/{LEDGER_NAME}",
                        str(ledger))
            print(f"ledger: a consistent snapshot taken in pod/{snap_pod} -> {ledger}", file=kubectl.out)
            if snap_pod != name:  # the orchestrator pod keeps no copy in its /tmp
                kubectl.run("exec", snap_pod, "-c", container, "--", "rm", "-rf", SNAPSHOT_DIR, check=False)
    finally:
        kubectl.run("delete", "pod", name, "--ignore-not-found", "--wait=false", check=False)
    return 0


PREFLIGHT_JOB = "videophy-preflight"


def preflight_job(template: dict[str, Any], size_mib: int) -> dict[str, Any]:
    """A Job that runs videophy_bench.orchestrator.volume_check on every PVC the orchestrator mounts
    (the videos
    volume and the model cache), with the run's image, UID/GID and security context."""
    pod_spec = copy.deepcopy(template["spec"]["template"]["spec"])
    container = _container(pod_spec, CONTAINER)
    claims = {v["name"] for v in pod_spec.get("volumes", []) if "persistentVolumeClaim" in v}
    paths = [m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in claims]
    if not paths:
        raise ClusterError("the orchestrator Job mounts no PersistentVolumeClaim to check")
    container.pop("args", None)
    container.pop("ports", None)
    # No API access: drop the run's service account token (for the end-of-run release).
    pod_spec.pop("serviceAccountName", None)
    api = {v["name"] for v in pod_spec.get("volumes", []) if "projected" in v}
    pod_spec["volumes"] = [v for v in pod_spec.get("volumes", []) if v["name"] not in api]
    container["volumeMounts"] = [m for m in container.get("volumeMounts", []) if m["name"] not in api]
    hf_home = next((e["value"] for e in container.get("env", []) if e.get("name") == "HF_HOME"), None)
    container["command"] = ["python", "-m", "videophy_bench.orchestrator.volume_check",
                            "--size-mib", str(size_mib),
                            *(["--hf-home", hf_home] if hf_home in paths else []), *paths]
    pod_spec["containers"] = [container]
    pod_spec["restartPolicy"] = "Never"
    labels = {"app.kubernetes.io/name": "videophy-bench", COMPONENT_LABEL: "preflight"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": PREFLIGHT_JOB, "labels": labels,
                     "namespace": template["metadata"].get("namespace", DEFAULT_NAMESPACE),
                     "annotations": {k: v for k, v in template["metadata"].get("annotations", {}).items()
                                     if k.startswith("checkov.io/")}},
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 1800, "ttlSecondsAfterFinished": 3600,
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}},
    }


def cmd_check(args: argparse.Namespace, kubectl: Kubectl) -> int:
    """Run the volume preflight as the pods run, print its report and the startup probes' sizing against
    the model cache's throughput; exit 1 when a volume fails or a startup probe is too short."""
    docs = render_overlay(kubectl, Path(args.overlay))
    job = preflight_job(template_job(docs), args.size_mib)
    kubectl.namespace = job["metadata"]["namespace"]
    if args.deploy:
        kubectl.run("apply", "-f", "-", stdin=dump_documents(service_documents(docs)), namespaced=False)
    kubectl.run("delete", "job", PREFLIGHT_JOB, "--ignore-not-found", "--wait=true")
    kubectl.run("create", "-f", "-", stdin=dump_documents([job]))
    if kubectl.dry_run:
        return 0
    deadline = time.monotonic() + args.timeout_s
    state = "pending"
    while state not in ("succeeded", "failed"):
        if time.monotonic() > deadline:
            raise ClusterError(f"job/{PREFLIGHT_JOB} did not finish within {args.timeout_s} s (pending "
                               f"volumes or a full quota?); see `kubectl -n {kubectl.namespace} describe "
                               f"job/{PREFLIGHT_JOB}`")
        proc = kubectl.run("get", "job", PREFLIGHT_JOB, "-o", "json", capture=True, mutates=False)
        state = job_state(json.loads(proc.stdout))
        if state not in ("succeeded", "failed"):
            time.sleep(2)  # polling the API server, not waiting for an effect
    logs = kubectl.run("logs", f"job/{PREFLIGHT_JOB}", capture=True, check=False, mutates=False).stdout or ""
    report = None
    for line in logs.splitlines():
        if line.startswith(REPORT_PREFIX):
            report = json.loads(line[len(REPORT_PREFIX):])
        else:
            print(line, file=kubectl.out)
    if state != "succeeded" or report is None:
        return 1
    return 0 if print_probe_sizing(docs, report, kubectl.out) else 1


def print_probe_sizing(docs: Sequence[dict[str, Any]], report: dict[str, Any], out: Any) -> bool:
    """The startup probes against the model cache's measured throughput; False if one is too short."""
    from videophy_bench.orchestrator.startup_sizing import size_startup_probes

    hf_home = "/cache/hf"
    for c in template_job(docs)["spec"]["template"]["spec"]["containers"]:
        hf_home = next((e["value"] for e in c.get("env", []) if e.get("name") == "HF_HOME"), hf_home)
    volume = next((v for v in report["volumes"] if v["path"].rstrip("/") == hf_home.rstrip("/")), None)
    if volume is None:
        return True
    mib_s = min(volume["write_mb_s"], volume["read_mb_s"])
    print(f"model cache: sizing the startup probes at {mib_s:.0f} MiB/s", file=out)
    sizings = size_startup_probes(docs, mib_s, report.get("models", {}))
    for sizing in sizings:
        print(sizing.line(), file=out)
    return all(s.ok for s in sizings)


# --- entry point -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="videophy-bench cluster",
                                description="Trigger, watch and collect benchmark runs on Kubernetes.")
    p.add_argument("--kubectl", default=None, help="kubectl binary [env VIDEOPHY_KUBECTL; default: on PATH]")
    p.add_argument("--context", default=None, help="kubeconfig context")
    p.add_argument("--namespace", "-n", default=None,
                   help=f"namespace (run: the overlay's; status/fetch: {DEFAULT_NAMESPACE})")
    p.add_argument("--dry-run", action="store_true",
                   help="print the manifests and the kubectl calls that change state, run none of those")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="create the run's Job from an overlay (and apply the services)",
                       epilog="Arguments after `--` are appended verbatim to the Job's `videophy-bench run`.",
                       allow_abbrev=False)
    r.add_argument("name", help=f"run name: the Job is {JOB_PREFIX}NAME, the run directory /data/runs/NAME")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompts", help="prompt-set name, or a CSV path on the videos volume (/data/...)")
    src.add_argument("--prompts-file", help="local CSV to ship with the Job in a ConfigMap (< 1 MiB)")
    r.add_argument("--overlay", default=str(_default_overlay()),
                   help="kustomize directory (default: %(default)s)")
    r.add_argument("--generators", default=None,
                   help="generator addresses (default: the overlay's run-config)")
    r.add_argument("--evaluators", default=None,
                   help="evaluator addresses (default: the overlay's run-config)")
    r.add_argument("--no-deploy", dest="deploy", action="store_false",
                   help="only create the Job; the services are already applied")
    r.add_argument("--replace", action="store_true",
                   help="delete an existing Job of that name and wait until its pods are gone, then start "
                   "the new one (its run resumes from the ledger)")
    r.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin the services' Hub models to one commit (each pod resolves its revision)")
    r.add_argument("--prefetch-timeout-s", type=int, default=4 * 3600,
                   help="how long the weights prefetch of a pinned model may take (default: %(default)s)")
    r.add_argument("--follow", action="store_true", help="stream the orchestrator's log until it ends")
    place = r.add_argument_group("placement (the run's Job and, unless --no-deploy, the services)")
    place.add_argument("--queue", default=None, metavar="LOCALQUEUE",
                       help=f"Kueue LocalQueue: label {QUEUE_LABEL} on the Job and the services")
    place.add_argument("--priority-class", default=None, metavar="NAME",
                       help="priorityClassName of every pod of the run")
    place.add_argument("--runtime-class", default=None, metavar="NAME",
                       help="runtimeClassName of the GPU pods (e.g. nvidia)")

    s = sub.add_parser("status", help="the Job's state and the run's progress", allow_abbrev=False)
    s.add_argument("name")
    s.add_argument("--follow", action="store_true", help="then stream the log until the run ends")
    s.add_argument("--logs", type=int, default=20, metavar="N",
                   help="log lines shown for a finished run (0: none)")

    c = sub.add_parser("check", help="preflight the shared volumes as the pods' UID (write, flock, "
                       "throughput)", allow_abbrev=False)
    c.add_argument("--overlay", default=str(_default_overlay()),
                   help="kustomize directory (default: %(default)s)")
    c.add_argument("--no-deploy", dest="deploy", action="store_false",
                   help="the volumes are already applied")
    c.add_argument("--size-mib", type=int, default=256, help="MiB written and read back per volume")
    c.add_argument("--timeout-s", type=int, default=900, help="how long to wait for the preflight Job")

    f = sub.add_parser(
        "fetch", help="copy the run directory (and more) from the videos volume", allow_abbrev=False)
    f.add_argument("name")
    f.add_argument("dest", help="local directory; the run lands in DEST/NAME")
    f.add_argument("--path", action="append", default=[],
                   help="also copy this storage-root-relative path (repeatable), e.g. videos/<model>")
    f.add_argument("--image", default=None, help="image for the copy pod (default: the orchestrator Job's)")
    f.add_argument("--timeout-s", type=int, default=600, help="how long to wait for the copy pod")
    return p


def cluster_main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` belongs to the orchestrator, not to us (argparse.REMAINDER would also
    # swallow our own options that follow the positional run name).
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a usage error already printed by argparse
        return e.code if isinstance(e.code, int) else USAGE_ERROR
    if passthrough and args.command != "run":
        print("videophy-bench cluster: error: only `run` takes arguments after --", file=sys.stderr)
        return USAGE_ERROR
    args.orchestrator_args = passthrough
    try:
        overlay_namespace = args.command in ("run", "check")  # the overlay's, once rendered
        kubectl = Kubectl(binary=find_kubectl(args.kubectl), context=args.context,
                          namespace=args.namespace or (None if overlay_namespace else DEFAULT_NAMESPACE),
                          dry_run=args.dry_run)
        handler = {"run": cmd_run, "status": cmd_status, "fetch": cmd_fetch, "check": cmd_check}[args.command]
        return handler(args, kubectl)
    except ClusterError as e:
        print(f"videophy-bench cluster: error: {e}", file=sys.stderr)
        return USAGE_ERROR if isinstance(e, UsageError) else 1


if __name__ == "__main__":
    sys.exit(cluster_main())
