"""manifest.json: what a run was made with (configuration, models, prompt set, software, GPUs).

Rewritten at the start and end of every session of the run; `sessions` accumulates one entry per
invocation, and `replicas` every replica that served the run, so resumed runs stay auditable.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from videophy_bench.common.redact import redact_argv
from videophy_bench.common.runtime import library_versions
from videophy_bench.orchestrator.export import write_atomic
from videophy_bench.orchestrator.replicas import ReplicaInfo

MANIFEST_NAME = "manifest.json"
ORCHESTRATOR_LIBRARIES = (
    "videophy-bench",
    "grpcio",
    "protobuf",
    "tenacity",
    "pandas",
    "huggingface-hub",
    "rich",
)


def read(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def public_bytes(run_dir: Path) -> bytes | None:
    """manifest.json as it may leave the machine (every session's argv redacted; a manifest written
    before redaction may hold secrets), or None when there is none."""
    path = Path(run_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    raw = path.read_bytes()
    doc = json.loads(raw)
    sessions = doc.get("sessions") or []
    clean = [{**s, "argv": redact_argv(s.get("argv") or [])} for s in sessions]
    if clean == sessions:
        return raw
    return (json.dumps({**doc, "sessions": clean}, indent=1, default=str) + "\n").encode()


def write(
    run_dir: Path,
    *,
    config: dict[str, Any],
    config_hash: str,
    prompt_set: dict[str, Any],
    argv: list[str],
    replicas: dict[str, ReplicaInfo],
    counts: dict[str, int] | None = None,
    session_start: float,
    finished: bool = False,
    video_sources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    old = read(run_dir)
    seen = {f"{r['kind']}@{r['address']}": r for r in old.get("replicas", [])}
    for info in replicas.values():
        seen[f"{info.kind}@{info.address}"] = asdict(info)
    sessions = [{**s, "argv": redact_argv(s.get("argv") or [])} for s in old.get("sessions", [])
                if s.get("started") != session_start]  # (older manifests kept secrets: masked now)
    sessions.append(
        {
            "started": session_start,
            "ended": time.time() if finished else None,
            "argv": redact_argv(argv),
            "counts": counts or {},
        }
    )
    gpus = sorted(
        {
            f"{r['device_name']} ({r['hostname']})"
            for r in seen.values()
            if str(r.get("device", "")).startswith("cuda")
        }
    )
    models = {
        kind: sorted(
            {(r["preset"], r["model_id"], r["revision"]) for r in seen.values() if r["kind"] == kind}
        )
        for kind in ("generator", "evaluator")
    }
    manifest = {
        "name": run_dir.name,
        "created": old.get("created", session_start),
        "config_hash": config_hash,
        "config": config,
        "prompt_set": prompt_set,
        "models": {
            k: [{"preset": p, "model_id": m, "revision": r} for p, m, r in v] for k, v in models.items()
        },
        "gpus_seen": gpus,
        "replicas": sorted(seen.values(), key=lambda r: (r["kind"], r["address"])),
        "orchestrator": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "library_versions": library_versions(ORCHESTRATOR_LIBRARIES),
        },
        "sessions": sessions,
    }
    if video_sources:  # `run --videos`: where the judged videos came from, per arm
        manifest["video_sources"] = video_sources
    write_atomic(run_dir / MANIFEST_NAME, json.dumps(manifest, indent=1, default=str) + "\n")
    return manifest
