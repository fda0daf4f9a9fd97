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
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from videophy_bench.common import healthcheck

IDS = [p.parent.name for p in DOCKERFILES]
# The pyproject extras each image's lock holds (generator: FlashAttention-3 for Hopper GPUs too).
EXTRAS = {"generator": ["generator", "hopper"], "evaluator": ["evaluator"], "orchestrator": ["orchestrator"]}
# The base image's own build; never in a lock (services/requirements/compile.sh).
TORCH_FAMILY = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*)$")
# Where the images run: markers are evaluated for the documented base (CPython on x86-64 Linux).
IMAGE_ENV = {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux",
             "os_name": "posix", "implementation_name": "cpython",
             "platform_python_implementation": "CPython"}
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
    # Dependencies from the service's hash-locked requirements, installed before the sources are copied
    # (an edit under services/ must not reinstall them), then the project itself without resolving.
    lock = f"services/requirements/{service}.lock"
    pips = [ln for ln in lines if "pip install" in ln]
    assert pips == [
        f"RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/req/{service}.lock \\",
        "RUN pip install --no-cache-dir --no-deps --no-build-isolation . \\"]
    copies = [ln for ln in lines if ln.startswith("COPY ")]
    deps_at, sources_at = lines.index(pips[0]), lines.index("COPY services/ services/")
    assert deps_at < sources_at < lines.index(pips[1])
    before = [ln for ln in copies if lines.index(ln) < deps_at]
    assert before and all(p.startswith("services/requirements/") for ln in before for p in ln.split()[1:-1])
    assert lock in " ".join(before)
    assert lock_extras(REPO / lock) == EXTRAS[service]
    healthchecks = [ln for ln in lines if ln.startswith("HEALTHCHECK")]
    assert len(healthchecks) == 1
    if service in PORTS:
        # The one documented base, checked at build time against base.env (torch and CUDA versions).
        base = base_env()
        assert f"BASE_IMAGE={base['TORCH_BASE']}@sha256:<digest>" in text
        assert "COPY services/requirements/base.env" in text and '"${TORCH_VERSION} ${CUDA_VERSION}"' in text
        assert "videophy_bench.common.healthcheck" in text
        assert f"EXPOSE {PORTS[service]}" in lines
        assert f"VIDEOPHY_BIND=0.0.0.0:{PORTS[service]}" in text
        assert f'ENTRYPOINT ["python", "-m", "videophy_bench.{service}"]' in lines
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


# --- hash-locked requirements ---------------------------------------------------------------------------


def base_env() -> dict[str, str]:
    text = (REPO / "services" / "requirements" / "base.env").read_text()
    return dict(ln.split("=", 1) for ln in text.splitlines() if ln and not ln.startswith("#"))


def lock_extras(path: Path) -> list[str]:
    header = re.search(r"^# extras: ([^;]+);", path.read_text(), re.M)
    assert header, f"{path}: no extras header (written by compile.sh)"
    return header[1].split()


def lock_entries(path: Path) -> list[tuple[Requirement, list[str]]]:
    """(requirement with its marker, its hashes) per entry of a pip/uv lock file."""
    text = path.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if not line:
            continue
        spec, *hashes = line.split(" --hash=")
        out.append((Requirement(spec), [h.strip() for h in hashes]))
    return out


@pytest.mark.parametrize("service", sorted(EXTRAS))
def test_each_lock_pins_every_dependency_with_hashes(service: str) -> None:
    """The lock is complete for the image (offline: every requirement of the service's extras and of the
    build backend is pinned, in range, with sha256 hashes) and leaves the torch family to the base."""
    path = REPO / "services" / "requirements" / f"{service}.lock"
    entries = lock_entries(path)
    floor = base_env()["PYTHON_FLOOR"]
    for python in (floor, "3.12", "3.13"):
        env = {**IMAGE_ENV, "python_version": python, "python_full_version": f"{python}.0"}
        pinned: dict[str, Version] = {}
        for req, hashes in entries:
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {req} is not pinned"
            name = canonicalize_name(req.name)
            assert name not in pinned, f"{path.name}: {name} pinned twice for Python {python}"
            pinned[name] = Version(spec.version)
            assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), f"{req}: hashes"
            assert not TORCH_FAMILY.match(name), f"{path.name}: {name} is the base image's"
        project = tomllib.loads((REPO / "pyproject.toml").read_text())
        wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
        for extra in lock_extras(path):
            wanted += project["project"]["optional-dependencies"][extra]
        for text in wanted:
            req = Requirement(text)
            name = canonicalize_name(req.name)
            if TORCH_FAMILY.match(name) or (req.marker is not None and not req.marker.evaluate(env)):
                continue
            assert name in pinned, f"{path.name}: {name} (pyproject.toml) is not locked for Python {python}"
            assert req.specifier.contains(pinned[name], prereleases=True), (
                f"{path.name}: {name}=={pinned[name]} is outside pyproject.toml's {req.specifier}: run "
                "services/requirements/compile.sh")
    assert lock_extras(path) == EXTRAS[service]


def test_the_documented_base_is_one_and_the_same_everywhere() -> None:
    base = base_env()
    docs = (REPO / "docs" / "deploy.md").read_text()
    assert f"TORCH_BASE={base['TORCH_BASE']}@sha256:<digest>" in docs
    assert f"SLIM_BASE={base['SLIM_BASE']}@sha256:<digest>" in docs
    assert base["DRIVER_FLOOR"] in docs and f"CUDA {base['CUDA_VERSION']}" in docs
    tag = f"{base['TORCH_VERSION']}-cuda{base['CUDA_VERSION']}-cudnn9-runtime"
    assert base["TORCH_BASE"] == f"pytorch/pytorch:{tag}"
    # No other torch base named anywhere (the issue: a documented CUDA 12.8 base that FA3 cannot load on).
    for path in [REPO / "docs" / "deploy.md", *DOCKERFILES]:
        for tag in re.findall(r"pytorch/pytorch:[\w.-]+", path.read_text()):
            assert tag == base["TORCH_BASE"], f"{path.name} names {tag}"
