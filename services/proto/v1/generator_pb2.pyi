from videophy_bench.proto.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerationOverrides(_message.Message):
    __slots__ = ("height", "width", "num_frames", "num_inference_steps", "guidance_scale", "guidance_scale_2", "flow_shift", "fps", "extra")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_2_FIELD_NUMBER: _ClassVar[int]
    FLOW_SHIFT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    height: int
    width: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float
    guidance_scale_2: float
    flow_shift: float
    fps: int
    extra: _containers.ScalarMap[str, float]
    def __init__(self, height: _Optional[int] = ..., width: _Optional[int] = ..., num_frames: _Optional[int] = ..., num_inference_steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., guidance_scale_2: _Optional[float] = ..., flow_shift: _Optional[float] = ..., fps: _Optional[int] = ..., extra: _Optional[_Mapping[str, float]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("request_id", "prompt_id", "prompt", "negative_prompt", "seed", "overrides", "output_prefix")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    prompt_id: str
    prompt: str
    negative_prompt: str
    seed: int
    overrides: GenerationOverrides
    output_prefix: str
    def __init__(self, request_id: _Optional[str] = ..., prompt_id: _Optional[str] = ..., prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., seed: _Optional[int] = ..., overrides: _Optional[_Union[GenerationOverrides, _Mapping]] = ..., output_prefix: _Optional[str] = ...) -> None: ...

class ResolvedParams(_message.Message):
    __slots__ = ("height", "width", "num_frames", "num_inference_steps", "guidance_scale", "guidance_scale_2", "flow_shift", "boundary_ratio", "fps", "negative_prompt", "seed", "max_sequence_length", "scheduler", "acceleration", "extra")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_2_FIELD_NUMBER: _ClassVar[int]
    FLOW_SHIFT_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_RATIO_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQUENCE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    ACCELERATION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    height: int
    width: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float
    guidance_scale_2: float
    flow_shift: float
    boundary_ratio: float
    fps: int
    negative_prompt: str
    seed: int
    max_sequence_length: int
    scheduler: str
    acceleration: str
    extra: _containers.ScalarMap[str, float]
    def __init__(self, height: _Optional[int] = ..., width: _Optional[int] = ..., num_frames: _Optional[int] = ..., num_inference_steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., guidance_scale_2: _Optional[float] = ..., flow_shift: _Optional[float] = ..., boundary_ratio: _Optional[float] = ..., fps: _Optional[int] = ..., negative_prompt: _Optional[str] = ..., seed: _Optional[int] = ..., max_sequence_length: _Optional[int] = ..., scheduler: _Optional[str] = ..., acceleration: _Optional[str] = ..., extra: _Optional[_Mapping[str, float]] = ...) -> None: ...

class GenerateProgress(_message.Message):
    __slots__ = ("phase", "step", "total_steps", "elapsed_s")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    phase: str
    step: int
    total_steps: int
    elapsed_s: float
    def __init__(self, phase: _Optional[str] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., elapsed_s: _Optional[float] = ...) -> None: ...

class GenerateResult(_message.Message):
    __slots__ = ("artifact", "num_frames", "fps", "duration_s", "height", "width", "params", "model", "runtime", "timings_s", "cached", "attempts", "prompt_tokens", "prompt_truncated", "negative_prompt_tokens", "negative_prompt_truncated")
    class TimingsSEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_S_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    artifact: _common_pb2.ArtifactRef
    num_frames: int
    fps: int
    duration_s: float
    height: int
    width: int
    params: ResolvedParams
    model: _common_pb2.ModelInfo
    runtime: _common_pb2.RuntimeInfo
    timings_s: _containers.ScalarMap[str, float]
    cached: bool
    attempts: int
    prompt_tokens: int
    prompt_truncated: bool
    negative_prompt_tokens: int
    negative_prompt_truncated: bool
    def __init__(self, artifact: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., num_frames: _Optional[int] = ..., fps: _Optional[int] = ..., duration_s: _Optional[float] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., params: _Optional[_Union[ResolvedParams, _Mapping]] = ..., model: _Optional[_Union[_common_pb2.ModelInfo, _Mapping]] = ..., runtime: _Optional[_Union[_common_pb2.RuntimeInfo, _Mapping]] = ..., timings_s: _Optional[_Mapping[str, float]] = ..., cached: _Optional[bool] = ..., attempts: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., prompt_truncated: _Optional[bool] = ..., negative_prompt_tokens: _Optional[int] = ..., negative_prompt_truncated: _Optional[bool] = ...) -> None: ...

class GenerateEvent(_message.Message):
    __slots__ = ("request_id", "progress", "result")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    progress: GenerateProgress
    result: GenerateResult
    def __init__(self, request_id: _Optional[str] = ..., progress: _Optional[_Union[GenerateProgress, _Mapping]] = ..., result: _Optional[_Union[GenerateResult, _Mapping]] = ...) -> None: ...

class PrepareRequest(_message.Message):
    __slots__ = ("prompts", "negative_prompt")
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    prompts: _containers.RepeatedScalarFieldContainer[str]
    negative_prompt: str
    def __init__(self, prompts: _Optional[_Iterable[str]] = ..., negative_prompt: _Optional[str] = ...) -> None: ...

class PrepareResponse(_message.Message):
    __slots__ = ("encoded", "cached", "elapsed_s")
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    encoded: int
    cached: int
    elapsed_s: float
    def __init__(self, encoded: _Optional[int] = ..., cached: _Optional[int] = ..., elapsed_s: _Optional[float] = ...) -> None: ...

class Preset(_message.Message):
    __slots__ = ("name", "model_id", "defaults", "family", "pipeline", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_id: str
    defaults: ResolvedParams
    family: str
    pipeline: str
    source: str
    def __init__(self, name: _Optional[str] = ..., model_id: _Optional[str] = ..., defaults: _Optional[_Union[ResolvedParams, _Mapping]] = ..., family: _Optional[str] = ..., pipeline: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("model", "runtime", "presets", "active_preset", "capacity")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_PRESET_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelInfo
    runtime: _common_pb2.RuntimeInfo
    presets: _containers.RepeatedCompositeFieldContainer[Preset]
    active_preset: str
    capacity: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelInfo, _Mapping]] = ..., runtime: _Optional[_Union[_common_pb2.RuntimeInfo, _Mapping]] = ..., presets: _Optional[_Iterable[_Union[Preset, _Mapping]]] = ..., active_preset: _Optional[str] = ..., capacity: _Optional[int] = ...) -> None: ...
