"""GeneratorService: a thin gRPC servicer over the GenerationEngine (protos <-> domain values only).

Everything the service does (admission, the device thread, OOM fallback, decode overlap, idempotency,
the watchdog) is the engine's (services/generator/engine.py) and runs without gRPC; domain errors are
mapped onto status codes by services/common/interceptors.py.
"""

from __future__ import annotations

import threading

from videophy_bench.generator.engine import GenerationEngine, StepProgress, VideoRequest, params_proto
from videophy_bench.generator.presets import OVERRIDE_FIELDS, PRESETS, resolve
from videophy_bench.proto.v1 import generator_pb2, generator_pb2_grpc


def video_request(req: generator_pb2.GenerateRequest) -> VideoRequest:
    o = req.overrides
    return VideoRequest(
        request_id=req.request_id, prompt_id=req.prompt_id, prompt=req.prompt, seed=req.seed,
        negative_prompt=req.negative_prompt if req.HasField("negative_prompt") else None,
        overrides={**{f: getattr(o, f) for f in OVERRIDE_FIELDS if o.HasField(f)},
                   **({"extra": dict(o.extra)} if o.extra else {})},
        output_prefix=req.output_prefix,
    )


class GeneratorServicer(generator_pb2_grpc.GeneratorServiceServicer):
    def __init__(self, engine: GenerationEngine) -> None:
        self.engine = engine

    async def Generate(self, request, context):
        work = self.engine.plan(video_request(request))
        stop = threading.Event()
        # Cancel, deadline or a lost client end the RPC: the engine then stops at its next step.
        context.add_done_callback(lambda _: stop.set())
        async for event in self.engine.generate(work, stop):
            if isinstance(event, StepProgress):
                progress = generator_pb2.GenerateProgress(phase=event.phase, step=event.step,
                                                          total_steps=event.total_steps,
                                                          elapsed_s=event.elapsed_s)
                yield generator_pb2.GenerateEvent(request_id=request.request_id, progress=progress)
            else:
                yield generator_pb2.GenerateEvent(request_id=request.request_id, result=event)

    async def Prepare(self, request, context):
        negative = request.negative_prompt if request.HasField("negative_prompt") else None
        encoded, cached, seconds = await self.engine.prepare(list(request.prompts), negative)
        return generator_pb2.PrepareResponse(encoded=encoded, cached=cached, elapsed_s=seconds)

    async def GetInfo(self, request, context):
        engine = self.engine
        presets = [
            generator_pb2.Preset(name=p.name, model_id=p.model_id, defaults=params_proto(resolve(p, seed=0)),
                                 family=p.family, pipeline=p.family_spec.pipeline, source=p.source)
            for p in PRESETS.values()
        ]
        return generator_pb2.GetInfoResponse(model=engine.model_proto(), runtime=engine.runtime,
                                             presets=presets, active_preset=engine.backend.preset.name,
                                             capacity=engine.capacity)
