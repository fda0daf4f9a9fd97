"""Dockerfiles: hadolint and checkov clean, and the conventions docs/deploy.md promises."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import tomllib
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from deploy_support import DOCKERFILES, REPO, require_tool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common import healthcheck

IDS = [p.parent.name for p in DOCKERFILES]
EXTRAS = {"generator": "generator", "evaluator": "evaluator", "orchestrator": "orchestrator"}
OPTIONAL_EXTRAS = {"generator": {"hopper"}}  # FlashAttention-3 for Hopper GPUs
PORTS = {"generator": 50051, "evaluator": 50052}


def test_one_dockerfile_per_service() -> None:
    assert set(IDS) == set(EXTRAS)


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_hadolint(path: Path) -> None:
    tool = require_tool("hadolint")
    proc = subprocess.run([tool, "--no-color", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checkov_dockerfiles() -> None:
    tool = require_tool("checkov")
    proc = subprocess.run(
        [tool, "--framework", "dockerfile", "--output", "json", "--compact", "--skip-download",
         *[a for p in DOCKERFILES for a in ("-f", str(p))]],
        capture_output=True, text=True,
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [c for r in reports for c in r["results"]["failed_checks"]]
    assert not failed, [(c["check_id"], c["file_path"]) for c in failed]
    for c in (c for r in reports for c in r["results"]["skipped_checks"]):
        assert len(c["check_result"].get("suppress_comment", "").strip()) > 20, c["check_id"]
    assert proc.returncode == 0


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_dockerfile_conventions(path: Path) -> None:
    service = path.parent.name
    text = path.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    # One stage whose base comes from a build argument, which the build refuses unless pinned by digest.
    assert froms == ["FROM ${BASE_IMAGE}"]
    assert lines.index("ARG BASE_IMAGE") < lines.index("FROM ${BASE_IMAGE}")
    assert '"${BASE_IMAGE}" == *@sha256:*' in text
    users = [ln for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] == "USER ${APP_UID}:${APP_UID}"
    uid = re.search(r"^ARG APP_UID=(\d+)$", text, re.M)
    assert uid and int(uid[1]) >= 10000
    installs = re.findall(r'pip install [^\n]*"\.\[([^\]]+)\]"', text)
    assert len(installs) == 1
    extras = installs[0]
    if extras == "${EXTRAS}":  # a build argument whose default is checked like a literal list
        default = re.search(r"^ARG EXTRAS=(\S+)$", text, re.M)
        assert default, "EXTRAS needs a default"
        extras = default[1]
    names = extras.split(",")
    assert names[0] == EXTRAS[service], "the service's own extra first"
    assert set(names[1:]) <= OPTIONAL_EXTRAS.get(service, set()), "no other service's extra"
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(names) <= set(declared), "every extra the image installs is declared in pyproject.toml"
    healthchecks = [ln for ln in lines if ln.startswith("HEALTHCHECK")]
    assert len(healthchecks) == 1
    if service in PORTS:
        # torch stays the base image's build.
        assert "-c /tmp/constraints.txt" in text and "torch" in text
        assert "services.common.healthcheck" in text
        assert f"EXPOSE {PORTS[service]}" in lines
        assert f"VIDEOPHY_BIND=0.0.0.0:{PORTS[service]}" in text
        assert f'ENTRYPOINT ["python", "-m", "services.{service}"]' in lines
    if service == "evaluator":
        assert "find_spec('diffusers') is not None" in text, "the evaluator image must not carry diffusers"


def test_dockerignore_keeps_the_context_small() -> None:
    rules = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert rules[0] == "**", "deny by default: no .git, .venv, runs or weights in the build context"
    assert {"!pyproject.toml", "!README.md", "!services/"} <= set(rules)


# --- the HEALTHCHECK command itself -------------------------------------------------------------------


@pytest.fixture()
def health_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[("grpc.so_reuseport", 0)])
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(None)


def test_healthcheck_follows_readiness(health_server, monkeypatch: pytest.MonkeyPatch) -> None:
    servicer, port = health_server
    monkeypatch.setenv("VIDEOPHY_BIND", f"0.0.0.0:{port}")
    servicer.set("readiness", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert healthcheck.main([]) == 1
    servicer.set("readiness", health_pb2.HealthCheckResponse.SERVING)
    assert healthcheck.main([]) == 0
    assert healthcheck.main(["--service", ""]) == 0  # liveness
    assert healthcheck.main(["--service", "nope"]) == 1  # NOT_FOUND fails, as a K8s probe would


def test_healthcheck_fails_fast_without_server() -> None:
    done = threading.Event()
    rc = []

    def probe() -> None:
        rc.append(healthcheck.main(["--target", "127.0.0.1:1", "--timeout-s", "1"]))
        done.set()

    threading.Thread(target=probe, daemon=True).start()
    assert done.wait(10) and rc == [1]


@pytest.mark.parametrize(("bind", "target"), [
    ("0.0.0.0:50051", "127.0.0.1:50051"), ("[::]:50052", "127.0.0.1:50052"),
    ("10.1.2.3:7", "10.1.2.3:7"), (":9", "127.0.0.1:9"),
])
def test_target_from_bind(bind: str, target: str) -> None:
    assert healthcheck.target_from_bind(bind) == target
