"""Orchestrator overhead benchmark: the real runner and dispatcher against real gRPC generator servers.

  python bench/bench_orchestrator.py --out bench/results/orchestrator_after.json

Scenarios (each run `--repeats` times, every time into a fresh run directory):

- `instant`: `--instant-replicas` generators whose backend answers at once, `--instant-items` items:
  dispatched items per second (target >= 500/s).
- `busy`: `--busy-replicas` real GeneratorServicers with queue depth 0 (capacity 1: a replica idles
  whenever the orchestrator has not yet sent its next item) whose backend takes `--item-s` seconds per
  item, `--busy-items` items: busy fraction = sum(backend time per item) / (replicas x dispatch time)
  (target >= 0.98). This is the strict case: all the orchestrator's per-item turnaround shows.
- `busy_queued`: the same with the generator's default queue depth 1 (capacity 2: the next item
  waits at the replica while the current one runs), the configuration `serve generator` deploys.
- `instant_real` (not in the default list): `instant` with the real GeneratorServicer.

What is real: `videophy_bench.orchestrator.runner.run` end to end (prompt CSV, run lock, ledger, GetInfo,
plan, dispatch, sha256 + full-decode verification of every video, exports, manifest) over grpc.aio
channels to generator servers on 127.0.0.1, each a real `ServiceHost` (health, reflection, drain and
error interceptors). The servers run in one child process, so that they share neither the
orchestrator's event loop nor its GIL.

What stands in for the model: `BenchBackend` returns fixed 64x64x9 frames (the tiny preset's size) at
once or after sleeping `--item-s`. The real servicer's MP4 *encode* is replaced by writing the bytes
the real `encode_mp4` produced for those frames once at start-up: imageio-ffmpeg starts an ffmpeg
process per video (20-50 ms here), which would cap a replica at a few dozen items/s and measure
ffmpeg, not the orchestrator. Every item still gets its own real, decodable MP4 at its own URI.

`instant` uses `MinimalServicer` (below) rather than the real servicer: the real one costs ~3 ms of
CPU per item (device-thread hop, MP4 and sidecar written atomically with two fsyncs, sidecar JSON),
and on a 2-core machine the servers' CPU then caps the rate whatever the orchestrator does
(`instant_real` shows it). MinimalServicer is the real class (GetInfo, request validation) with a
Generate that puts the pre-made MP4 at the request's URI (write + rename) and streams the same two
events (queued, result) without the device thread, fsyncs or sidecar.

Reported per run: dispatch time (around `Dispatcher.run`: connecting to replicas, GetInfo, readiness,
every item, shutdown), makespan (to the last item settled), items/s, the orchestrator's and the
servers' CPU per item (`time.process_time`, /proc), busy fractions, and on the servers' monotonic
clock (system-wide, so comparable across processes) the device idle time between consecutive items of
a replica and, with queue depth 0, the turnaround (result sent -> next request received).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import use_repo_imports

use_repo_imports()
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # no INFO lines about GOAWAY when channels close

import numpy as np  # noqa: E402

FRAMES_SHAPE = (9, 64, 64, 3)  # the tiny preset's size


def bench_frames(kind: str) -> np.ndarray:
    """`smooth`: a moving gradient (~3 KB MP4); `noise`: uniform noise (~36 KB, slower to decode)."""
    f, h, w, _ = FRAMES_SHAPE
    if kind == "noise":
        return np.random.default_rng(0).random(FRAMES_SHAPE, dtype=np.float32)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty(FRAMES_SHAPE, dtype=np.float32)
    for k in range(f):
        out[k, ..., 0] = (x + 3 * k) % w / w
        out[k, ..., 1] = (y + 2 * k) % h / h
        out[k, ..., 2] = 0.5
    return out


# -- generator side (child process) -----------------------------------------------------------------
class BenchBackend:
    """A GeneratorBackend without a model: fixed frames, at once or after `delay_s`."""

    def __init__(self, frames: np.ndarray, delay_s: float) -> None:
        from videophy_bench.generator.presets import PRESETS

        self.preset = PRESETS["tiny"]
        self.model_id = "videophy-bench/orchestrator-bench"
        self.revision = "bench"
        self.device = "cpu"
        self.dtype = "float32"
        self.acceleration = "none"
        self.frames = frames
        self.delay_s = delay_s
        self.device_busy: list[tuple[float, float]] = []  # (start, end) of every generate, monotonic
        self.handled: list[tuple[float, float]] = []  # (Generate received, result sent), monotonic

    def load(self) -> None:
        pass

    def warmup(self) -> None:
        pass

    def prepare(self, prompts: list[str], negative_prompt: str) -> tuple[int, int]:
        return 0, 0

    def generate(self, job, on_step, should_stop):
        from videophy_bench.generator.backend import GenerationOutput

        t0 = time.monotonic()
        if self.delay_s:
            time.sleep(self.delay_s)
        on_step(1, 1)
        self.device_busy.append((t0, time.monotonic()))
        return GenerationOutput(self.frames, {"denoise": self.delay_s})

    def free_memory(self) -> None:
        pass

    def enable_low_memory(self) -> None:
        pass


def minimal_servicer_class():
    """The real GeneratorServicer (GetInfo, request validation) with a lighter Generate (see top)."""
    from videophy_bench.common.errors import Busy
    from videophy_bench.generator.engine import params_proto
    from videophy_bench.generator.service import GeneratorServicer, video_request
    from videophy_bench.proto.v1 import common_pb2, generator_pb2

    class MinimalServicer(GeneratorServicer):
        premade: bytes = b""
        premade_sha: str = ""
        busy = False

        async def Generate(self, request, context):
            work = self.engine.plan(video_request(request))  # the real checks
            engine = self.engine
            if self.busy:
                raise Busy("generator busy with another item")
            self.busy = True
            try:
                p = work.job.params
                yield generator_pb2.GenerateEvent(
                    request_id=request.request_id,
                    progress=generator_pb2.GenerateProgress(
                        phase="queued", step=0, total_steps=p.num_inference_steps
                    ),
                )
                t0 = time.monotonic()
                if engine.backend.delay_s:
                    await asyncio.sleep(engine.backend.delay_s)
                engine.backend.device_busy.append((t0, time.monotonic()))
                path = engine.storage.resolve(work.uri)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_bytes(self.premade)
                os.replace(tmp, path)
                f, h, w = FRAMES_SHAPE[:3]
                result = generator_pb2.GenerateResult(
                    artifact=common_pb2.ArtifactRef(
                        uri=work.uri, sha256=self.premade_sha, bytes=len(self.premade), mime="video/mp4"
                    ),
                    num_frames=f,
                    fps=p.fps,
                    duration_s=f / p.fps,
                    height=h,
                    width=w,
                    params=params_proto(p, "", engine.backend.acceleration),
                    model=engine.model_proto(),
                    runtime=engine.runtime,
                    timings_s={"denoise": engine.backend.delay_s},
                    attempts=1,
                )
            finally:
                self.busy = False
            yield generator_pb2.GenerateEvent(request_id=request.request_id, result=result)

    return MinimalServicer


async def serve(args: argparse.Namespace) -> None:
    from videophy_bench.common.server import ServiceHost
    from videophy_bench.common.storage import Storage
    from videophy_bench.generator import engine as gen_engine
    from videophy_bench.generator import service as gen_service
    from videophy_bench.proto.v1 import generator_pb2_grpc

    premade = Path(args.premade).read_bytes()

    def write_premade(frames, path, fps, quality=0.0):  # stands in for the ffmpeg encode (see top)
        Path(path).write_bytes(premade)

    gen_engine.encode_mp4 = write_premade
    base = gen_service.GeneratorServicer
    if args.servicer == "minimal":
        base = minimal_servicer_class()
        base.premade, base.premade_sha = premade, hashlib.sha256(premade).hexdigest()

    class TimedServicer(base):  # type: ignore[valid-type,misc]
        """Records (request received, result sent) per item on the system-wide monotonic clock."""

        async def Generate(self, request, context):
            t_recv = time.monotonic()
            async for event in super().Generate(request, context):
                if event.HasField("result"):
                    self.engine.backend.handled.append((t_recv, time.monotonic()))
                yield event

    frames = bench_frames(args.frames)
    storage = Storage(args.storage_root)
    hosts, backends = [], []
    for _ in range(args.replicas):
        backend = BenchBackend(frames, args.delay)
        kwargs = {"queue_depth": args.queue_depth} if args.servicer == "real" else {}
        engine = gen_engine.GenerationEngine(backend, storage, **kwargs)
        servicer = TimedServicer(engine)
        host = ServiceHost(
            bind="127.0.0.1:0",
            service_names=["videophy.v1.GeneratorService"],
            register=lambda server, s=servicer: generator_pb2_grpc.add_GeneratorServiceServicer_to_server(
                s, server
            ),
            grace_s=1.0,
        )
        await host.start()
        await engine.load_and_warm(warmup=False)
        await host.set_ready(True)
        hosts.append(host)
        backends.append(backend)
    tmp = Path(args.port_file + ".tmp")
    tmp.write_text(json.dumps([h.port for h in hosts]))
    tmp.replace(args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    stats = {"device_busy": [b.device_busy for b in backends], "handled": [b.handled for b in backends]}
    Path(args.stats).write_text(json.dumps(stats))
    for h in hosts:
        assert h.server is not None
        await h.server.stop(0)


class Generators:
    """The child process hosting `replicas` generator servers."""

    def __init__(self, root: Path, name: str, replicas: int, delay_s: float, frames: str, premade: Path,
                 servicer: str, queue_depth: int) -> None:
        self.port_file = root / f"{name}.ports.json"
        self.stats_file = root / f"{name}.stats.json"
        self.log = root / f"{name}.servers.log"
        self.port_file.unlink(missing_ok=True)
        self.stats_file.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--serve", "--replicas", str(replicas), "--delay", str(delay_s),
               "--frames", frames, "--servicer", servicer, "--queue-depth", str(queue_depth),
               "--premade", str(premade), "--storage-root", str(root / "storage"),
               "--port-file", str(self.port_file), "--stats", str(self.stats_file)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while not self.port_file.is_file():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"generator servers did not start: {self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        self.addresses = [f"127.0.0.1:{p}" for p in json.loads(self.port_file.read_text())]

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server process so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> dict[str, Any]:
        """Stop the servers; returns their per-replica timings."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        return json.loads(self.stats_file.read_text())


