"""Helpers shared by the deployment tests: finding the linters, rendering overlays, walking manifests.

The tools (kubectl, kubernetes-validate, checkov, hadolint) are external binaries. A test that needs
a missing one skips and names the tool, unless VIDEOPHY_REQUIRE_DEPLOY_TOOLS=1 (CI), where it fails.
Install commands: docs/deploy.md, "Validating the manifests".
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUSTOMIZATIONS = [K8S / "base", *OVERLAYS]
DOCKERFILES = sorted((REPO / "services").glob("*/Dockerfile"))
K8S_VERSION = "1.33.0"


def find_tool(name: str) -> str | None:
    """On PATH, else next to this interpreter (tools installed into the test venv), else None."""
    env = os.environ.get(f"VIDEOPHY_{name.upper().replace('-', '_')}")
    if env:
        return shutil.which(env) or None
    found = shutil.which(name)
    if found:
        return found
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


def require_tool(name: str) -> str:
    path = find_tool(name)
    if path:
        return path
    msg = f"{name} is not installed (see docs/deploy.md, 'Validating the manifests')"
    if os.environ.get("VIDEOPHY_REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(msg + "; VIDEOPHY_REQUIRE_DEPLOY_TOOLS=1 makes this an error")
    pytest.skip(msg)


@functools.cache
def _render(path: str, kubectl: str) -> str:
    proc = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"kubectl kustomize {path} failed:\n{proc.stderr}"
    return proc.stdout


def render(path: Path) -> str:
    return _render(str(path), require_tool("kubectl"))


def render_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render(path)) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) for every workload that makes pods."""
    out = []
    for d in docs:
        kind, name = d.get("kind"), d.get("metadata", {}).get("name")
        if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
            out.append((f"{kind}/{name}", d["spec"]["template"]["spec"]))
        elif kind == "CronJob":
            out.append((f"{kind}/{name}", d["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif kind == "Pod":
            out.append((f"{kind}/{name}", d["spec"]))
    return out


def container_env(container: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, str]:
    """The container's literal environment: envFrom ConfigMaps first, then env (which wins)."""
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        ref = src.get("configMapRef")
        if ref:
            env.update(one(docs, "ConfigMap", ref["name"]).get("data", {}))
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "configMapKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["configMapKeyRef"]
            env[e["name"]] = one(docs, "ConfigMap", ref["name"])["data"][ref["key"]]
    return env


def check_pod_security(kind_name: str, spec: dict[str, Any]) -> None:
    psc = spec.get("securityContext", {})
    assert psc.get("runAsNonRoot") is True, kind_name
    assert psc.get("runAsUser", 0) >= 10000, kind_name
    assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", kind_name
    assert spec.get("automountServiceAccountToken") is False, kind_name
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), kind_name
    for c in spec.get("initContainers", []) + spec["containers"]:
        sc = c.get("securityContext", {})
        where = f"{kind_name}/{c['name']}"
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("privileged") is not True, where
        assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
        assert not sc.get("capabilities", {}).get("add"), where
        # A read-only root needs a writable /tmp (temp files, caches).
        assert "/tmp" in {m["mountPath"] for m in c.get("volumeMounts", [])}, where
