"""EvaluatorService: a thin gRPC servicer over the EvaluationEngine (protos <-> domain values only).

Batching, the request checks, the watchdog and per-video failures are the engine's
(services/evaluator/engine.py) and run without gRPC; domain errors are mapped onto status codes by
services/common/interceptors.py.
"""

from __future__ import annotations

from videophy_bench.common import judge_tasks
from videophy_bench.common.errors import InvalidRequest, NotReady
from videophy_bench.evaluator.engine import EvaluationEngine, VideoJudgeRequest
from videophy_bench.evaluator.judge import JudgeQuery
from videophy_bench.proto.v1 import evaluator_pb2, evaluator_pb2_grpc


def judge_request(request: evaluator_pb2.EvaluateRequest) -> VideoJudgeRequest:
    """The request in the engine's terms: wire task values become task names."""
    queries = []
    for q in request.queries:
        known = judge_tasks.task_by_wire(q.task)
        if known is None:
            raise InvalidRequest(f"unknown task {q.task}")
        queries.append(JudgeQuery(task=known.name, text=q.text))
    return VideoJudgeRequest(request.request_id, request.video_uri, queries, request.video_sha256)


class EvaluatorServicer(evaluator_pb2_grpc.EvaluatorServiceServicer):
    def __init__(self, engine: EvaluationEngine) -> None:
        self.engine = engine

    async def Evaluate(self, request, context):  # gRPC method name
        engine = self.engine
        async for event in engine.evaluate(judge_request(request)):
            if isinstance(event, str):
                yield evaluator_pb2.EvaluateEvent(request_id=request.request_id,
                                                  progress=evaluator_pb2.EvaluateProgress(phase=event))
                continue
            answers = [
                evaluator_pb2.JudgeAnswer(
                    task=judge_tasks.task(a.task).wire,
                    score=None if a.score is None else float(a.score),  # unset: no score (parser_error)
                    raw_text=a.raw_text,
                    parse_status=judge_tasks.PARSE_STATUSES[a.parse_status],
                )
                for a in event.answers
            ]
            result = evaluator_pb2.EvaluateResult(answers=answers, model=engine.model_proto(),
                                                  runtime=engine.runtime,
                                                  frame_indices=list(event.frame_indices),
                                                  timings_s=event.timings)
            yield evaluator_pb2.EvaluateEvent(request_id=request.request_id, result=result)

    async def GetInfo(self, request, context):
        engine = self.engine
        if engine.judge is None:
            raise NotReady("judge is still loading")
        return evaluator_pb2.EvaluatorInfo(model=engine.model_proto(), runtime=engine.runtime,
                                           tasks=[judge_tasks.task(t).wire for t in engine.judge.info.tasks],
                                           capacity=engine.capacity)
