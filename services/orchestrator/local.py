"""Local mode: the services as child processes on loopback ports, stopped whatever happens.

One generator per visible GPU (one on the CPU when there is none) and likewise one evaluator (and one
VideoCon-Physics evaluator when `videocon_model` is set: a second evaluator kind). Each
child gets its own process group and a parent-death signal, so Ctrl-C, an error or even a SIGKILL of
the orchestrator never leaves a model server behind. Commands are argument lists, never a shell.

While the run dispatches (`supervise`), a child that exits is reported at once with the tail of its
log and restarted (at most `max_restarts` times each); `addresses(kind)` always lists the ready
children, so the dispatcher (through a `Target.pool`) drops a dead one and picks up its successor on
its new port. A child that cannot come back ends the run with one LocalServiceError line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from videophy_bench.common.channel import ClientConfig, is_ready
from videophy_bench.evaluator.catalog import endpoint_judge

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
# Sets the parent-death signal in the child, then execs it (no Popen preexec_fn: see the module).
_LAUNCHER = [sys.executable, "-m", "videophy_bench.orchestrator.die_with_parent"]
POLL_S = 0.2  # how often a child's liveness is checked
T = TypeVar("T")


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


def exit_reason(returncode: int) -> str:
    """`exited with code 3` / `was killed by SIGKILL` (Popen's negative code is the signal)."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class Child:
    kind: str
    name: str
    argv: list[str]
    env: dict[str, str]
    port_file: Path
    log_path: Path
    label: str  # "GPU 0, model tiny": for the log lines
    proc: subprocess.Popen | None = None
    address: str = ""
    ready: bool = False  # answered readiness; only ready children are offered to the dispatcher
    restarts: int = 0

    def last_line(self) -> str:
        """The child's last non-empty log line: its one-line error when it fails to start."""
        return next((line.strip() for line in reversed(self.log_tail().splitlines()) if line.strip()), "")

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def report_exit(self, what: str) -> str:
        """Log the exit (one warning line, then the tail of the child's log); returns the reason."""
        assert self.proc is not None
        reason = f"{self.name} (pid {self.proc.pid}) {exit_reason(self.proc.returncode)}"
        tail = "".join(f"\n  | {line}" for line in self.log_tail().splitlines())
        log.warning("%s%s; last lines of %s:%s", reason, what, self.log_path, tail)
        return reason


@dataclass
class LocalServices:
    """Start with `await start()`, always `stop()` (sync, idempotent) in a `finally`."""

    run_dir: Path
    storage_root: Path
    generator_model: str | None  # None: no generator (judging existing videos)
    judge_model: str | None
    generators: int | None = None  # default: one per GPU, or 1
    evaluators: int | None = None
    extra_generator_args: list[str] = field(default_factory=list)
    extra_evaluator_args: list[str] = field(default_factory=list)
    startup_timeout_s: float = 1800.0
    videocon_model: str | None = None  # a second evaluator kind (e.g. videocon_physics), same count
    max_restarts: int = 3  # per child, while supervised
    # An evaluator of a judge over an endpoint (openai-vlm) gets these flags and environment (its API
    # key: never on a command line), runs on the CPU and is started once unless `evaluators` says more.
    endpoint_args: list[str] = field(default_factory=list)
    endpoint_env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    def _spawn(
        self, kind: str, index: int, model: str, gpu: str | None, extra: list[str], role: str = "",
        env_extra: dict[str, str] | None = None,
    ) -> Child:
        name = f"{kind}-{role}-{index}" if role else f"{kind}-{index}"
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        port_file = logs / f"{name}.port"
        env = {**os.environ, **(env_extra or {})}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        argv = [
            sys.executable,
            "-m",
            f"videophy_bench.{kind}",
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
        label = f"{'GPU ' + gpu if gpu is not None else 'CPU'}, model {model}"
        child = Child(kind, name, argv, env, port_file, logs / f"{name}.log", label)
        self._launch(child)
        self.children.append(child)
        return child

    def _launch(self, child: Child) -> None:
        child.port_file.unlink(missing_ok=True)
        child.address, child.ready = "", False
        with open(child.log_path, "ab") as out:
            child.proc = subprocess.Popen(
                [*_LAUNCHER, str(os.getpid()), *child.argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child.env,
                start_new_session=True,
            )
        log.info("started %s (pid %d, %s); log %s", child.name, child.proc.pid, child.label, child.log_path)

    async def start(self, client_config: ClientConfig | None = None) -> tuple[list[str], list[str]]:
        """Spawn and wait until every child is ready; returns (generator, evaluator) addresses."""
        gpus = visible_gpus()
        slots: list[str | None] = list(gpus) if gpus else [None]
        n_gen = (self.generators or len(slots)) if self.generator_model else 0
        n_eval = self.evaluators or len(slots)
        for k in range(n_gen):
            self._spawn(
                "generator", k, str(self.generator_model), slots[k % len(slots)], self.extra_generator_args
            )
        for role, model in (("", self.judge_model), ("videocon", self.videocon_model)):
            if not model:
                continue
            if endpoint_judge(model):  # the endpoint owns the model: no GPU slot, one process
                for k in range(self.evaluators or 1):
                    extra = [*self.extra_evaluator_args, *self.endpoint_args]
                    self._spawn("evaluator", k, model, None, extra, role, self.endpoint_env)
                continue
            for k in range(n_eval):
                self._spawn("evaluator", k, model, slots[k % len(slots)], self.extra_evaluator_args, role)
        await asyncio.gather(*(self._wait_ready(c, client_config or ClientConfig()) for c in self.children))
        return (
            [c.address for c in self.children if c.kind == "generator"],
            [c.address for c in self.children if c.kind == "evaluator"],
        )

    def addresses(self, kind: str) -> set[str]:
        """Addresses of the ready children of `kind` now (what a `Target.pool` resolves to)."""
        return {c.address for c in self.children if c.kind == kind and c.ready}

    async def _wait_ready(self, child: Child, config: ClientConfig) -> None:
        assert child.proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        channel = None
        try:
            while time.monotonic() < deadline:
                if child.proc.poll() is not None:
                    log.debug("last lines of %s:\n%s", child.log_path, child.log_tail())
                    raise LocalServiceError(
                        f"{child.name} (pid {child.proc.pid}) {exit_reason(child.proc.returncode)} "
                        f"while starting: {child.last_line()} (log: {child.log_path})"
                    )
                if channel is None and child.port_file.is_file():
                    child.address = f"127.0.0.1:{int(child.port_file.read_text().strip())}"
                    channel = config.open(child.address)
                if channel is not None and await is_ready(channel, 2.0):
                    log.info("%s ready at %s", child.name, child.address)
                    child.ready = True
                    return
                await asyncio.sleep(POLL_S)
        finally:
            if channel is not None:
                await channel.close()
        raise LocalServiceError(
            f"{child.name} not ready after {self.startup_timeout_s:.0f}s; see {child.log_path}"
        )

    async def supervise(self, work: Awaitable[T], config: ClientConfig | None = None) -> T:
        """Await `work` while restarting children that exit. Raises LocalServiceError (after
        cancelling `work`) when one cannot come back: restart budget spent, or it died while starting."""
        work_task = asyncio.ensure_future(work)
        watchers = [asyncio.create_task(self._watch(c, config or ClientConfig())) for c in self.children]
        try:
            done, _ = await asyncio.wait([work_task, *watchers], return_when=asyncio.FIRST_COMPLETED)
            if work_task not in done:
                for task in done:
                    task.result()  # a watcher only ends by raising
            return work_task.result()
        finally:
            for task in (*watchers, work_task):
                task.cancel()
            await asyncio.gather(*watchers, work_task, return_exceptions=True)

    async def _watch(self, child: Child, config: ClientConfig) -> None:
        assert child.proc is not None
        while True:
            while child.proc.poll() is None:
                await asyncio.sleep(POLL_S)
            child.ready = False  # the dispatcher drops its address at the next refresh
            if child.restarts >= self.max_restarts:
                reason = child.report_exit("")
                raise LocalServiceError(
                    f"{reason}; no restart left ({child.restarts} of {self.max_restarts} used) "
                    f"(log: {child.log_path})"
                )
            child.restarts += 1
            child.report_exit(f"; restarting it ({child.restarts} of {self.max_restarts})")
            self._launch(child)
            await self._wait_ready(child, config)

    def stop(self) -> None:
        """SIGTERM every child's process group, then SIGKILL what is left after the grace period."""
        procs = [c.proc for c in self.children if c.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.children.clear()
