"""Give the GPUs back when a run on Kubernetes completes: scale its services' Deployments to zero.

The run's Job ends, but the generator and evaluator Deployments would keep their GPUs until someone
scales them down. After `videophy-bench run` finishes (exit 0, the Job then completes), the
orchestrator scales each Deployment named in VIDEOPHY_RELEASE_DEPLOYMENTS (e.g. `generator,evaluator`)
to zero through the Kubernetes API (`PATCH .../deployments/NAME/scale`), unless another run's Job in
the namespace is still active (the services are shared by every run of the namespace; the last run to
finish releases them). `cluster run` applies the services again (the overlay's replica counts), so the
next run brings them back up. Unset VIDEOPHY_RELEASE_DEPLOYMENTS, or outside a pod, this does nothing.

Credentials are the pod's service account token (a projected volume in the Job, bound by the Role
`videophy-orchestrator`: get/patch `deployments/scale` of those names, list `jobs`), read from
VIDEOPHY_KUBE_SA_DIR (default the standard mount) for each request, as the kubelet rotates it. A
failed release is a warning: the run's results and exit code stay what they are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
ORCHESTRATOR_SELECTOR = "app.kubernetes.io/component=orchestrator"
TIMEOUT_S = 15.0


class ReleaseError(RuntimeError):
    """The API refused or could not be reached; one line."""


@dataclass(frozen=True)
class KubeApi:
    """The few calls made to the API server, as the pod's service account."""

    base: str  # https://host:port
    sa_dir: Path
    namespace: str

    @classmethod
    def in_cluster(cls) -> KubeApi | None:
        """From the pod's environment; None outside a pod (no service account mounted)."""
        sa_dir = Path(os.environ.get("VIDEOPHY_KUBE_SA_DIR", SA_DIR))
        if not (sa_dir / "token").is_file():
            return None
        base = os.environ.get("VIDEOPHY_KUBE_API")
        if not base:
            host = os.environ.get("KUBERNETES_SERVICE_HOST")
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            if not host:
                return None
            base = f"https://{f'[{host}]' if ':' in host else host}:{port}"
        namespace = (sa_dir / "namespace").read_text().strip() if (sa_dir / "namespace").is_file() else ""
        return cls(base.rstrip("/"), sa_dir, os.environ.get("VIDEOPHY_NAMESPACE") or namespace)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                content_type: str = "application/json") -> dict[str, Any]:
        token = (self.sa_dir / "token").read_text().strip()
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json", "Content-Type": content_type})
        context = None
        if self.base.startswith("https:"):
            ca = self.sa_dir / "ca.crt"
            context = ssl.create_default_context(cafile=str(ca) if ca.is_file() else None)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S, context=context) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):  # a Status object's message
                detail = json.loads(detail).get("message", detail)
            raise ReleaseError(f"{method} {path}: HTTP {e.code}: {detail.strip()[:300]}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ReleaseError(f"{method} {path}: {e}") from None

    def active_runs(self) -> list[str]:
        """Names of the orchestrator Jobs in the namespace with a pod running or pending."""
        query = urllib.parse.urlencode({"labelSelector": ORCHESTRATOR_SELECTOR})
        jobs = self.request("GET", f"/apis/batch/v1/namespaces/{self.namespace}/jobs?{query}")
        return [j["metadata"]["name"] for j in jobs.get("items", []) if (j.get("status") or {}).get("active")]

    def scale(self, deployment: str, replicas: int) -> None:
        self.request("PATCH", f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{deployment}/scale",
                     {"spec": {"replicas": replicas}}, content_type="application/merge-patch+json")


def deployments_to_release() -> list[str]:
    return [d.strip() for d in os.environ.get("VIDEOPHY_RELEASE_DEPLOYMENTS", "").split(",") if d.strip()]


def release_after_run() -> list[str]:
    """Scale the configured Deployments to zero; returns those scaled. Never raises."""
    names = deployments_to_release()
    if not names:
        return []
    api = KubeApi.in_cluster()
    if api is None:
        log.warning("VIDEOPHY_RELEASE_DEPLOYMENTS is set but no service account is mounted: the services "
                    "keep their GPUs (scale them with kubectl)")
        return []
    own = os.environ.get("VIDEOPHY_JOB_NAME", "")
    done: list[str] = []
    try:
        others = [j for j in api.active_runs() if j != own]
        if others:
            log.info("run finished; %s keep running for job(s) %s (still active)", ", ".join(names),
                     ", ".join(sorted(others)))
            return []
        for name in names:
            api.scale(name, 0)
            done.append(name)
            log.info("run finished: deployment/%s scaled to 0 (its GPUs are released)", name)
    except ReleaseError as e:
        left = [n for n in names if n not in done]
        log.warning("could not release the services' GPUs (%s); scale them with `kubectl -n %s scale "
                    "deployment/%s --replicas=0`", e, api.namespace, " deployment/".join(left))
    return done
