"""Releasing the services' GPUs when a run completes (services/orchestrator/release.py).

A Kubernetes API stand-in on 127.0.0.1 speaks the two calls made (list Jobs by label, merge-patch a
Deployment's scale subresource) and records them with their bearer token; the orchestrator is the
real `videophy-bench run --local` CLI on the tiny models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from videophy_bench.orchestrator import release

REPO = Path(__file__).resolve().parents[2]
NS = "team-a"


class LoopbackApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, object]] = []  # method, path, token, body
        self.active_jobs = ["videophy-run-r1"]
        self.forbidden: set[str] = set()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, code: int, doc: dict) -> None:
                data = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self, body: object = None) -> tuple[str, dict]:
                url = urlsplit(self.path)
                token = self.headers.get("Authorization", "")
                api.calls.append((self.command, url.path, token, body))
                return url.path, parse_qs(url.query)

            def do_GET(self) -> None:
                path, query = self._record()
                if path != f"/apis/batch/v1/namespaces/{NS}/jobs" or query.get("labelSelector") != [
                        "app.kubernetes.io/component=orchestrator"]:
                    return self._reply(404, {"kind": "Status", "message": "not found"})
                self._reply(200, {"kind": "JobList", "items": [
                    {"metadata": {"name": n}, "status": {"active": 1}} for n in api.active_jobs
                ] + [{"metadata": {"name": "videophy-run-old"}, "status": {"succeeded": 1}}]})

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                path, _ = self._record((self.headers["Content-Type"], body))
                name = path.split("/")[-2]
                if name in api.forbidden:
                    return self._reply(403, {"kind": "Status", "message": f'deployments.apps "{name}" is '
                                             "forbidden: cannot patch resource"})
                self._reply(200, {"kind": "Scale", "spec": body["spec"]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def scaled(self) -> list[str]:
        return [p.split("/")[-2] for m, p, _, _ in self.calls if m == "PATCH"]


@pytest.fixture()
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackApi]:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("projected-token\n")
    (sa / "namespace").write_text(NS)
    server = LoopbackApi()
    for key, value in {"VIDEOPHY_KUBE_SA_DIR": str(sa), "VIDEOPHY_KUBE_API": server.url,
                       "VIDEOPHY_JOB_NAME": "videophy-run-r1",
                       "VIDEOPHY_RELEASE_DEPLOYMENTS": "generator,evaluator"}.items():
        monkeypatch.setenv(key, value)
    yield server
    server.server.shutdown()


def test_a_completed_run_scales_its_services_to_zero(api: LoopbackApi, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "videophy_bench.orchestrator.cli", "run", "--local", "--model", "tiny",
         "--prompts",
         "sample", "--limit", "1", "--out", str(tmp_path / "run"), "--no-progress"],
        env={**os.environ, "PYTHONPATH": f"{REPO}", "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scale = f"/apis/apps/v1/namespaces/{NS}/deployments/%s/scale"
    assert api.calls == [
        ("GET", f"/apis/batch/v1/namespaces/{NS}/jobs", "Bearer projected-token", None),
        ("PATCH", scale % "generator", "Bearer projected-token",
         ("application/merge-patch+json", {"spec": {"replicas": 0}})),
        ("PATCH", scale % "evaluator", "Bearer projected-token",
         ("application/merge-patch+json", {"spec": {"replicas": 0}})),
    ]
    assert "deployment/generator scaled to 0" in proc.stderr


def test_a_failed_run_keeps_the_services(api: LoopbackApi, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "videophy_bench.orchestrator.cli", "run", "--local", "--model", "tiny",
         "--prompts",
         "sample", "--ids", "no-such-id", "--out", str(tmp_path / "run"), "--no-progress"],
        env={**os.environ, "PYTHONPATH": f"{REPO}"},
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 2
    assert api.calls == []


def test_another_active_run_keeps_the_services(api: LoopbackApi) -> None:
    api.active_jobs = ["videophy-run-r1", "videophy-run-r2"]
    assert release.release_after_run() == []
    assert api.scaled() == []


def test_a_refused_scale_is_a_warning_naming_what_is_left(api: LoopbackApi,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    api.forbidden = {"evaluator"}
    assert release.release_after_run() == ["generator"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "HTTP 403" in warning and "forbidden" in warning
    assert f"kubectl -n {NS} scale deployment/evaluator --replicas=0" in warning


def test_nothing_without_a_service_account(api: LoopbackApi, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("VIDEOPHY_KUBE_SA_DIR", str(tmp_path / "none"))
    assert release.release_after_run() == []
    monkeypatch.delenv("VIDEOPHY_RELEASE_DEPLOYMENTS")
    assert release.release_after_run() == []
    assert api.calls == []
