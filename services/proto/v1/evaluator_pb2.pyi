from videophy_bench.proto.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JudgeTask(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JUDGE_TASK_UNSPECIFIED: _ClassVar[JudgeTask]
    JUDGE_TASK_SA: _ClassVar[JudgeTask]
    JUDGE_TASK_PC: _ClassVar[JudgeTask]
    JUDGE_TASK_RULE: _ClassVar[JudgeTask]
    JUDGE_TASK_VIDEOCON_SA: _ClassVar[JudgeTask]
    JUDGE_TASK_VIDEOCON_PC: _ClassVar[JudgeTask]

class ParseStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARSE_STATUS_UNSPECIFIED: _ClassVar[ParseStatus]
    PARSE_STATUS_PARSED: _ClassVar[ParseStatus]
    PARSE_STATUS_DIGIT_FALLBACK: _ClassVar[ParseStatus]
    PARSE_STATUS_UNPARSEABLE: _ClassVar[ParseStatus]
    PARSE_STATUS_PROBABILITY: _ClassVar[ParseStatus]
    PARSE_STATUS_PARSER_ERROR: _ClassVar[ParseStatus]
JUDGE_TASK_UNSPECIFIED: JudgeTask
JUDGE_TASK_SA: JudgeTask
JUDGE_TASK_PC: JudgeTask
JUDGE_TASK_RULE: JudgeTask
JUDGE_TASK_VIDEOCON_SA: JudgeTask
JUDGE_TASK_VIDEOCON_PC: JudgeTask
PARSE_STATUS_UNSPECIFIED: ParseStatus
PARSE_STATUS_PARSED: ParseStatus
PARSE_STATUS_DIGIT_FALLBACK: ParseStatus
PARSE_STATUS_UNPARSEABLE: ParseStatus
PARSE_STATUS_PROBABILITY: ParseStatus
PARSE_STATUS_PARSER_ERROR: ParseStatus

class JudgeQuery(_message.Message):
    __slots__ = ("task", "text")
    TASK_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    task: JudgeTask
    text: str
    def __init__(self, task: _Optional[_Union[JudgeTask, str]] = ..., text: _Optional[str] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("request_id", "video_uri", "queries", "video_sha256")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VIDEO_URI_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    VIDEO_SHA256_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    video_uri: str
    queries: _containers.RepeatedCompositeFieldContainer[JudgeQuery]
    video_sha256: str
    def __init__(self, request_id: _Optional[str] = ..., video_uri: _Optional[str] = ..., queries: _Optional[_Iterable[_Union[JudgeQuery, _Mapping]]] = ..., video_sha256: _Optional[str] = ...) -> None: ...

class JudgeAnswer(_message.Message):
    __slots__ = ("task", "score", "raw_text", "parse_status")
    TASK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RAW_TEXT_FIELD_NUMBER: _ClassVar[int]
    PARSE_STATUS_FIELD_NUMBER: _ClassVar[int]
    task: JudgeTask
    score: float
    raw_text: str
    parse_status: ParseStatus
    def __init__(self, task: _Optional[_Union[JudgeTask, str]] = ..., score: _Optional[float] = ..., raw_text: _Optional[str] = ..., parse_status: _Optional[_Union[ParseStatus, str]] = ...) -> None: ...

class EvaluateProgress(_message.Message):
    __slots__ = ("phase", "elapsed_s")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    phase: str
    elapsed_s: float
    def __init__(self, phase: _Optional[str] = ..., elapsed_s: _Optional[float] = ...) -> None: ...

class EvaluateResult(_message.Message):
    __slots__ = ("answers", "model", "runtime", "frame_indices", "timings_s")
    class TimingsSEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDICES_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_S_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[JudgeAnswer]
    model: _common_pb2.ModelInfo
    runtime: _common_pb2.RuntimeInfo
    frame_indices: _containers.RepeatedScalarFieldContainer[int]
    timings_s: _containers.ScalarMap[str, float]
    def __init__(self, answers: _Optional[_Iterable[_Union[JudgeAnswer, _Mapping]]] = ..., model: _Optional[_Union[_common_pb2.ModelInfo, _Mapping]] = ..., runtime: _Optional[_Union[_common_pb2.RuntimeInfo, _Mapping]] = ..., frame_indices: _Optional[_Iterable[int]] = ..., timings_s: _Optional[_Mapping[str, float]] = ...) -> None: ...

class EvaluateEvent(_message.Message):
    __slots__ = ("request_id", "progress", "result")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    progress: EvaluateProgress
    result: EvaluateResult
    def __init__(self, request_id: _Optional[str] = ..., progress: _Optional[_Union[EvaluateProgress, _Mapping]] = ..., result: _Optional[_Union[EvaluateResult, _Mapping]] = ...) -> None: ...

class EvaluatorInfo(_message.Message):
    __slots__ = ("model", "runtime", "tasks", "capacity")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelInfo
    runtime: _common_pb2.RuntimeInfo
    tasks: _containers.RepeatedScalarFieldContainer[JudgeTask]
    capacity: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelInfo, _Mapping]] = ..., runtime: _Optional[_Union[_common_pb2.RuntimeInfo, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[JudgeTask, str]]] = ..., capacity: _Optional[int] = ...) -> None: ...
