"""Reading back what W&B's offline mode wrote (WANDB_MODE=offline, WANDB_DIR=...): a run's config,
summary, artifacts and media, as `wandb sync` would upload them.

Offline runs keep config and summary in `run-<id>.wandb`, a log of protobuf `Record`s (wandb.proto) in
W&B's LevelDB-style framing: a 7-byte header (":W&B", magic, version), then 32 KiB blocks of chunks,
each with a 7-byte header (CRC32, length, type: 1 full, 2 first, 3 middle, 4 last).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    out, pos, chunks = [], HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # the block's tail is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        pos += HEADER
        if kind == 0 and length == 0:  # zero padding up to the next block
            pos += (BLOCK - pos % BLOCK) % BLOCK
            continue
        chunks += data[pos:pos + length]
        pos += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            out.append(record)
            chunks = b""
    return out


def _set(target: dict[str, Any], item: Any) -> None:
    keys = [item.key] if item.key else list(item.nested_key)
    for k in keys[:-1]:
        target = target.setdefault(k, {})
    target[keys[-1]] = json.loads(item.value_json)


@dataclass
class OfflineRun:
    directory: Path
    run_id: str = ""
    name: str = ""
    project: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[Any] = field(default_factory=list)  # ArtifactRecord protos (manifest: staged files)


def read_offline_run(directory: Path) -> OfflineRun:
    [log] = directory.glob("run-*.wandb")
    run = OfflineRun(directory)
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.name, run.project, run.tags = r.run_id, r.display_name, r.project, list(r.tags)
            for item in r.config.update:
                _set(run.config, item)
        elif kind == "config":
            for item in record.config.update:
                _set(run.config, item)
        elif kind == "summary":
            for item in record.summary.update:
                _set(run.summary, item)
        elif kind == "history":
            step: dict[str, Any] = {}
            for item in record.history.item:
                _set(step, item)
            run.history.append(step)
        elif kind == "artifact":
            run.artifacts.append(record.artifact)
    return run


def offline_runs(wandb_dir: Path) -> list[OfflineRun]:
    """Every offline run under WANDB_DIR, oldest first."""
    return [read_offline_run(d) for d in sorted((wandb_dir / "wandb").glob("offline-run-*"))]
