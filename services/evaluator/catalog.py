"""The judge registry: the judge models the evaluator knows by name, and which `--model` values it accepts.

Each `JudgeSpec` names a factory as `module:callable`, imported only when the judge is loaded
(lm-evaluation-harness style), so this module stays torch-free: the orchestrator checks
`--judge-model` / `--videocon-model` against it before it creates or starts anything. Adding a judge
is one module (a factory returning a `videophy_bench.evaluator.judge.Judge`) and one `register_judge` entry.
The tasks themselves are registered in `videophy_bench.common.judge_tasks`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videophy_bench.common.judge_tasks import tasks_of

TINY = "tiny"  # random weights in the official layout, built offline
MPLUG_FACTORY = "videophy_bench.evaluator.judge:load_mplug_judge"
OPENAI_VLM = "openai-vlm"


@dataclass(frozen=True)
class JudgeSpec:
    """A judge by name. The factory is called as `factory(spec, source, **options)` and returns a
    Judge; `source` is the `--model` value (the name, a local directory or a Hub repo id)."""

    name: str
    factory: str  # "module:callable", imported lazily
    tasks: tuple[str, ...]  # judge-task names it answers (videophy_bench.common.judge_tasks)
    model_id: str = ""  # Hub repo of its weights; "" when built offline or given as --model
    description: str = ""
    # Asks a model endpoint instead of loading weights: needs --llm-endpoint/--llm-model, takes no device.
    endpoint: bool = False

    def load_factory(self) -> Callable[..., Any]:
        module, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module), attr)


_JUDGES: dict[str, JudgeSpec] = {}


def register_judge(spec: JudgeSpec) -> JudgeSpec:
    if spec.name in _JUDGES:
        raise ValueError(f"judge {spec.name!r} is already registered")
    if ":" not in spec.factory:
        raise ValueError(f"judge {spec.name!r}: factory must be 'module:callable', not {spec.factory!r}")
    _JUDGES[spec.name] = spec
    return spec


def unregister_judge(name: str) -> None:
    """Remove a judge (tests that register their own)."""
    _JUDGES.pop(name, None)


def judge_spec(name: str) -> JudgeSpec | None:
    return _JUDGES.get(name)


def judge_names() -> tuple[str, ...]:
    return tuple(_JUDGES)


# A checkpoint given as a local directory or Hub repo id: the mPLUG-Owl code, every task it has.
LOCAL = JudgeSpec("local", MPLUG_FACTORY, (*tasks_of("autoeval"), *tasks_of("videocon")))


HUB_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


def is_hub_repo_id(name: str) -> bool:
    """`owner/name` that is not a local path: fetched from the Hub."""
    return HUB_REPO_ID.fullmatch(name) is not None and not Path(name).expanduser().exists()


def endpoint_judge(name: str | None) -> bool:
    """Whether `--judge-model name` asks a model endpoint (needs --llm-endpoint and --llm-model)."""
    spec = judge_spec(name) if name else None
    return spec is not None and spec.endpoint


def unknown_judge(name: str) -> str | None:
    """Why the evaluator would refuse `--model name` (None: a name it knows, a directory or a Hub id)."""
    if name in _JUDGES or Path(name).expanduser().is_dir() or is_hub_repo_id(name):
        return None
    return (f"unknown judge model {name!r}: choose {', '.join(_JUDGES)}, a local checkpoint directory "
            "or a Hub repo id (owner/name)")


register_judge(JudgeSpec(TINY, MPLUG_FACTORY, (*tasks_of("autoeval"), *tasks_of("videocon")),
                         description="random weights in the official layout, built offline (tests)"))
register_judge(JudgeSpec("videophy_2_auto", MPLUG_FACTORY, tasks_of("autoeval"),
                         "videophysics/videophy_2_auto", "VideoPhy-2 AutoEval"))
register_judge(JudgeSpec("videocon_physics", MPLUG_FACTORY, tasks_of("videocon"),
                         "videophysics/videocon_physics", "VideoCon-Physics"))
register_judge(JudgeSpec(OPENAI_VLM, "videophy_bench.evaluator.vlm:load_vlm_judge", tasks_of("autoeval"),
                         description="the AutoEval rubric asked of a VLM over an OpenAI-compatible endpoint "
                         "(--llm-endpoint, --llm-model)", endpoint=True))
