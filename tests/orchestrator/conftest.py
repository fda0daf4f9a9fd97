"""Real services on loopback for the orchestrator tests: tiny generators (some slowed down) and the
tiny evaluator, each a child process with its own port file, killed at teardown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

HERE = Path(__file__).resolve().parent
SLOW = HERE / "slow_generator.py"
TASK_EVALUATOR = HERE / "task_evaluator.py"


@dataclass
class Service:
    kind: str
    proc: subprocess.Popen
    port_file: Path
    log: Path
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 120.0) -> Service:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.log.read_text()[-2000:]}")
            if self.port == 0 and self.port_file.is_file():
                self.port = int(self.port_file.read_text())
            if self.port and _ready(self.address):
                return self
            time.sleep(0.1)
        raise TimeoutError(f"{self.kind} not ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _ready(address: str) -> bool:
    with grpc.insecure_channel(address) as ch:
        try:
            resp = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service="readiness"), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return resp.status == health_pb2.HealthCheckResponse.SERVING


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Services:
    """Starts services under one storage root; all are killed at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Service] = []
        self.count = 0

    def _start(self, kind: str, argv: list[str], port: int = 0) -> Service:
        self.count += 1
        logs = self.root / "service-logs"
        logs.mkdir(parents=True, exist_ok=True)
        port_file = logs / f"{kind}-{self.count}.port"
        log = logs / f"{kind}-{self.count}.log"
        cmd = [
            *argv,
            "--bind",
            f"127.0.0.1:{port}",
            "--port-file",
            str(port_file),
            "--storage-root",
            str(self.root),
            "--device",
            "cpu",
            "--grace-s",
            "1",
        ]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        svc = Service(kind, proc, port_file, log)
        self.started.append(svc)
        return svc

    def generator(self, delay: float = 0.0, port: int = 0, gate: Path | None = None) -> Service:
        """A tiny generator; `delay` s per video, and after the first video each waits for `gate`."""
        argv = (
            [sys.executable, str(SLOW), "--delay", str(delay), *(["--gate", str(gate)] if gate else [])]
            if delay or gate
            else [sys.executable, "-m", "videophy_bench.generator"]
        )
        return self._start("generator", [*argv, "--model", "tiny", "--no-warmup"], port)

    def evaluator(self, tasks: str | None = None, preset: str = "", fail_on: str = "") -> Service:
        """The tiny evaluator; with `tasks`, one that serves only those (as model `preset`); with
        `fail_on`, one whose judge raises on any query mentioning that text."""
        if tasks or fail_on:
            tasks = tasks or "sa,pc,rule,videocon_sa,videocon_pc"
            argv = [sys.executable, str(TASK_EVALUATOR), "--tasks", tasks, "--fail-on", fail_on]
            return self._start("evaluator", [*argv, "--preset", preset or "tiny-" + tasks])
        return self._start("evaluator", [sys.executable, "-m", "videophy_bench.evaluator", "--model", "tiny"])

    def stop(self) -> None:
        for svc in self.started:
            svc.kill()


@pytest.fixture
def services(tmp_path):
    s = Services(tmp_path / "storage")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def shared_services(tmp_path_factory):
    """Two tiny generators and one tiny evaluator, shared by the tests of a module."""
    s = Services(tmp_path_factory.mktemp("shared") / "storage")
    gens = [s.generator(), s.generator()]
    ev = s.evaluator()
    for svc in (*gens, ev):
        svc.wait_ready()
    yield s, gens, ev
    s.stop()


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    """A slowed tiny generator, an evaluator serving sa/pc/rule and one serving the videocon tasks."""
    s = Services(tmp_path_factory.mktemp("pools") / "storage")
    gen = s.generator(delay=0.4)
    autoeval = s.evaluator("sa,pc,rule", "tiny-autoeval")
    videocon = s.evaluator("videocon_sa,videocon_pc", "tiny-videocon")
    for svc in (gen, autoeval, videocon):
        svc.wait_ready()
    yield s, gen, autoeval, videocon
    s.stop()


@pytest.fixture
def port_is_ready():
    return _ready


@pytest.fixture
def unused_port():
    return free_port


@pytest.fixture
def cli(tmp_path):
    """Starts `videophy-bench` CLI processes (cli_process.Cli); any still running is killed at teardown."""
    from cli_process import Cli

    started: list[Cli] = []

    def start(args: list[str]) -> Cli:
        started.append(Cli(args, tmp_path / f"cli-{len(started)}.err"))
        return started[-1]

    yield start
    for c in started:
        if c.proc.poll() is None:
            os.killpg(c.proc.pid, signal.SIGKILL)
            c.proc.wait()


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    """The tiny evaluator on a storage root, no generator anywhere: (storage root, its address)."""
    s = Services(tmp_path_factory.mktemp("judge") / "storage")
    ev = s.evaluator().wait_ready()
    yield s.root, ev.address
    s.stop()
