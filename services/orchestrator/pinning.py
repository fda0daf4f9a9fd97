"""Pin every replica of a run to one model revision (`videophy-bench cluster run`).

Without a pin each generator/evaluator pod resolves the Hub's `main` when it starts, so a Hub commit
mid-run would leave new replicas on other weights (rejected by the orchestrator as a config mismatch)
and refuse the resume. `cluster run` therefore, once per run:

1. resolves each Deployment's Hub repo (its VIDEOPHY_MODEL / VIDEOPHY_MODEL_PATH) at VIDEOPHY_REVISION
   (default `main`) to a commit sha, or reuses the shas recorded on the Job it replaces;
2. fills the shared weights cache once per pin with a prefetch Job (the service's own image and
   configuration, `python -m videophy_bench.common.weights`, no GPU);
3. sets VIDEOPHY_REVISION=<sha> and HF_HUB_OFFLINE=1 on those Deployments, so every replica (also
   ones added later by KEDA or a reschedule) loads exactly that snapshot from the cache;
4. records the pins on the run's Job (annotation `videophy-bench/model-revisions`).

A local model directory (a path) is not pinned: the services record its config hash as the revision.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

PIN_ANNOTATION = "videophy-bench/model-revisions"
PREFETCH_PREFIX = "videophy-prefetch-"
COMPONENT_LABEL = "app.kubernetes.io/component"
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
# Which service's resolution a container runs (services/common/weights.py), by container name.
SERVICE_OF_CONTAINER = {"generator": "generator", "evaluator": "evaluator"}


class PinError(RuntimeError):
    """A model revision could not be resolved: one line, nothing applied yet."""


@dataclass(frozen=True)
class ModelPin:
    deployment: str
    container: str
    repo: str
    revision: str  # a full commit sha


def config_env(pod_container: dict[str, Any], docs: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The container's literal environment as the pod sees it: envFrom ConfigMaps, then env values."""
    maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d.get("kind") == "ConfigMap"}
    env: dict[str, str] = {}
    for src in pod_container.get("envFrom", []):
        env.update(maps.get(src.get("configMapRef", {}).get("name", ""), {}))
    for e in pod_container.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
    return env


def hub_repo(service: str, env: dict[str, str]) -> str | None:
    """The Hub repo a service configured by `env` downloads (None: built locally or a local directory)."""
    from videophy_bench.evaluator.catalog import is_hub_repo_id, judge_spec
    from videophy_bench.generator.presets import get_preset

    if service == "generator":
        path = env.get("VIDEOPHY_MODEL_PATH")
        if path:
            return path if is_hub_repo_id(path) else None
        return get_preset(env.get("VIDEOPHY_MODEL", "tiny")).model_id or None
    model = env.get("VIDEOPHY_MODEL", "tiny")
    spec = judge_spec(model)
    if spec is not None:
        return spec.model_id or None
    return model if is_hub_repo_id(model) else None


def resolve_revision(repo: str, revision: str | None) -> str:
    """The commit sha of `repo` at `revision` (a branch, tag or sha; default main). One Hub request."""
    if revision and COMMIT_SHA.fullmatch(revision):
        return revision
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        sha = HfApi().model_info(repo, revision=revision or "main").sha
    except HfHubHTTPError as exc:
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise PinError(f"cannot resolve {repo}@{revision or 'main'} on the Hub: {first}") from None
    except Exception as exc:  # transport failures (refused, DNS, TLS, timeout)
        raise PinError(f"cannot resolve {repo}@{revision or 'main'}: the Hub is unreachable "
                       f"({type(exc).__name__}: {exc}); set VIDEOPHY_REVISION to a commit sha in the "
                       "service's config, or pass --no-pin") from None
    if not sha or not COMMIT_SHA.fullmatch(sha):
        raise PinError(f"the Hub gave no commit sha for {repo}@{revision or 'main'}")
    return sha


def model_containers(docs: Sequence[dict[str, Any]]):
    for d in docs:
        if d.get("kind") != "Deployment":
            continue
        for c in d["spec"]["template"]["spec"].get("containers", []):
            if c.get("name") in SERVICE_OF_CONTAINER:
                yield d, c