# -- orchestrator side -------------------------------------------------------------------------------
def timed_dispatcher(record: dict[str, float], gens: Generators, profiler: Any = None):
    """The real Dispatcher, timed; with `profiler` (a cProfile.Profile) profiled over `run` alone."""
    from videophy_bench.orchestrator.dispatch import Dispatcher

    class TimedDispatcher(Dispatcher):
        async def run(self, to_generate, to_judge):
            record["items"] = len(to_generate) + len(to_judge)
            record.update(t0=time.monotonic(), cpu0=time.process_time(), gcpu0=gens.cpu_s())
            if profiler is not None:
                profiler.enable()
            try:
                await super().run(to_generate, to_judge)
            finally:
                if profiler is not None:
                    profiler.disable()
                record.update(t1=time.monotonic(), cpu1=time.process_time(), gcpu1=gens.cpu_s())

        def _settle(self, item):
            super()._settle(item)
            record.setdefault("t_first", time.monotonic())
            record["t_last"] = time.monotonic()

    return TimedDispatcher


def write_prompts(path: Path, n: int, tag: str) -> None:
    lines = ["prompt_id,caption"]
    lines += [f"b{k:05d},A ball {tag} number {k} rolls across a wooden table and falls." for k in range(n)]
    path.write_text("\n".join(lines) + "\n")


