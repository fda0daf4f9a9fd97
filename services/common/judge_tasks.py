"""The judge-task registry: every judge task the project knows, as one typed record each.

Every list of tasks in the tree is derived from here (the evaluator's wire mapping and prompts, the
dispatcher's routing, the ledger's migration, results.csv's score columns, the analysis' column
types), so adding a task is one `register_task` call. Torch-free and grpc-free (only the generated
proto enums), so the orchestrator, the evaluator and the analysis can all import it.

A task's `wire` value is its `videophy.v1.JudgeTask` enum value (proto3 enums are open: a value the
proto file does not name still travels, so a task registered at runtime can be routed end to end).
The judges (models) that answer tasks are registered in `videophy_bench.evaluator.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass

from videophy_bench.proto.v1 import evaluator_pb2


@dataclass(frozen=True)
class JudgeFamily:
    """Tasks answered by one kind of judge model; the run configuration records that model under
    `model_key`/`revision_key` (RunConfig fields, kept as they are so old runs keep their hash)."""

    name: str
    title: str
    model_key: str
    revision_key: str


@dataclass(frozen=True)
class JudgeTask:
    name: str  # ledger `answers.task`, results.csv column, --judge-tasks value
    wire: int  # videophy.v1.JudgeTask enum value
    family: str  # a JudgeFamily name
    text_field: str | None  # the item text sent with the query: 'caption', 'rule' or None
    scale: tuple[float, float]  # (min, max) of a score
    pass_threshold: float | None  # a score at or above it passes (joint: SA and PC both pass)
    generative: bool  # the judge generates text: raw text and a parse status are kept and exported
    default: bool = False  # judged when --judge-tasks is not given (rule-text tasks: where rules exist)

    @property
    def needs_text(self) -> bool:
        return self.text_field is not None


_FAMILIES: dict[str, JudgeFamily] = {}
_TASKS: dict[str, JudgeTask] = {}  # registration order is the canonical order

PARSE_STATUSES: dict[str, int] = {
    "parsed": evaluator_pb2.PARSE_STATUS_PARSED,
    "digit_fallback": evaluator_pb2.PARSE_STATUS_DIGIT_FALLBACK,
    "unparseable": evaluator_pb2.PARSE_STATUS_UNPARSEABLE,
    "probability": evaluator_pb2.PARSE_STATUS_PROBABILITY,
    "parser_error": evaluator_pb2.PARSE_STATUS_PARSER_ERROR,
}
PARSE_NAMES: dict[int, str] = {v: k for k, v in PARSE_STATUSES.items()}


def register_family(family: JudgeFamily) -> JudgeFamily:
    if family.name in _FAMILIES:
        raise ValueError(f"judge family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def register_task(task: JudgeTask) -> JudgeTask:
    """Add a task; its name and wire value must be new, its family registered."""
    if task.name in _TASKS:
        raise ValueError(f"judge task {task.name!r} is already registered")
    if task.wire <= 0 or any(t.wire == task.wire for t in _TASKS.values()):
        raise ValueError(f"judge task {task.name!r}: wire value {task.wire} is taken or invalid")
    if task.family not in _FAMILIES:
        raise ValueError(f"judge task {task.name!r}: unknown family {task.family!r}")
    if task.text_field not in (None, "caption", "rule"):
        raise ValueError(f"judge task {task.name!r}: text_field must be caption, rule or None")
    _TASKS[task.name] = task
    return task


def unregister_task(name: str) -> None:
    """Remove a task (tests that register their own)."""
    _TASKS.pop(name, None)


def task(name: str) -> JudgeTask:
    try:
        return _TASKS[name]
    except KeyError:
        raise ValueError(f"unknown judge task {name!r}; expected one of {', '.join(_TASKS)}") from None


def task_names() -> tuple[str, ...]:
    """Every task, canonical order."""
    return tuple(_TASKS)


def tasks() -> tuple[JudgeTask, ...]:
    return tuple(_TASKS.values())


def task_by_wire(wire: int) -> JudgeTask | None:
    return next((t for t in _TASKS.values() if t.wire == wire), None)


def family(name: str) -> JudgeFamily:
    return _FAMILIES[name]


def families() -> tuple[JudgeFamily, ...]:
    return tuple(_FAMILIES.values())


def tasks_of(family_name: str) -> tuple[str, ...]:
    return tuple(t.name for t in _TASKS.values() if t.family == family_name)


def generative_tasks() -> tuple[str, ...]:
    return tuple(t.name for t in _TASKS.values() if t.generative)


def default_tasks(has_rules: bool) -> tuple[str, ...]:
    return tuple(t.name for t in _TASKS.values() if t.default and (has_rules or t.text_field != "rule"))


def applies(name: str, rule: str) -> bool:
    """Whether an item with this rule text is judged on the task (a rule task needs a rule)."""
    return task(name).text_field != "rule" or bool(rule)


def parse_tasks(spec: str) -> tuple[str, ...]:
    """`sa,pc,videocon_sa` -> canonical order; raises ValueError naming an unknown task."""
    names = [t.strip().lower() for t in spec.split(",") if t.strip()]
    unknown = [t for t in names if t not in _TASKS]
    if unknown:
        raise ValueError(
            f"unknown judge task(s) {', '.join(unknown)}; expected some of {', '.join(_TASKS)}"
        )
    if not names:
        raise ValueError("no judge task given")
    return tuple(t for t in _TASKS if t in names)


def result_columns() -> tuple[str, ...]:
    """The per-task columns of results.csv: generative scores, their parse statuses, their raw
    answers, then the other scores (the layout results.csv has always had)."""
    gen = generative_tasks()
    other = tuple(t.name for t in _TASKS.values() if not t.generative)
    return (*gen, *(f"{t}_parse" for t in gen), *(f"{t}_raw" for t in gen), *other)


register_family(JudgeFamily("autoeval", "VideoPhy-2 AutoEval", "judge_model", "judge_revision"))
register_family(JudgeFamily("videocon", "VideoCon-Physics", "videocon_model", "videocon_revision"))
_AUTOEVAL, _PROBABILITY = (1.0, 5.0), (0.0, 1.0)
_WIRE = evaluator_pb2
register_task(JudgeTask("sa", _WIRE.JUDGE_TASK_SA, "autoeval", text_field="caption", scale=_AUTOEVAL,
                        pass_threshold=4.0, generative=True, default=True))
register_task(JudgeTask("pc", _WIRE.JUDGE_TASK_PC, "autoeval", text_field=None, scale=_AUTOEVAL,
                        pass_threshold=4.0, generative=True, default=True))
# rule: 0 violated, 1 followed, 2 indeterminate (no pass threshold)
register_task(JudgeTask("rule", _WIRE.JUDGE_TASK_RULE, "autoeval", text_field="rule", scale=(0.0, 2.0),
                        pass_threshold=None, generative=True, default=True))
register_task(JudgeTask("videocon_sa", _WIRE.JUDGE_TASK_VIDEOCON_SA, "videocon", text_field="caption",
                        scale=_PROBABILITY, pass_threshold=None, generative=False))
register_task(JudgeTask("videocon_pc", _WIRE.JUDGE_TASK_VIDEOCON_PC, "videocon", text_field=None,
                        scale=_PROBABILITY, pass_threshold=None, generative=False))
