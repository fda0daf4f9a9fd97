"""The judge-task and judge registries: every task list in the tree is theirs, and a task and judge
registered at run time are parsed, routed, stored, exported and loaded (lazily) like the built-in ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from videophy_bench.common import csvio, judge_tasks
from videophy_bench.common.judge_tasks import JudgeTask
from videophy_bench.evaluator import catalog
from videophy_bench.evaluator.catalog import JudgeSpec
from videophy_bench.orchestrator import runner
from videophy_bench.orchestrator.analysis import loading
from videophy_bench.orchestrator.dispatch import Dispatcher, DispatchOptions
from videophy_bench.orchestrator.export import export_run
from videophy_bench.orchestrator.items import WorkItem
from videophy_bench.orchestrator.judge_queue import partition_tasks
from videophy_bench.orchestrator.ledger import Ledger, StoredAnswer
from videophy_bench.orchestrator.replicas import replica_info
from videophy_bench.orchestrator.results_schema import RESULTS_COLUMNS, results_columns
from videophy_bench.proto.v1 import evaluator_pb2

BUILT_IN = ("sa", "pc", "rule", "videocon_sa", "videocon_pc")
FAKE_MODULE = "fake_judge_for_registry_test"


def test_every_task_list_is_the_registrys() -> None:
    assert judge_tasks.task_names() == BUILT_IN
    # The wire: each proto enum value names its registered task (and only those are registered).
    wire = {v: n for n, v in evaluator_pb2.JudgeTask.items() if v}
    assert {t.wire: f"JUDGE_TASK_{t.name.upper()}" for t in judge_tasks.tasks()} == wire
    assert set(judge_tasks.PARSE_STATUSES.values()) == {v for v in evaluator_pb2.ParseStatus.values() if v}
    # The evaluator's prompts (mPLUG-Owl judges) cover the tasks of its two families.
    from videophy_bench.evaluator.model.templates import PROMPTS

    assert tuple(PROMPTS) == (*judge_tasks.tasks_of("autoeval"), *judge_tasks.tasks_of("videocon"))
    assert catalog.judge_spec("videophy_2_auto").tasks == ("sa", "pc", "rule")
    assert catalog.judge_spec("videocon_physics").tasks == ("videocon_sa", "videocon_pc")
    assert catalog.judge_spec("tiny").tasks == BUILT_IN == catalog.LOCAL.tasks
    # results.csv: the per-task columns where they always were; the analysis types them as scores.
    assert RESULTS_COLUMNS[RESULTS_COLUMNS.index("sha256") + 1 : RESULTS_COLUMNS.index("joint")] == (
        "sa", "pc", "rule", "sa_parse", "pc_parse", "rule_parse", "sa_raw", "pc_raw", "rule_raw",
        "videocon_sa", "videocon_pc")  # fmt: skip
    assert set(BUILT_IN) <= set(loading.FLOAT_COLUMNS)
    assert {"sa_raw", "pc_raw", "rule_raw"} <= set(loading.VERBATIM_COLUMNS)
    assert loading.PASS_THRESHOLD == judge_tasks.task("sa").pass_threshold == 4.0
    # Defaults, rule-text tasks, and the run configuration keys of each family's model.
    assert judge_tasks.default_tasks(has_rules=True) == ("sa", "pc", "rule")
    assert judge_tasks.default_tasks(has_rules=False) == ("sa", "pc")
    assert [(f.model_key, f.revision_key) for f in judge_tasks.families()] == [
        ("judge_model", "judge_revision"), ("videocon_model", "videocon_revision")]  # fmt: skip
    assert judge_tasks.parse_tasks("videocon_pc, SA") == ("sa", "videocon_pc")
    with pytest.raises(ValueError, match="unknown judge task"):
        judge_tasks.parse_tasks("sa,nope")


@pytest.fixture
def fake_judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A task `motion` (wire 99, which the proto file does not name) and a judge `fake-motion` whose
    factory lives in a module that is not imported until the judge is loaded."""
    (tmp_path / f"{FAKE_MODULE}.py").write_text(
        "LOADED = []\n"
        "def load(spec, source, **options):\n"
        "    LOADED.append((spec.name, source, options))\n"
        "    return 'a judge'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    task = judge_tasks.register_task(JudgeTask("motion", 99, "autoeval", text_field="caption",
                                               scale=(1.0, 5.0), pass_threshold=4.0, generative=True))
    spec = catalog.register_judge(JudgeSpec("fake-motion", f"{FAKE_MODULE}:load", ("motion",)))
    try:
        yield task, spec
    finally:
        judge_tasks.unregister_task("motion")
        catalog.unregister_judge("fake-motion")
        sys.modules.pop(FAKE_MODULE, None)


