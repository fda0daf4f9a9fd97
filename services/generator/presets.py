"""Model presets with the official generation settings, and request validation against them.

Every value a video depends on is explicit here, because diffusers' defaults differ from the
official code (Wan: negative prompt "", A14B flow shift 3.0 on the Hub vs 12.0 upstream). Each preset
names its family (videophy_bench.generator.families: pipeline, backend, parameter rules) and records where
its defaults come from (`source`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from videophy_bench.common.errors import InvalidRequest
from videophy_bench.generator.families import WAN_NEGATIVE_PROMPT, Family, get_family

__all__ = ["PRESETS", "WAN_NEGATIVE_PROMPT", "Params", "Preset", "get_preset", "resolve", "validate"]

MAX_STEPS = 200
MAX_FRAMES = 257
MAX_SIDE = 2048
MIN_SIDE = 16
# The Params fields a request may override (GenerationOverrides); the rest come from the preset.
# A family's own parameters travel in `extra` (GenerationOverrides.extra, Params.extra).
OVERRIDE_FIELDS = ("height", "width", "num_frames", "num_inference_steps", "guidance_scale",
                   "guidance_scale_2", "flow_shift", "fps")
WAN_SOURCE = "https://github.com/Wan-Video/Wan2.2 wan/configs/ (shared_config.py, wan_*.py)"


@dataclass(frozen=True)
class Preset:
    name: str
    model_id: str  # Hub repo id, or "" for models built locally (tiny)
    # checkpoint layout; Wan: "ti2v" (one transformer, expand_timesteps), "moe" (two experts), "t2v"
    layout: str
    height: int
    width: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float
    flow_shift: float | None  # None: the family's scheduler takes no fixed shift
    fps: int
    guidance_scale_2: float | None = None
    boundary_ratio: float | None = None
    spatial_multiple: int | None = None  # None: the family's
    # (width, height) pairs the model was trained for; None means any multiple of spatial_multiple.
    sizes: tuple[tuple[int, int], ...] | None = None
    max_sequence_length: int = 512
    note: str = ""
    family: str = "wan"
    source: str = WAN_SOURCE  # the official card / code the defaults come from
    extra: tuple[tuple[str, float], ...] = ()  # defaults of the family's own parameters
    # Scheduler the official code swaps in: (diffusers class name, config overrides); None: as shipped.
    scheduler: tuple[str, tuple[tuple[str, object], ...]] | None = None
    frame_counts: tuple[int, ...] | None = None  # the only frame counts the model was trained for

    @property
    def family_spec(self) -> Family:
        return get_family(self.family)

    @property
    def multiple(self) -> int:
        return self.spatial_multiple or self.family_spec.spatial_multiple


COGVIDEOX_SOURCE = ("https://huggingface.co/THUDM/CogVideoX-5b (README) + "
                    "https://github.com/THUDM/CogVideo inference/cli_demo.py")
LTX_SOURCE = ("https://huggingface.co/Lightricks/LTX-Video (README, diffusers LTXPipeline example) + "
              "https://github.com/Lightricks/LTX-Video inference.py (frame rate)")
HUNYUAN_SOURCE = ("https://huggingface.co/hunyuanvideo-community/HunyuanVideo + "
                  "https://github.com/Tencent/HunyuanVideo sample_video.py / hyvideo/config.py")
_COGVIDEOX_DPM = ("CogVideoXDPMScheduler", (("timestep_spacing", "trailing"),))

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("wan2.2-ti2v-5b", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", "ti2v", 704, 1280, 121, 50, 5.0, 5.0, 24,
               spatial_multiple=32, sizes=((1280, 704), (704, 1280)),
               source="https://github.com/Wan-Video/Wan2.2 wan/configs/wan_ti2v_5B.py + generate.py"),
        Preset("wan2.2-t2v-a14b", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", "moe", 720, 1280, 81, 40, 4.0, 12.0, 16,
               guidance_scale_2=3.0, boundary_ratio=0.875,
               sizes=((1280, 720), (720, 1280), (832, 480), (480, 832)),
               note="flow shift 12.0 as in the official wan_t2v_A14B config (the Hub scheduler ships 3.0)",
               source="https://github.com/Wan-Video/Wan2.2 wan/configs/wan_t2v_A14B.py"),
        Preset("wan2.1-t2v-14b", "Wan-AI/Wan2.1-T2V-14B-Diffusers", "t2v", 720, 1280, 81, 50, 5.0, 5.0, 16,
               sizes=((1280, 720), (720, 1280), (832, 480), (480, 832)),
               source="https://github.com/Wan-Video/Wan2.1 wan/configs/wan_t2v_14B.py + generate.py"),
        Preset("tiny", "", "ti2v", 64, 64, 9, 4, 5.0, 5.0, 24, spatial_multiple=32,
               note="random weights in the TI2V-5B layout, built offline"),
        Preset("tiny-moe", "", "moe", 48, 48, 9, 4, 4.0, 12.0, 16, guidance_scale_2=3.0, boundary_ratio=0.875,
               note="random weights in the two-expert A14B layout, built offline"),
        # 720x480 only and 49 frames (6 s at 8 fps) per the card; DPM "trailing" + dynamic CFG as in
        # the official cli_demo.py (and the PhyT2V CogVideoX-5B runs).
        Preset("cogvideox-5b", "THUDM/CogVideoX-5b", "cogvideox-1.0", 480, 720, 49, 50, 6.0, None, 8,
               sizes=((720, 480),), frame_counts=(49,), max_sequence_length=226, family="cogvideox",
               source=COGVIDEOX_SOURCE, extra=(("use_dynamic_cfg", 1.0),), scheduler=_COGVIDEOX_DPM),
        Preset("tiny-cogvideox", "", "cogvideox-1.0", 32, 48, 9, 3, 6.0, None, 8, max_sequence_length=64,
               family="cogvideox", source=COGVIDEOX_SOURCE, extra=(("use_dynamic_cfg", 1.0),),
               scheduler=_COGVIDEOX_DPM,
               note="random weights in the CogVideoX-5B layout (rotary, DPM), built offline"),
        # The card's text-to-video example: 704x480, 161 frames, 50 steps, guidance 3, its negative
        # prompt. The model is conditioned on the frame rate (LTXPipeline frame_rate, 25 there and in the
        # official inference.py, which writes the video at that rate): the fps is both.
        Preset("ltx-video", "Lightricks/LTX-Video", "ltx-0.9", 480, 704, 161, 50, 3.0, None, 25,
               max_sequence_length=128, family="ltx", source=LTX_SOURCE,
               extra=(("guidance_rescale", 0.0), ("decode_timestep", 0.0), ("decode_noise_scale", 0.0))),
        Preset("tiny-ltx", "", "ltx-0.9", 64, 64, 9, 3, 3.0, None, 25, max_sequence_length=64, family="ltx",
               source=LTX_SOURCE,
               extra=(("guidance_rescale", 0.0), ("decode_timestep", 0.0), ("decode_noise_scale", 0.0)),
               note="random weights in the LTX-Video layout, built offline"),
        # The official sample_video.py defaults: 720x1280, 129 frames, 50 steps, embedded guidance 6.0,
        # flow shift 7.0, no real CFG; 24 fps (the diffusers example's 320x512 / 61 / 30 steps is a demo).
        Preset("hunyuanvideo", "hunyuanvideo-community/HunyuanVideo", "hunyuanvideo", 720, 1280, 129, 50, 6.0,
               7.0, 24, max_sequence_length=256, family="hunyuanvideo", source=HUNYUAN_SOURCE,
               extra=(("true_cfg_scale", 1.0),)),
        Preset("tiny-hunyuanvideo", "", "hunyuanvideo", 32, 32, 9, 3, 6.0, 7.0, 24, max_sequence_length=64,
               family="hunyuanvideo", source=HUNYUAN_SOURCE, extra=(("true_cfg_scale", 1.0),),
               note="random weights in the HunyuanVideo layout (LLaMA + CLIP text encoders), built offline"),
    )
}


@dataclass(frozen=True)
class Params:
    """Fully resolved generation parameters of one video."""

    height: int
    width: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float
    guidance_scale_2: float | None
    flow_shift: float | None
    boundary_ratio: float | None
    fps: int
    negative_prompt: str
    seed: int
    max_sequence_length: int
    extra: dict[str, float] = field(default_factory=dict)  # the family's own parameters

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        if not self.extra:  # a Wan video's fingerprint (service sidecars) stays what it always was
            del d["extra"]
        return d


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidRequest(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None


def resolve(preset: Preset, *, seed: int, negative_prompt: str | None = None,
            extra: dict[str, float] | None = None, **overrides: object) -> Params:
    """Merge overrides (None = preset value) into the preset and validate; raises InvalidRequest.

    `extra` overrides the family's own parameters by name (unknown names are refused)."""
    unknown = set(overrides) - set(OVERRIDE_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown overrides: {sorted(unknown)}")
    family = preset.family_spec
    for name in extra or {}:
        family.extra_param(name)
    base = Params(
        height=preset.height, width=preset.width, num_frames=preset.num_frames,
        num_inference_steps=preset.num_inference_steps, guidance_scale=preset.guidance_scale,
        guidance_scale_2=preset.guidance_scale_2, flow_shift=preset.flow_shift,
        boundary_ratio=preset.boundary_ratio, fps=preset.fps,
        negative_prompt=family.negative_prompt if negative_prompt is None else negative_prompt,
        seed=int(seed), max_sequence_length=preset.max_sequence_length,
        extra={**dict(preset.extra), **{k: float(v) for k, v in (extra or {}).items()}},
    )
    params = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    validate(preset, params)
    return params


def validate(preset: Preset, p: Params) -> None:
    """Refuse what the model can't take, before any GPU work (diffusers would silently round it)."""
    family = preset.family_spec
    if p.num_frames < 1 or p.num_frames > MAX_FRAMES or (p.num_frames - 1) % family.frame_step:
        raise InvalidRequest(f"num_frames={p.num_frames} must be {family.frame_rule()} and at most "
                             f"{MAX_FRAMES} for the {family.name} family")
    if preset.frame_counts is not None and p.num_frames not in preset.frame_counts:
        raise InvalidRequest(f"num_frames={p.num_frames} is not a length {preset.name} supports "
                             f"({', '.join(map(str, preset.frame_counts))})")
    if not 1 <= p.num_inference_steps <= MAX_STEPS:
        raise InvalidRequest(f"num_inference_steps={p.num_inference_steps} must be in 1..{MAX_STEPS}")
    for side, value in (("height", p.height), ("width", p.width)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise InvalidRequest(f"{side}={value} must be in {MIN_SIDE}..{MAX_SIDE}")
        if value % preset.multiple:
            raise InvalidRequest(f"{side}={value} must be a multiple of {preset.multiple} for "
                                 f"{preset.name}")
    if preset.sizes is not None and (p.width, p.height) not in preset.sizes:
        allowed = ", ".join(f"{w}x{h}" for w, h in preset.sizes)
        raise InvalidRequest(f"{p.width}x{p.height} is not a size {preset.name} supports ({allowed})")
    if not 0.0 <= p.guidance_scale <= 50.0:
        raise InvalidRequest(f"guidance_scale={p.guidance_scale} must be in 0..50")
    if p.guidance_scale_2 is not None:
        if "guidance_scale_2" not in family.guidance:
            raise InvalidRequest(f"guidance_scale_2 is not a parameter of the {family.name} family")
        if preset.boundary_ratio is None:
            raise InvalidRequest(f"guidance_scale_2 needs a two-expert model; {preset.name} has one")
        if not 0.0 <= p.guidance_scale_2 <= 50.0:
            raise InvalidRequest(f"guidance_scale_2={p.guidance_scale_2} must be in 0..50")
    if p.flow_shift is not None:
        if family.flow_shift is None:
            raise InvalidRequest(f"flow_shift is not a parameter of the {family.name} family (its scheduler "
                                 "takes no fixed shift)")
        if not 0.0 < p.flow_shift <= 100.0:
            raise InvalidRequest(f"flow_shift={p.flow_shift} must be in (0, 100]")
    if not 1 <= p.fps <= 120:
        raise InvalidRequest(f"fps={p.fps} must be in 1..120")
    if p.seed < 0 or p.seed >= 2**63:
        raise InvalidRequest(f"seed={p.seed} must be in 0..2^63-1")
    for name, value in p.extra.items():
        family.extra_param(name).check(value)
