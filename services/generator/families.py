"""Model families: the registry every preset names, resolved without importing torch.

A family is what the generator must know about a diffusers text-to-video pipeline: its class name,
the backend that drives it and the builder of its tiny random-weights variant (both "module:callable",
imported only when a model is loaded), its parameter rules (frame count, spatial multiple, which
guidance parameters exist, its own parameters) and its default negative prompt. Presets
(videophy_bench.generator.presets) add the checkpoint and the defaults of its official card.

Adding a family is one `register_family(Family(...))` here, its presets, and its tiny builder
(docs/architecture.md shows the diff).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from videophy_bench.common.errors import InvalidRequest

# wan/configs/shared_config.py `sample_neg_prompt` of the official Wan2.1/Wan2.2 code.
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
# The negative prompt of the LTX-Video model card's (and LTXPipeline's) text-to-video example.
LTX_NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"


@dataclass(frozen=True)
class ExtraParam:
    """A family's own generation parameter: carried in `extra` on the wire (a double), passed to the
    pipeline call as keyword `name` (a bool when `boolean`: 0 or 1 on the wire)."""

    name: str
    low: float
    high: float
    help: str
    boolean: bool = False

    def check(self, value: float) -> None:
        if self.boolean and value not in (0.0, 1.0):
            raise InvalidRequest(f"{self.name}={value:g} must be 0 or 1")
        if not self.low <= value <= self.high:
            raise InvalidRequest(f"{self.name}={value:g} must be in {self.low:g}..{self.high:g}")

    def to_call(self, value: float) -> bool | float:
        return bool(value) if self.boolean else float(value)


@dataclass(frozen=True)
class Family:
    name: str
    pipeline: str  # diffusers pipeline class name
    backend: str  # "module:callable" -> backend factory(preset, model_dir, revision, device, **options)
    tiny: str  # "module:callable" -> builder(preset) -> directory of its tiny random-weights pipeline
    frame_step: int  # num_frames = frame_step * k + 1 (the VAE's temporal compression)
    spatial_multiple: int  # height and width are multiples of this (VAE x patch size)
    negative_prompt: str  # used when a request sets none
    guidance: tuple[str, ...] = ("guidance_scale",)  # which of the common guidance fields exist
    flow_shift: str | None = None  # scheduler config key the `flow_shift` field sets; None: no shift
    extra: tuple[ExtraParam, ...] = ()
    fps_kwarg: str | None = None  # pipeline keyword that takes the fps (LTX conditions on the rate)
    url: str = ""  # where the rules come from
    # "module:callable" -> the tiny pipeline's (offline) tokenizer: the orchestrator counts prompt tokens
    tiny_tokenizer: str = "videophy_bench.generator.tiny:tiny_tokenizer"

    def extra_param(self, name: str) -> ExtraParam:
        for p in self.extra:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.extra) or "none"
        raise InvalidRequest(f"{name[:64]!r} is not a parameter of the {self.name} family (its own: {known})")

    def frame_rule(self) -> str:
        return f"{self.frame_step}k+1"


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    if family.name in FAMILIES:
        raise ValueError(f"family {family.name!r} is registered twice")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise InvalidRequest(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


def load_object(spec: str) -> Any:
    """The object a "module:callable" string names (imported now)."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_backend(preset: Any, *, device: str, model_path: str | None = None, revision: str | None = None,
                cache_dir: str | None = None, **options: Any) -> Any:
    """The one factory of generator backends: the preset's weights (a tiny preset's built offline
    once, unless `model_path` is given) behind its family's backend. `options` go to the backend
    (compile_blocks, acceleration)."""
    from videophy_bench.generator.diffusers_backend import resolve_model_dir

    family = get_family(preset.family)
    if preset.model_id == "" and not model_path:  # tiny: built locally (once) and read from there
        model_path = str(load_object(family.tiny)(preset))
        model_id = f"videophy-bench/{preset.name}"
    else:
        model_id = preset.model_id or str(model_path)
    model_dir, revision = resolve_model_dir(preset, model_path, revision, cache_dir)
    return load_object(family.backend)(preset, model_dir, revision, device, model_id=model_id, **options)


register_family(Family(
    "wan", "WanPipeline", "videophy_bench.generator.diffusers_backend:DiffusersWanBackend",
    "videophy_bench.generator.tiny:build_tiny_for", frame_step=4, spatial_multiple=16,
    negative_prompt=WAN_NEGATIVE_PROMPT, guidance=("guidance_scale", "guidance_scale_2"),
    flow_shift="flow_shift", url="https://github.com/Wan-Video/Wan2.2 (wan/configs)",
))
register_family(Family(
    "cogvideox", "CogVideoXPipeline", "videophy_bench.generator.pipeline_backend:DiffusersPipelineBackend",
    "videophy_bench.generator.tiny_cogvideox:build", frame_step=4, spatial_multiple=16, negative_prompt="",
    extra=(ExtraParam("use_dynamic_cfg", 0, 1, "cosine-ramped guidance (CogVideoX-5B card: on)",
                      boolean=True),),
    url="https://huggingface.co/THUDM/CogVideoX-5b",
))
register_family(Family(
    "ltx", "LTXPipeline", "videophy_bench.generator.pipeline_backend:DiffusersPipelineBackend",
    "videophy_bench.generator.tiny_ltx:build", frame_step=8, spatial_multiple=32,
    negative_prompt=LTX_NEGATIVE_PROMPT, fps_kwarg="frame_rate",
    extra=(ExtraParam("guidance_rescale", 0, 1, "rescale of the guided prediction"),
           ExtraParam("decode_timestep", 0, 1, "timestep of the timestep-conditioned VAE decode"),
           ExtraParam("decode_noise_scale", 0, 1, "noise mixed into the latents before that decode")),
    url="https://huggingface.co/Lightricks/LTX-Video",
))
register_family(Family(
    "hunyuanvideo", "HunyuanVideoPipeline",
    "videophy_bench.generator.pipeline_backend:DiffusersPipelineBackend",
    "videophy_bench.generator.tiny_hunyuanvideo:build", frame_step=4, spatial_multiple=16, negative_prompt="",
    flow_shift="shift", tiny_tokenizer="videophy_bench.generator.tiny_hunyuanvideo:llama_tokenizer",
    extra=(ExtraParam("true_cfg_scale", 1, 50, "real classifier-free guidance (1: off, the "
                      "distilled guidance_scale alone, as the official code)"),),
    url="https://github.com/Tencent/HunyuanVideo",
))