def test_a_registered_task_and_judge_show_up_everywhere(fake_judge, tmp_path: Path) -> None:
    task, _ = fake_judge
    with pytest.raises(ValueError, match="already registered"):
        judge_tasks.register_task(task)
    with pytest.raises(ValueError, match="taken"):
        judge_tasks.register_task(JudgeTask("other", 99, "autoeval", None, (0.0, 1.0), None, False))
    # Named on the command line, checked like the built-in ones.
    assert judge_tasks.parse_tasks("motion,sa") == ("sa", "motion")
    assert catalog.unknown_judge("fake-motion") is None and "fake-motion" in catalog.judge_names()

    # Loaded through the registry: the factory's module is imported only now.
    from videophy_bench.evaluator.judge import load_judge

    assert FAKE_MODULE not in sys.modules
    assert load_judge("fake-motion", device="cpu", dtype="float32", revision="r1") == "a judge"
    assert sys.modules[FAKE_MODULE].LOADED == [
        ("fake-motion", "fake-motion", {"device": "cpu", "dtype": "float32", "revision": "r1"})]

    # Routed: a replica that reports wire 99 serves `motion`; its jobs go to it; the query carries the
    # caption (its text_field) and wire 99.
    info = evaluator_pb2.EvaluatorInfo(tasks=[evaluator_pb2.JUDGE_TASK_SA, 99], capacity=1)
    assert replica_info("evaluator", "h:1", info).tasks == ["sa", "motion"]
    pools = {frozenset({"sa", "pc"}), frozenset({"motion"})}
    assert partition_tasks(frozenset({"sa", "pc", "motion"}), pools) == [frozenset({"sa", "pc"}),
                                                                         frozenset({"motion"})]  # fmt: skip
    item = WorkItem("p1", 1, "a ball falls", "a ball falls", "cfg", video_uri="v.mp4")
    led = Ledger(tmp_path)
    dispatcher = Dispatcher(led, None, None, [], [], DispatchOptions(judge_tasks=("sa", "motion")))  # type: ignore[arg-type]
    request = dispatcher._judge_request(item, frozenset({"motion"}))
    assert [(q.task, q.text) for q in request.queries] == [(99, "a ball falls")]
    assert dispatcher._required(item) == frozenset({"sa", "motion"})

    # Stored one row per (item, task) and exported as its own columns (score, parse status, raw text).
    led.add_items([item])
    led.record_answers(item.request_id, [StoredAnswer("motion", 3.0, "parsed", "Three."),
                                         StoredAnswer("sa", 5.0, "parsed", "5")],
                       replica="h:1", seconds=0.1, state="judged")  # fmt: skip
    assert led.answered([item.request_id]) == {item.request_id: frozenset({"sa", "motion"})}
    export_run(tmp_path, led.conn)
    led.close()
    header, data = csvio.read_rows(tmp_path / "results.csv")
    assert tuple(header) == results_columns() and {"motion", "motion_parse", "motion_raw"} <= set(header)
    row = dict(zip(header, data[0], strict=True))
    got = [row[c] for c in ("motion", "motion_parse", "motion_raw", "sa")]
    assert got == ["3.0", "parsed", "Three.", "5.0"]
    # The analysis reads it as an extra (text) column: its typed score columns are fixed at import.
    assert "motion" not in RESULTS_COLUMNS


def test_the_registered_judge_in_run_configuration(fake_judge) -> None:
    """The model recorded for a task's family is the replica that serves it (runner._expected_tasks)."""
    info = replica_info("evaluator", "h:1", evaluator_pb2.EvaluatorInfo(tasks=[99], capacity=1))
    assert runner._expected_tasks(("sa", "motion"), {"h:1": info}) == {"motion": info}