def resolve_pins(docs: Sequence[dict[str, Any]], recorded: Sequence[ModelPin] = ()) -> list[ModelPin]:
    """One pin per Deployment that loads a Hub model; a pin recorded for the same repo is kept."""
    kept = {(p.deployment, p.repo): p.revision for p in recorded}
    pins = []
    for d, c in model_containers(docs):
        env = config_env(c, docs)
        repo = hub_repo(SERVICE_OF_CONTAINER[c["name"]], env)
        if repo is None:
            continue
        name = d["metadata"]["name"]
        revision = kept.get((name, repo)) or resolve_revision(repo, env.get("VIDEOPHY_REVISION"))
        pins.append(ModelPin(name, c["name"], repo, revision))
    return pins


def _set_env(container: dict[str, Any], name: str, value: str) -> None:
    env = [e for e in container.get("env", []) if e.get("name") != name]
    container["env"] = [*env, {"name": name, "value": value}]


def pin_deployments(docs: Sequence[dict[str, Any]], pins: Sequence[ModelPin]) -> list[dict[str, Any]]:
    """Copies of `docs` whose pinned Deployments load their sha from the cache, with the Hub offline."""
    by_name = {p.deployment: p for p in pins}
    out = []
    for d in docs:
        pin = by_name.get(d["metadata"]["name"]) if d.get("kind") == "Deployment" else None
        if pin is not None:
            d = copy.deepcopy(d)
            for c in d["spec"]["template"]["spec"]["containers"]:
                if c["name"] == pin.container:
                    _set_env(c, "VIDEOPHY_REVISION", pin.revision)
                    _set_env(c, "HF_HUB_OFFLINE", "1")
        out.append(d)
    return out


def prefetch_job(deployment: dict[str, Any], pin: ModelPin) -> dict[str, Any]:
    """A Job that downloads the pinned snapshot into the model cache with the replicas' own image,
    configuration and volumes (no GPU). Its name carries a hash of its pod template: the same pin and
    configuration reuse the finished Job, a new one gets a new Job."""
    pod = copy.deepcopy(deployment["spec"]["template"])
    spec = pod["spec"]
    container = next(c for c in spec["containers"] if c["name"] == pin.container)
    for key in ("startupProbe", "readinessProbe", "livenessProbe", "ports"):
        container.pop(key, None)
    container["name"] = "prefetch"
    container["command"] = ["python", "-m", "videophy_bench.common.weights",
                            SERVICE_OF_CONTAINER[pin.container]]
    container.pop("args", None)
    _set_env(container, "VIDEOPHY_REVISION", pin.revision)
    container["resources"] = {"requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "1Gi"},
                              "limits": {"cpu": "2", "memory": "8Gi", "ephemeral-storage": "5Gi"}}
    spec["containers"] = [container]
    spec["restartPolicy"] = "Never"
    spec["terminationGracePeriodSeconds"] = 30
    for key in ("affinity", "nodeSelector", "tolerations", "priorityClassName", "runtimeClassName"):
        spec.pop(key, None)  # no GPU: any node that mounts the volumes will do
    labels = {**pod.get("metadata", {}).get("labels", {}), COMPONENT_LABEL: "prefetch"}
    pod["metadata"] = {"labels": labels}
    digest = hashlib.sha256(json.dumps(pod, sort_keys=True).encode()).hexdigest()[:10]
    name = f"{PREFETCH_PREFIX}{deployment['metadata']['name']}-{digest}"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": deployment["metadata"].get("namespace"),
            "labels": labels,
            "annotations": {**{k: v for k, v in deployment["metadata"].get("annotations", {}).items()
                               if k.startswith("checkov.io/")},
                            PIN_ANNOTATION: json.dumps([asdict(pin)])},
        },
        "spec": {"backoffLimit": 3, "activeDeadlineSeconds": 4 * 3600, "ttlSecondsAfterFinished": 86400,
                 "template": pod},
    }


def record(job: dict[str, Any], pins: Sequence[ModelPin]) -> None:
    if pins:
        job["metadata"].setdefault("annotations", {})[PIN_ANNOTATION] = json.dumps(
            [asdict(p) for p in pins], sort_keys=True)


def recorded(job: dict[str, Any] | None) -> list[ModelPin]:
    """The pins a run's Job was created with ([] for none, or an older Job without the annotation)."""
    text = ((job or {}).get("metadata", {}).get("annotations") or {}).get(PIN_ANNOTATION)
    if not text:
        return []
    try:
        return [ModelPin(**p) for p in json.loads(text)]
    except (TypeError, ValueError) as exc:
        raise PinError(f"the Job's {PIN_ANNOTATION} annotation is not a list of pins: {exc}") from None