def _dist_ms(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    values = sorted(values)
    return {
        "median": round(statistics.median(values) * 1e3, 3),
        "p95": round(values[int(0.95 * (len(values) - 1))] * 1e3, 3),
        "max": round(values[-1] * 1e3, 3),
    }


def _gaps(intervals_per_replica: list[list[list[float]]]) -> list[float]:
    """Time between one interval's end and the next one's start, per replica."""
    out = []
    for intervals in intervals_per_replica:
        ordered = sorted(intervals)
        out += [nxt[0] - prev[1] for prev, nxt in itertools.pairwise(ordered)]
    return out


def run_once(root: Path, name: str, gens: Generators, n_items: int, profile: Path | None,
             profile_dispatch_only: bool = False, dispatch: dict[str, Any] | None = None) -> dict[str, Any]:
    """One `runner.run`; `profile`: cProfile of the whole run (or of `Dispatcher.run` alone) to that file;
    `dispatch`: DispatchOptions fields to set."""
    from videophy_bench.orchestrator import runner
    from videophy_bench.orchestrator.dispatch import DispatchOptions
    from videophy_bench.orchestrator.ledger import connect
    from videophy_bench.orchestrator.runner import RunOptions

    storage = root / "storage"
    run_dir = storage / name
    shutil.rmtree(run_dir, ignore_errors=True)
    prompts = root / f"{name}.csv"
    write_prompts(prompts, n_items, name)
    record: dict[str, float] = {}
    import cProfile

    dispatch_prof = cProfile.Profile() if profile is not None and profile_dispatch_only else None
    runner.Dispatcher = timed_dispatcher(record, gens, dispatch_prof)  # type: ignore[misc]
    opts = RunOptions(prompts=str(prompts), out=run_dir, storage_root=storage,
                      generators=",".join(gens.addresses), no_judge=True, progress=False,
                      dispatch=DispatchOptions(**{"stall_timeout_s": 60.0, **(dispatch or {})}),
                      argv=["bench_orchestrator", name])
    t0 = time.monotonic()
    if profile is not None and dispatch_prof is None:
        prof = cProfile.Profile()
        rc = prof.runcall(runner.run_sync, opts)
        prof.dump_stats(profile)
    else:
        rc = runner.run_sync(opts)
        if dispatch_prof is not None:
            dispatch_prof.dump_stats(profile)
    total_s = time.monotonic() - t0
    conn = connect(run_dir, readonly=True)
    states = dict(conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall())
    conn.close()
    n = record["items"]
    window, makespan = record["t1"] - record["t0"], record["t_last"] - record["t0"]
    cpu, gcpu = record["cpu1"] - record["cpu0"], record["gcpu1"] - record["gcpu0"]
    return {
        "rc": rc,
        "items": int(n),
        "states": states,
        "run_total_s": round(total_s, 3),
        "dispatch_s": round(window, 3),
        "makespan_s": round(makespan, 3),
        # first video verified and recorded: from the dispatcher's start and from the run's start
        "first_video_s": round(record["t_first"] - record["t0"], 3),
        "first_video_from_run_start_s": round(record["t_first"] - t0, 3),
        "items_per_s": round(n / window, 1),
        "orchestrator_cpu_ms_per_item": round(cpu / n * 1e3, 3),
        "servers_cpu_ms_per_item": round(gcpu / n * 1e3, 3),
        "_t0": record["t0"],
        "_t1": record["t1"],
    }


def scenario(root: Path, name: str, replicas: int, delay_s: float, n_items: int, servicer: str,
             queue_depth: int, args: argparse.Namespace, premade: Path) -> dict[str, Any]:
    runs = []
    for rep in range(args.repeats):
        gens = Generators(root, f"{name}-{rep}", replicas, delay_s, args.frames, premade, servicer,
                          queue_depth)
        try:
            prof = args.profile if (args.profile is not None and rep == 0 and name == "instant") else None
            res = run_once(root, f"{name}-{rep}", gens, n_items, prof)
        finally:
            stats = gens.stop()
        t0, t1 = res.pop("_t0"), res.pop("_t1")
        busy = [b - a for rep_items in stats["device_busy"] for a, b in rep_items]
        res["device_items"] = len(busy)
        res["device_busy_s"] = round(sum(busy), 3)
        res["busy_fraction"] = round(sum(busy) / (replicas * (t1 - t0)), 4)
        res["device_idle_between_items_ms"] = _dist_ms(_gaps(stats["device_busy"]))
        # startup: dispatch start -> first item on each device; tail: last device end -> dispatch end
        firsts = [min(a for a, _ in r) for r in stats["device_busy"] if r]
        lasts = [max(b for _, b in r) for r in stats["device_busy"] if r]
        res["first_item_start_ms"] = _dist_ms([f - t0 for f in firsts])
        res["after_last_item_ms"] = _dist_ms([t1 - last for last in lasts])
        if queue_depth == 0:
            res["turnaround_ms"] = _dist_ms(_gaps(stats["handled"]))
        runs.append(res)
        print(f"{name} #{rep}: {json.dumps(res)}", flush=True)
    key = "items_per_s" if delay_s == 0 else "busy_fraction"
    vals = [r[key] for r in runs]
    return {
        "servicer": servicer,
        "queue_depth": queue_depth,
        "replicas": replicas,
        "item_s": delay_s,
        "items": n_items,
        "metric": key,
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="write the results JSON here")
    p.add_argument("--scenarios", default="instant,busy,busy_queued",
                   help="comma list of instant, busy, busy_queued, instant_real")
    p.add_argument("--instant-replicas", type=int, default=8)
    p.add_argument("--instant-items", type=int, default=2000)
    p.add_argument("--busy-replicas", type=int, default=8)
    p.add_argument("--busy-items", type=int, default=160)
    p.add_argument("--item-s", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--frames", choices=["smooth", "noise"], default="smooth")
    p.add_argument("--profile", type=Path, help="cProfile the first instant run into this file")
    p.add_argument("--workdir", type=Path, help="keep run directories here (default: a temp dir)")
    p.add_argument("--label", default="", help="free text stored in the JSON (e.g. before/after)")
    # child-process mode
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--replicas", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--servicer", default="real", help=argparse.SUPPRESS)
    p.add_argument("--queue-depth", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--premade", help=argparse.SUPPRESS)
    p.add_argument("--storage-root", help=argparse.SUPPRESS)
    p.add_argument("--port-file", help=argparse.SUPPRESS)
    p.add_argument("--stats", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        logging.basicConfig(level="WARNING")
        asyncio.run(serve(args))
        return 0
    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    table = {  # name: (replicas, item seconds, items, servicer, queue depth)
        "instant": (args.instant_replicas, 0.0, args.instant_items, "minimal", 0),
        "instant_real": (args.instant_replicas, 0.0, args.instant_items, "real", 0),
        "busy": (args.busy_replicas, args.item_s, args.busy_items, "real", 0),
        "busy_queued": (args.busy_replicas, args.item_s, args.busy_items, "real", 1),
    }
    wanted = args.scenarios.split(",")
    for name in wanted:
        if name not in table:
            p.error(f"unknown scenario {name!r}")
    from videophy_bench.common.storage import Storage, sha256_file
    from videophy_bench.common.video import encode_mp4
    from videophy_bench.orchestrator import artifacts

    with contextlib.ExitStack() as stack:
        root = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-orch-")))
        root.mkdir(parents=True, exist_ok=True)
        premade = root / "premade.mp4"
        t = time.perf_counter()
        for _ in range(5):
            encode_mp4(bench_frames(args.frames), premade, fps=24)  # the real encoder
        encode_ms = (time.perf_counter() - t) / 5 * 1e3
        st, sha = Storage(root), sha256_file(premade)
        t = time.perf_counter()
        for _ in range(200):
            artifacts.verify(st, "premade.mp4", sha)
        verify_ms = (time.perf_counter() - t) / 200 * 1e3
        out: dict[str, Any] = {
            "label": args.label,
            "command": " ".join(["python bench/bench_orchestrator.py", *(sys.argv[1:] if argv is None
                                                                          else argv)]),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version(), "load_avg_at_start": os.getloadavg()},
            "artifact": {"frames": args.frames, "shape": list(FRAMES_SHAPE), "bytes": premade.stat().st_size,
                         "real_encode_ms": round(encode_ms, 2), "verify_ms": round(verify_ms, 3)},
            "targets": {"instant_items_per_s": 500, "busy_fraction": 0.98},
            "scenarios": {},
        }
        print(json.dumps({k: out[k] for k in ("machine", "artifact")}), flush=True)
        for name in wanted:
            replicas, item_s, items, servicer, depth = table[name]
            out["scenarios"][name] = scenario(root, name, replicas, item_s, items, servicer, depth, args,
                                              premade)
        out["machine"]["load_avg_at_end"] = os.getloadavg()
        for name, s in out["scenarios"].items():
            print(f"{name}: {s['metric']} median {s['median']} (min {s['min']}, max {s['max']}; "
                  f"{s['replicas']} replicas, {s['items']} items)")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
