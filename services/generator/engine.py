"""The generator's data plane: one video model on one device, without any transport.

`GenerationEngine` takes `VideoRequest`s (plain values), checks them against the request limits and the
preset before any model work, and runs them: one generation at a time per device with up to
`queue_depth` callers waiting behind it (more -> `Busy` at once); the device work on one thread so the
event loop keeps answering; the MP4 encoding (and, with decode overlap, the VAE decode) on threads of
their own, so the next item's denoising overlaps them; a stop event ends denoising at the next step;
out of memory is retried once in the low-memory mode; results are idempotent per request id through a
sidecar beside the atomically written MP4; a watchdog on the device and decode threads fails liveness
when one step stalls (services/common/watchdog.py). Every result reports the prompt's token count and
whether the text encoder's cap cut it. The gRPC servicer (services/generator/service.py) only converts
protos; results are `GenerateResult` messages because that is the record the sidecar stores.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from videophy_bench.common.errors import Busy, InvalidRequest, NotReady, OutOfMemory, PathEscape
from videophy_bench.common.limits import (
    MAX_ID_CHARS,
    MAX_PREPARE_PROMPTS,
    MAX_PROMPT_CHARS,
    MAX_URI_CHARS,
    require_texts,
)
from videophy_bench.common.runtime import runtime_info
from videophy_bench.common.storage import Storage, safe_component, sha256_file
from videophy_bench.common.video import DEFAULT_QUALITY, encode_mp4
from videophy_bench.common.watchdog import DeviceWatchdog
from videophy_bench.generator.backend import DECODE_OVERLAP, GenerationJob, GenerationOutput, GeneratorBackend
from videophy_bench.generator.presets import Params, resolve
from videophy_bench.generator.prompt_tokens import truncated
from videophy_bench.proto.v1 import common_pb2, generator_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoRequest:
    """One video to make, as the caller sent it (nothing checked yet: `GenerationEngine.plan` checks)."""

    request_id: str
    prompt_id: str
    prompt: str
    seed: int
    negative_prompt: str | None = None  # None: the preset's
    # presets.OVERRIDE_FIELDS given, and "extra": the family's own parameters by name
    overrides: dict[str, Any] = field(default_factory=dict)
    output_prefix: str = ""  # folder under the storage root; "" = "videos"


@dataclass(frozen=True)
class StepProgress:
    """A progress event of `GenerationEngine.generate`."""

    phase: str  # "queued", "denoise"
    step: int
    total_steps: int
    elapsed_s: float = 0.0


def checked_negative_prompt(negative_prompt: str | None) -> str | None:
    if negative_prompt is not None:
        require_texts(("negative_prompt", negative_prompt, MAX_PROMPT_CHARS))
    return negative_prompt


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


def params_proto(p: Params, scheduler: str = "", acceleration: str = "") -> generator_pb2.ResolvedParams:
    return generator_pb2.ResolvedParams(
        height=p.height, width=p.width, num_frames=p.num_frames, num_inference_steps=p.num_inference_steps,
        guidance_scale=p.guidance_scale, guidance_scale_2=p.guidance_scale_2, flow_shift=p.flow_shift,
        boundary_ratio=p.boundary_ratio, fps=p.fps, negative_prompt=p.negative_prompt, seed=p.seed,
        max_sequence_length=p.max_sequence_length, scheduler=scheduler, acceleration=acceleration,
        extra=p.extra,
    )


@dataclass
class PlannedVideo:
    """A checked request: where its video goes, its fingerprint and its resolved parameters."""

    uri: str
    sidecar_uri: str
    fingerprint: str
    job: GenerationJob
    prompt_id: str = ""


class GenerationEngine:
    def __init__(self, backend: GeneratorBackend, storage: Storage, mp4_quality: float = DEFAULT_QUALITY,
                 queue_depth: int = 0, decode_overlap: str = "off", stall_limit_s: float = 0.0):
        if decode_overlap not in DECODE_OVERLAP:
            raise ValueError(f"decode_overlap must be one of {DECODE_OVERLAP}, not {decode_overlap!r}")
        self.backend = backend
        self.storage = storage
        self.mp4_quality = mp4_quality
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpu")
        # The VAE decode of one item beside the next item's denoising (one decode at a time).
        self.decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vae")
        self.decode_overlap = decode_overlap
        self.overlap = False  # decided in load_and_warm
        # MP4 encoding, hashing and the sidecar run here, off the device thread, so the next item's
        # denoising starts as soon as this one's frames are decoded.
        self.encoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mp4")
        # Requests allowed to wait for the device behind the running one (the orchestrator opens
        # `capacity` slots): the next item is already here when the device frees.
        self.queue_depth = max(0, queue_depth)
        self._admitted = 0
        self._device = asyncio.Lock()
        self.ready = False
        self.runtime: common_pb2.RuntimeInfo | None = None  # set by load_and_warm
        # Beaten at every denoising step; one step (or decode) past the limit fails liveness.
        self.watchdog = DeviceWatchdog(stall_limit_s)

    # -- lifecycle -------------------------------------------------------------------------------
    async def load_and_warm(self, warmup: bool = True) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self.backend.load)
        self.runtime = runtime_info(self.backend.device)
        if warmup:
            await loop.run_in_executor(self.executor, self.backend.warmup)
        fits = getattr(self.backend, "decode_overlap_fits", None)
        self.overlap = self.decode_overlap == "on" or (
            self.decode_overlap == "auto" and self.backend.device.startswith("cuda") and bool(fits))
        log.info("VAE decode %s the next denoise (--decode-overlap %s; fits beside it: %s)",
                 "overlaps" if self.overlap else "does not overlap", self.decode_overlap, fits)
        self.ready = True

    def model_proto(self) -> common_pb2.ModelInfo:
        b = self.backend
        return common_pb2.ModelInfo(model_id=b.model_id, revision=b.revision, preset=b.preset.name,
                                    dtype=b.dtype)

    # -- request parsing ---------------------------------------------------------------------------
    def plan(self, req: VideoRequest) -> PlannedVideo:
        """Check `req` (sizes, ids, paths, parameters) before any model work; raises InvalidRequest."""
        if not self.ready:
            raise NotReady("model is still loading")
        # Sizes first: later messages quote ids and the prefix, which must therefore be short.
        require_texts(("prompt", req.prompt, MAX_PROMPT_CHARS), ("request_id", req.request_id, MAX_ID_CHARS),
                      ("prompt_id", req.prompt_id, MAX_ID_CHARS),
                      ("output_prefix", req.output_prefix, MAX_URI_CHARS))
        if not req.prompt.strip():
            raise InvalidRequest("prompt is empty")
        safe_component(req.request_id, "request_id")
        safe_component(req.prompt_id, "prompt_id")
        prefix = req.output_prefix or "videos"
        if prefix.startswith("/"):
            raise PathEscape(f"output_prefix {prefix!r} must be relative to the storage root")
        params = resolve(self.backend.preset, seed=req.seed,
                         negative_prompt=checked_negative_prompt(req.negative_prompt), **req.overrides)
        uri = f"{prefix.rstrip('/')}/{req.prompt_id}/{req.request_id}.mp4"
        self.storage.resolve(uri)  # refuses a prefix that leaves the root, before any GPU work
        fingerprint = hashlib.sha256(json.dumps(
            [req.prompt, params.as_dict(), self.backend.model_id, self.backend.revision], sort_keys=True,
            ensure_ascii=False).encode()).hexdigest()
        return PlannedVideo(uri, uri[:-4] + ".json", fingerprint, GenerationJob(req.prompt, params),
                            req.prompt_id)

    def cached(self, work: PlannedVideo) -> generator_pb2.GenerateResult | None:
        """The earlier result for this request id when its MP4 is still intact."""
        try:
            side = json.loads(self.storage.resolve(work.sidecar_uri).read_text())
            fingerprint = side["fingerprint"]
            result = json_format.ParseDict(side["result"], generator_pb2.GenerateResult())
        except (OSError, ValueError, KeyError, TypeError, json_format.ParseError):
            return None  # no or unreadable sidecar: generate (again)
        if fingerprint != work.fingerprint:
            raise InvalidRequest(f"request_id already used for a different prompt or parameters ({work.uri})")
        if not self.storage.intact(work.uri, result.artifact.sha256):
            return None
        result.cached = True
        return result

    @property
    def capacity(self) -> int:
        return 1 + self.queue_depth

    def _admit(self) -> None:
        """Count the caller in, or raise Busy at once when the device and its queue are full."""
        if self._admitted >= self.capacity:
            raise Busy("generator busy with another item")
        self._admitted += 1

    async def _submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """After `_admit`: `_on_device`, and the admission ends when the device work does."""
        try:
            fut = await self._on_device(fn, *args)
        except BaseException:
            self._admitted -= 1
            raise

        def admitted_done(_: asyncio.Future[Any]) -> None:
            self._admitted -= 1

        fut.add_done_callback(admitted_done)
        return fut

    async def _on_device(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Wait for the device (callers in arrival order), then run `fn` on the device thread.

        The device counts as taken until the worker thread returns, also when the caller is gone, so a
        cancelled item never overlaps the next one. A caller that awaits the returned future itself
        shields it: cancelling the future would release the device while the thread still runs.
        """
        await self._device.acquire()
        fut = asyncio.get_running_loop().run_in_executor(
            self.executor, self.watchdog.watched(fn.__name__.strip("_").replace("_", " "), fn), *args)

        def free(f: asyncio.Future[Any]) -> None:
            self._device.release()
            if not f.cancelled():
                f.exception()  # retrieved here too, so an abandoned call's error is not logged as lost

        fut.add_done_callback(free)
        return fut

    async def generate(self, work: PlannedVideo,
                       stop: threading.Event) -> AsyncIterator[StepProgress | generator_pb2.GenerateResult]:
        """Progress events, then the result (an intact earlier result for the request id at once).
        Setting `stop` (the caller left, its deadline passed) ends the denoising at its next step."""
        cached = self.cached(work)
        if cached is not None:
            yield cached
            return
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        started = time.perf_counter()

        def on_step(k: int, n: int) -> None:
            self.watchdog.beat()
            loop.call_soon_threadsafe(events.put_nowait, (k, n))

        def progress(k: int, n: int) -> StepProgress:
            return StepProgress("denoise", k, n, time.perf_counter() - started)

        self._admit()
        submitted = False  # from `_submit` on, the admission ends with the device work
        getter: asyncio.Future[tuple[int, int]] | None = None
        try:
            yield StepProgress("queued", 0, work.job.params.num_inference_steps)
            submitted = True
            fut = await self._submit(self._device_work, work, on_step, stop.is_set, self.overlap)
            while True:
                getter = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait({getter, fut}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    break
                yield progress(*getter.result())
            while not events.empty():  # steps reported just before the worker returned
                yield progress(*events.get_nowait())
            out = fut.result()  # raises the worker's exception (mapped by the interceptor)
            if out.frames is None:
                out = await self._decode_beside(out)
            result = await loop.run_in_executor(self.encoder, self._write, work, out)
        except BaseException:
            stop.set()
            if not submitted:  # ended at the "queued" event: give the slot back
                self._admitted -= 1
            raise
        finally:
            if getter is not None:
                getter.cancel()
        yield result

    def _device_work(self, work: PlannedVideo, on_step, should_stop, overlap: bool) -> GenerationOutput:
        """Device thread: denoise (and decode, unless it overlaps) with the OOM fallback."""
        started = time.perf_counter()
        step = self.backend.denoise if overlap else self.backend.generate
        try:
            out = self._with_oom_fallback(step, work.job, on_step, should_stop)
        except BaseException:
            self.backend.free_memory()  # a cancelled or failed run leaves activations behind
            raise
        out.timings_s["device_total"] = time.perf_counter() - started
        return out

    async def _decode_beside(self, out: GenerationOutput) -> GenerationOutput:
        """Decode on the decode thread while the device thread denoises the next item.

        Out of memory there (the warm-up's estimate was wrong, or another process took memory) turns
        the overlap off and decodes again alone on the device, with the usual low-memory fallback."""
        loop = asyncio.get_running_loop()
        try:
            decode = self.watchdog.watched("VAE decode", self.backend.decode)
            out = await loop.run_in_executor(self.decoder, decode, out, True)
        except Exception as exc:
            if not _is_oom(exc):
                raise
            log.warning("out of memory decoding beside a denoise; decoding alone from now on: %s", exc)
            self.overlap = False
            # The traceback holds the failed decode's frames and their activations: drop them, and retry
            # outside this block, so that free_memory() can really give the memory back.
            traceback.clear_frames(exc.__traceback__)
            alone = True
        else:
            alone = False
        if alone:
            out = await asyncio.shield(await self._on_device(self._decode_alone, out))
        out.timings_s["device_total"] += out.timings_s["vae_decode"]  # its own time, not the waits
        return out

    def _decode_alone(self, out: GenerationOutput) -> GenerationOutput:
        self.backend.free_memory()
        return self._with_oom_fallback(lambda: self.backend.decode(out))

    def _write(self, work: PlannedVideo, out: GenerationOutput) -> generator_pb2.GenerateResult:
        """Encoder thread: MP4 and sidecar, both atomic, while the device works on the next item."""
        p = work.job.params
        t0 = time.perf_counter()
        with self.storage.atomic_path(work.uri, suffix=".mp4") as tmp:
            encode_mp4(out.frames, tmp, fps=p.fps, quality=self.mp4_quality)
        timings = dict(out.timings_s)
        timings["mp4_encode"] = time.perf_counter() - t0
        timings["total"] = timings.pop("device_total") + timings["mp4_encode"]
        path = self.storage.resolve(work.uri)
        frames, height, width = out.frames.shape[0], out.frames.shape[1], out.frames.shape[2]
        result = generator_pb2.GenerateResult(
            artifact=common_pb2.ArtifactRef(uri=work.uri, sha256=sha256_file(path), bytes=path.stat().st_size,
                                            mime="video/mp4"),
            num_frames=frames, fps=p.fps, duration_s=frames / p.fps, height=height, width=width,
            params=params_proto(p, getattr(self.backend, "scheduler_name", ""), self.backend.acceleration),
            model=self.model_proto(), runtime=self.runtime, timings_s=timings,
            attempts=out.attempts, **self._token_fields(work, out),
        )
        side = {"fingerprint": work.fingerprint, "prompt": work.job.prompt,
                "result": json_format.MessageToDict(result)}
        self.storage.write_bytes_atomic(work.sidecar_uri,
                                        json.dumps(side, ensure_ascii=False, indent=1).encode())
        return result

    @staticmethod
    def _token_fields(work: PlannedVideo, out: GenerationOutput) -> dict[str, Any]:
        """The result's token counts (none when the backend did not count); a cut prompt is logged."""
        cap = work.job.params.max_sequence_length
        fields: dict[str, Any] = {}
        for name, tokens in (("prompt", out.prompt_tokens), ("negative_prompt", out.negative_prompt_tokens)):
            if tokens is None:
                continue
            fields[f"{name}_tokens"] = tokens
            fields[f"{name}_truncated"] = truncated(tokens, cap)
            if fields[f"{name}_truncated"]:
                log.warning("prompt %s (%s): the %s has %d tokens; the text encoder reads only the first %d",
                            work.prompt_id, work.uri, name.replace("_", " "), tokens, cap)
        return fields

    def _with_oom_fallback(self, fn: Callable[..., GenerationOutput], *args: Any) -> GenerationOutput:
        """`fn(*args)`; on device OOM once more in the low-memory mode, then OutOfMemory."""
        try:
            return fn(*args)
        except Exception as exc:
            if not _is_oom(exc):
                raise
            log.warning("out of memory; retrying once with VAE tiling and offload: %s", exc)
        self.backend.free_memory()
        self.backend.enable_low_memory()
        try:
            out = fn(*args)
        except Exception as exc:
            if not _is_oom(exc):
                raise
            self.backend.free_memory()
            raise OutOfMemory(f"out of device memory even with VAE tiling and offload: {exc}") from exc
        out.attempts = 2
        return out

    async def prepare(self, prompts: list[str], negative_prompt: str | None) -> tuple[int, int, float]:
        """Encode prompts ahead of time: (newly encoded, already cached, seconds)."""
        if not self.ready:
            raise NotReady("model is still loading")
        if len(prompts) > MAX_PREPARE_PROMPTS:
            raise InvalidRequest(f"{len(prompts)} prompts in one Prepare; the limit is {MAX_PREPARE_PROMPTS}")
        require_texts(*((f"prompt {i}", p, MAX_PROMPT_CHARS) for i, p in enumerate(prompts)))
        neg = resolve(self.backend.preset, seed=0,
                      negative_prompt=checked_negative_prompt(negative_prompt)).negative_prompt
        t0 = time.perf_counter()
        self._admit()
        fut = await self._submit(self.backend.prepare, list(prompts), neg)
        encoded, cached = await asyncio.shield(fut)
        return encoded, cached, time.perf_counter() - t0
