"""Dispatcher scaling on CPU: the real orchestrator against N = 1 ... 64 slowed-down generator replicas.

  python bench/bench_dispatch_scaling.py --out bench/results/cpu-2026-11-25/dispatch_scaling.json

Issue 15 asks whether the dispatcher itself scales to 64 replicas without becoming the bottleneck. A
replica here is a real generator server (the real `GeneratorServicer` behind a real `ServiceHost`, the
deployed queue depth 1, so capacity 2) whose backend sleeps `--item-s` per video and returns fixed tiny
frames; its servicer writes a pre-made real MP4 (see bench_orchestrator.py, whose machinery this reuses)
with its sidecar, fsynced, at the request's own URI. A replica's time per video is the sleep, so the
ideal throughput of N replicas is N / item_s, and everything below that is overhead: the
orchestrator's (GetInfo, Prepare, readiness, dispatch, sha256 + full-decode verification of every
video, ledger writes, exports) or the servers' (sharing the same 2 cores).

The servers run `--per-process` to a child process (64 replicas: 4 processes of 16), apart from the
orchestrator's process, so they share neither its event loop nor its GIL. The orchestrator is
`runner.run` end to end, without a judge.

After one unrecorded warm-up run (the orchestrator's lazy imports), per N (each `--repeats` times,
fresh run directory and fresh servers every time), `--items-per-replica` x N items:

- videos/hour over the dispatch window (`Dispatcher.run`: connecting, GetInfo, Prepare, every item,
  shutdown), against the ideal N x 3600 / item_s and against N x the measured one-replica rate
  (scaling efficiency, target >= 0.95);
- busy fraction (sum of backend time / (N x dispatch window));
- time to the first video verified and recorded, from the dispatcher's and from the run's start;
- the orchestrator's and the servers' CPU per video, and the orchestrator's CPU share of the window;
- idle time of a replica between two videos, and the spread of the replicas' first items (start-up).

`--profile-replicas 64` adds one more run at that N with cProfile over `Dispatcher.run` (the
orchestrator's main thread, i.e. the event loop; verification runs in its own threads) and stores the
top functions and the event loop's busy share (total minus time in epoll) in the JSON. It is not one
of the measured runs (cProfile slows the loop down).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_orchestrator import FRAMES_SHAPE, Generators, _dist_ms, _gaps, bench_frames, run_once


class Fleet:
    """`replicas` generator servers over ceil(replicas / per_process) child processes (`Generators`)."""

    def __init__(self, root: Path, name: str, replicas: int, per_process: int, item_s: float,
                 premade: Path) -> None:
        self.groups: list[Generators] = []
        full, rest = divmod(replicas, per_process)
        sizes = [per_process] * full + ([rest] if rest else [])
        try:
            for k, size in enumerate(sizes):
                self.groups.append(Generators(root, f"{name}-p{k}", size, item_s, "smooth", premade,
                                              "real", queue_depth=1))
        except BaseException:
            self.kill()
            raise
        self.addresses = [a for g in self.groups for a in g.addresses]

    def cpu_s(self) -> float:
        return sum(g.cpu_s() for g in self.groups)

    def kill(self) -> None:
        for g in self.groups:
            g.kill()

    def stop(self) -> dict[str, list]:
        stats: dict[str, list] = {"device_busy": [], "handled": []}
        for g in self.groups:
            part = g.stop()
            for key in stats:
                stats[key] += part[key]
        return stats


def one_run(root: Path, name: str, replicas: int, args: argparse.Namespace, premade: Path,
            profile: Path | None = None) -> dict[str, Any]:
    fleet = Fleet(root, name, replicas, args.per_process, args.item_s, premade)
    try:
        res = run_once(root, name, fleet, replicas * args.items_per_replica, profile,  # type: ignore[arg-type]
                       profile_dispatch_only=True, dispatch={"prepare_prompts": not args.no_prepare})
    finally:
        stats = fleet.stop()
    t0, t1 = res.pop("_t0"), res.pop("_t1")
    window = t1 - t0
    busy = [b - a for rep_items in stats["device_busy"] for a, b in rep_items]
    firsts = [min(a for a, _ in r) for r in stats["device_busy"] if r]
    lasts = [max(b for _, b in r) for r in stats["device_busy"] if r]
    per_replica = [len(r) for r in stats["device_busy"]]
    vph = res["items"] / window * 3600
    res.update(
        replicas=replicas,
        videos_per_hour=round(vph),
        ideal_videos_per_hour=round(replicas * 3600 / args.item_s),
        efficiency_vs_ideal=round(vph / (replicas * 3600 / args.item_s), 4),
        busy_fraction=round(sum(busy) / (replicas * window), 4),
        orchestrator_cpu_share=round(res["orchestrator_cpu_ms_per_item"] * res["items"] / 1e3 / window, 4),
        replicas_with_work=sum(1 for n in per_replica if n),
        items_per_replica_min_max=[min(per_replica), max(per_replica)],
        device_idle_between_items_ms=_dist_ms(_gaps(stats["device_busy"])),
        first_item_start_ms=_dist_ms([f - t0 for f in firsts]),
        after_last_item_ms=_dist_ms([t1 - last for last in lasts]),
        load_avg_after=os.getloadavg()[0],
    )
    return res


def profile_summary(path: Path, top: int) -> dict[str, Any]:
    """Top functions by own time, and the event loop's busy share (everything but waiting in epoll)."""
    st = pstats.Stats(str(path))
    rows = st.stats  # type: ignore[attr-defined]
    total = st.total_tt  # type: ignore[attr-defined]
    idle = sum(v[2] for (f, _, fn), v in rows.items() if "poll" in fn and ("select" in fn or "epoll" in fn))

    def name(key: tuple[str, int, str]) -> str:
        f, line, fn = key
        return f"{fn} ({Path(f).name}:{line})" if f != "~" else fn

    def pick(sort: int) -> list[dict[str, Any]]:
        ordered = sorted(rows.items(), key=lambda kv: kv[1][sort], reverse=True)[:top]
        return [{"function": name(k), "calls": v[1], "own_s": round(v[2], 3), "cumulative_s": round(v[3], 3)}
                for k, v in ordered]

    groups = {  # own time of the orchestrator's parts, by module
        "ledger (sqlite)": ("ledger.py", "sqlite3"),
        "dispatch.py": ("dispatch.py",),
        "grpc (aio + protobuf)": ("grpc", "_channel", "protobuf", "_message"),
        "asyncio machinery": ("asyncio", "base_events", "events.py", "tasks.py", "futures.py", "queues.py"),
    }
    by_group = {g: 0.0 for g in groups}
    for (f, _, fn), v in rows.items():
        for g, needles in groups.items():
            if any(n in f or n in fn for n in needles):
                by_group[g] += v[2]
                break
    return {
        "main_thread_total_s": round(total, 3),
        "waiting_in_epoll_s": round(idle, 3),
        "event_loop_busy_share": round((total - idle) / total, 4) if total else None,
        "own_time_by_part_s": {g: round(t, 3) for g, t in by_group.items()},
        "top_own_time": pick(2),
        "top_cumulative": pick(3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="write the results JSON here")
    p.add_argument("--replicas", default="1,2,4,8,16,32,64", help="comma list of replica counts")
    p.add_argument("--item-s", type=float, default=1.0, help="seconds per video of every replica")
    p.add_argument("--items-per-replica", type=int, default=16)
    p.add_argument("--per-process", type=int, default=16, help="generator servers per child process")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--profile-replicas", type=int, default=0, help="one extra cProfiled run at this N")
    p.add_argument("--profile-top", type=int, default=25)
    p.add_argument("--workdir", type=Path, help="keep run directories here (default: a temp dir)")
    p.add_argument("--no-prepare", action="store_true",
                   help="skip sending the run's prompts to each replica first (prepare_prompts)")
    p.add_argument("--label", default="")
    args = p.parse_args(argv)
    counts = [int(x) for x in args.replicas.split(",")]
    if any(n < 1 for n in counts) or args.per_process < 1 or args.item_s <= 0 or args.items_per_replica < 1:
        p.error("replica counts, --per-process, --item-s and --items-per-replica must be positive")
    import logging

    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from videophy_bench.common.video import encode_mp4

    with contextlib.ExitStack() as stack:
        root = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-")))
        root.mkdir(parents=True, exist_ok=True)
        premade = root / "premade.mp4"
        encode_mp4(bench_frames("smooth"), premade, fps=24)  # the real encoder, once
        out: dict[str, Any] = {
            "label": args.label,
            "command": " ".join(["python bench/bench_dispatch_scaling.py",
                                 *(sys.argv[1:] if argv is None else argv)]),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version(), "load_avg_at_start": os.getloadavg()},
            "setup": {"item_s": args.item_s, "items_per_replica": args.items_per_replica,
                      "per_process": args.per_process, "servicer": "real", "queue_depth": 1,
                      "judge": False, "verify": "sha256 + full decode", "prepare": not args.no_prepare,
                      "artifact": {"shape": list(FRAMES_SHAPE), "bytes": premade.stat().st_size}},
            "targets": {"scaling_efficiency": 0.95},
            "by_replicas": {},
        }
        one_run(root, "warmup", 1, args, premade)  # pays the orchestrator's lazy imports; not recorded
        for n in counts:
            runs = []
            for rep in range(args.repeats):
                res = one_run(root, f"n{n}-{rep}", n, args, premade)
                runs.append(res)
                print(f"N={n} #{rep}: {json.dumps(res)}", flush=True)
            out["by_replicas"][str(n)] = {
                "videos_per_hour_median": statistics.median(r["videos_per_hour"] for r in runs),
                "efficiency_vs_ideal_median": statistics.median(r["efficiency_vs_ideal"] for r in runs),
                "runs": runs,
            }
        base = out["by_replicas"].get("1")
        for n, entry in out["by_replicas"].items():
            if base:  # against N x one replica measured the same way
                entry["efficiency_vs_n_x_one"] = round(
                    entry["videos_per_hour_median"] / (int(n) * base["videos_per_hour_median"]), 4)
        if args.profile_replicas:
            prof = (args.out.parent if args.out else root) / f"dispatch_n{args.profile_replicas}.prof"
            prof.parent.mkdir(parents=True, exist_ok=True)
            n = args.profile_replicas
            res = one_run(root, f"profile-n{n}", n, args, premade, prof)
            out["profile"] = {"replicas": args.profile_replicas, "file": prof.name, "run": res,
                              **profile_summary(prof, args.profile_top)}
        out["machine"]["load_avg_at_end"] = os.getloadavg()
        print("N  videos/h  ideal  eff(ideal)  eff(Nx1)  first video s  orch CPU ms/video")
        for n, e in out["by_replicas"].items():
            r0 = e["runs"][0]
            print(f"{n:>2} {e['videos_per_hour_median']:>8} {r0['ideal_videos_per_hour']:>6} "
                  f"{e['efficiency_vs_ideal_median']:>10} {e.get('efficiency_vs_n_x_one', '-'):>9} "
                  f"{r0['first_video_s']:>13} {r0['orchestrator_cpu_ms_per_item']:>8}")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
