"""Typed records of a run: its configuration (and hash), the work items and their derived ids/seeds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

STATES = ("pending", "generating", "generated", "judged", "failed")
# Videos per prompt (`--seeds`; seed indices 0..MAX_SEEDS-1): far beyond any study (the paper uses
# one), small enough that a typo cannot make a ledger of billions of rows.
MAX_SEEDS = 1000
BASE_ARM = "base"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunConfig:
    """Everything a video or a score depends on. Two runs with equal configs may share a directory.

    Replica addresses, `--limit`, `--ids`, `--seeds` and `--hard-only` are deliberately absent: they
    select work, they do not change it, so a run can be extended.
    """

    generator_model: str  # preset name reported by the generator (e.g. wan2.2-ti2v-5b, tiny)
    generator_model_id: str
    generator_revision: str
    overrides: dict[str, float | int] = field(default_factory=dict)
    negative_prompt: str | None = None  # None: the model family's official one
    upsampled: bool = False
    judge_model: str | None = None  # model id of the evaluator, None when not judging
    judge_revision: str = ""
    run_seed: int = 0
    prompt_set_sha256: str = ""
    # Judge tasks when not the default (sa,pc plus rule when the prompt set has rules), canonical order.
    judge_tasks: tuple[str, ...] | None = None
    videocon_model: str | None = None  # model id answering videocon_sa/videocon_pc, when requested
    videocon_revision: str = ""
    judge_only: bool = False  # `--videos`: existing videos judged, no generator (generator_* empty)

    def as_dict(self) -> dict[str, Any]:
        """The hashed configuration. Keys added later are left out while unset, so runs made before
        them keep their hash (and can be resumed)."""
        out = asdict(self)
        for key in ("judge_tasks", "videocon_model", "videocon_revision", "judge_only"):
            if not out[key]:
                del out[key]
        if out.get("judge_tasks"):
            out["judge_tasks"] = list(out["judge_tasks"])
        return out

    @property
    def hash(self) -> str:
        return config_hash(self.as_dict())


def config_hash(config: dict[str, Any]) -> str:
    return _sha(json.dumps(config, sort_keys=True, ensure_ascii=False, separators=(",", ":")))[:16]


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys whose values differ (missing counts as different), formatted `key: old -> new`."""
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key, "<unset>") != new.get(key, "<unset>"):
            out.append(f"{key}: {old.get(key, '<unset>')!r} -> {new.get(key, '<unset>')!r}")
    return out


def derive_seed(run_seed: int, prompt_id: str, index: int) -> int:
    """Seed of the `index`-th video of a prompt: 63 bits of sha256(run_seed, prompt_id, index)."""
    return int(_sha(f"{run_seed}:{prompt_id}:{index}")[:16], 16) & ((1 << 63) - 1)


def seed_indices(
    run_seed: int, keys: Iterable[tuple[str, int]], limit: int
) -> dict[tuple[str, int], int]:
    """(prompt_id, seed) -> k where seed == derive_seed(run_seed, prompt_id, k), k in 0..limit-1: the
    seed index the user chose (`--seeds N` makes k = 0..N-1). A seed not derived so (an item made by
    another rule) is left out. Each prompt costs only as many hashes as its highest index + 1."""
    wanted: dict[str, set[int]] = {}
    for prompt_id, seed in keys:
        wanted.setdefault(prompt_id, set()).add(int(seed))
    out: dict[tuple[str, int], int] = {}
    for prompt_id, seeds in wanted.items():
        left = set(seeds)
        for k in range(limit):
            if not left:
                break
            seed = derive_seed(run_seed, prompt_id, k)
            if seed in left:
                out[(prompt_id, seed)] = k
                left.discard(seed)
    return out


def request_id(prompt_id: str, seed: int, round_: int, arm: str, cfg_hash: str) -> str:
    """Short, file-name safe, deterministic id of one item (also the generator's idempotency key)."""
    return "r" + _sha(f"{prompt_id}|{seed}|{round_}|{arm}|{cfg_hash}")[:20]


@dataclass
class WorkItem:
    """One video to make and judge. `caption` is judged; `gen_prompt` is generated from."""

    prompt_id: str
    seed: int
    caption: str
    gen_prompt: str
    config_hash: str
    round: int = 0
    arm: str = BASE_ARM
    rule: str = ""
    gen_attempts: int = 0
    judge_attempts: int = 0
    video_uri: str = ""
    sha256: str = ""
    answered: frozenset[str] = frozenset()  # judge tasks with an answer in the ledger (resume)

    @property
    def request_id(self) -> str:
        return request_id(self.prompt_id, self.seed, self.round, self.arm, self.config_hash)
