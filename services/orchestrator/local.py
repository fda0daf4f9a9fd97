"""Local mode: the services as child processes on loopback ports, stopped whatever happens.

One generator per visible GPU (one on the CPU when there is none) and likewise one evaluator (and one
VideoCon-Physics evaluator when `videocon_model` is set: a second evaluator kind). Each
child gets its own process group and a parent-death signal, so Ctrl-C, an error or even a SIGKILL of
the orchestrator never leaves a model server behind. Commands are argument lists, never a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.common.channel import ClientConfig, is_ready

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 10.0


class LocalServiceError(RuntimeError):
    """A child service exited or did not become ready."""


def visible_gpus() -> list[str]:
    """GPU ids the children may use: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    return [str(k) for k, _ in enumerate(x for x in out.splitlines() if x.startswith("GPU "))]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    kind: str
    name: str
    proc: subprocess.Popen
    port_file: Path
    log_path: Path
    address: str = ""

    def last_line(self) -> str:
        """The child's last non-empty log line: its one-line error when it fails to start."""
        return next((line.strip() for line in reversed(self.log_tail().splitlines()) if line.strip()), "")

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@dataclass
class LocalServices:
    """Start with `await start()`, always `stop()` (sync, idempotent) in a `finally`."""

    run_dir: Path
    storage_root: Path
    generator_model: str
    judge_model: str | None
    generators: int | None = None  # default: one per GPU, or 1
    evaluators: int | None = None
    extra_generator_args: list[str] = field(default_factory=list)
    extra_evaluator_args: list[str] = field(default_factory=list)
    startup_timeout_s: float = 1800.0
    videocon_model: str | None = None  # a second evaluator kind (e.g. videocon_physics), same count
    children: list[Child] = field(default_factory=list)

    def _spawn(
        self, kind: str, index: int, model: str, gpu: str | None, extra: list[str], role: str = ""
    ) -> Child:
        name = f"{kind}-{role}-{index}" if role else f"{kind}-{index}"
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        port_file = logs / f"{name}.port"
        port_file.unlink(missing_ok=True)
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        argv = [
            sys.executable,
            "-m",
            f"services.{kind}",
            "--bind",
            "127.0.0.1:0",
            "--port-file",
            str(port_file),
            "--storage-root",
            str(self.storage_root),
            "--model",
            model,
            "--device",
            "cuda" if gpu is not None else "cpu",
            "--grace-s",
            "5",
            *extra,
        ]
        log_path = logs / f"{name}.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        log.info(
            "started %s (pid %d, %s, model %s); log %s",
            name,
            proc.pid,
            f"GPU {gpu}" if gpu is not None else "CPU",
            model,
            log_path,
        )
        child = Child(kind, name, proc, port_file, log_path)
        self.children.append(child)
        return child

    async def start(self, client_config: ClientConfig | None = None) -> tuple[list[str], list[str]]:
        """Spawn and wait until every child is ready; returns (generator, evaluator) addresses."""
        gpus = visible_gpus()
        slots: list[str | None] = list(gpus) if gpus else [None]
        n_gen = self.generators or len(slots)
        n_eval = self.evaluators or len(slots)
        for k in range(n_gen):
            self._spawn(
                "generator", k, self.generator_model, slots[k % len(slots)], self.extra_generator_args
            )
        for role, model in (("", self.judge_model), ("videocon", self.videocon_model)):
            if not model:
                continue
            for k in range(n_eval):
                self._spawn("evaluator", k, model, slots[k % len(slots)], self.extra_evaluator_args, role)
        await asyncio.gather(*(self._wait_ready(c, client_config or ClientConfig()) for c in self.children))
        return (
            [c.address for c in self.children if c.kind == "generator"],
            [c.address for c in self.children if c.kind == "evaluator"],
        )

    async def _wait_ready(self, child: Child, config: ClientConfig) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        channel = None
        try:
            while time.monotonic() < deadline:
                if child.proc.poll() is not None:
                    log.debug("last lines of %s:\n%s", child.log_path, child.log_tail())
                    raise LocalServiceError(
                        f"{child.name} exited with code {child.proc.returncode} while starting: "
                        f"{child.last_line()} (log: {child.log_path})"
                    )
                if channel is None and child.port_file.is_file():
                    child.address = f"127.0.0.1:{int(child.port_file.read_text().strip())}"
                    channel = config.open(child.address)
                if channel is not None and await is_ready(channel, 2.0):
                    log.info("%s ready at %s", child.name, child.address)
                    return
                await asyncio.sleep(0.2)
        finally:
            if channel is not None:
                await channel.close()
        raise LocalServiceError(
            f"{child.name} not ready after {self.startup_timeout_s:.0f}s; see {child.log_path}"
        )

    def stop(self) -> None:
        """SIGTERM every child's process group, then SIGKILL what is left after the grace period."""
        for child in self.children:
            if child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in self.children:
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        self.children.clear()
