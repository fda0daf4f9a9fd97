"""Model presets with the official generation settings, and request validation against them.

Every value a video depends on is explicit here, because diffusers' defaults differ from the
official Wan code (negative prompt "", A14B flow shift 3.0 on the Hub vs 12.0 upstream).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from services.common.errors import InvalidRequest

# wan/configs/shared_config.py `sample_neg_prompt` of the official Wan2.1/Wan2.2 code.
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)

MAX_STEPS = 200
MAX_FRAMES = 257
MAX_SIDE = 2048
MIN_SIDE = 16
# The Params fields a request may override (GenerationOverrides); the rest come from the preset.
OVERRIDE_FIELDS = ("height", "width", "num_frames", "num_inference_steps", "guidance_scale",
                   "guidance_scale_2", "flow_shift", "fps")


@dataclass(frozen=True)
class Preset:
    name: str
    model_id: str  # Hub repo id, or "" for models built locally (tiny)
    layout: str  # "ti2v" (one transformer, expand_timesteps), "moe" (two experts), "t2v"
    height: int
    width: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float
    flow_shift: float
    fps: int
    guidance_scale_2: float | None = None
    boundary_ratio: float | None = None
    spatial_multiple: int = 16
    # (width, height) pairs the model was trained for; None means any multiple of spatial_multiple.
    sizes: tuple[tuple[int, int], ...] | None = None
    max_sequence_length: int = 512
    note: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("wan2.2-ti2v-5b", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", "ti2v", 704, 1280, 121, 50, 5.0, 5.0, 24,
               spatial_multiple=32, sizes=((1280, 704), (704, 1280))),
        Preset("wan2.2-t2v-a14b", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", "moe", 720, 1280, 81, 40, 4.0, 12.0, 16,
               guidance_scale_2=3.0, boundary_ratio=0.875,
               sizes=((1280, 720), (720, 1280), (832, 480), (480, 832)),
               note="flow shift 12.0 as in the official wan_t2v_A14B config (the Hub scheduler ships 3.0)"),
        Preset("wan2.1-t2v-14b", "Wan-AI/Wan2.1-T2V-14B-Diffusers", "t2v", 720, 1280, 81, 50, 5.0, 5.0, 16,
               sizes=((1280, 720), (720, 1280), (832, 480), (480, 832))),
        Preset("tiny", "", "ti2v", 64, 64, 9, 4, 5.0, 5.0, 24, spatial_multiple=32,
               note="random weights in the TI2V-5B layout, built offline"),
        Preset("tiny-moe", "", "moe", 48, 48, 9, 4, 4.0, 12.0, 16, guidance_scale_2=3.0, boundary_ratio=0.875,
               note="random weights in the two-expert A14B layout, built offline"),
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
    flow_shift: float
    boundary_ratio: float | None
    fps: int
    negative_prompt: str
    seed: int
    max_sequence_length: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidRequest(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None


def resolve(preset: Preset, *, seed: int, negative_prompt: str | None = None, **overrides: object) -> Params:
    """Merge overrides (None = preset value) into the preset and validate; raises InvalidRequest."""
    unknown = set(overrides) - set(OVERRIDE_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown overrides: {sorted(unknown)}")
    base = Params(
        height=preset.height, width=preset.width, num_frames=preset.num_frames,
        num_inference_steps=preset.num_inference_steps, guidance_scale=preset.guidance_scale,
        guidance_scale_2=preset.guidance_scale_2, flow_shift=preset.flow_shift,
        boundary_ratio=preset.boundary_ratio, fps=preset.fps,
        negative_prompt=WAN_NEGATIVE_PROMPT if negative_prompt is None else negative_prompt,
        seed=int(seed), max_sequence_length=preset.max_sequence_length,
    )
    params = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    validate(preset, params)
    return params


def validate(preset: Preset, p: Params) -> None:
    """Refuse what the model can't take, before any GPU work (diffusers would silently round it)."""
    if p.num_frames < 1 or p.num_frames > MAX_FRAMES or (p.num_frames - 1) % 4:
        raise InvalidRequest(f"num_frames={p.num_frames} must be 4k+1 and at most {MAX_FRAMES}")
    if not 1 <= p.num_inference_steps <= MAX_STEPS:
        raise InvalidRequest(f"num_inference_steps={p.num_inference_steps} must be in 1..{MAX_STEPS}")
    for side, value in (("height", p.height), ("width", p.width)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise InvalidRequest(f"{side}={value} must be in {MIN_SIDE}..{MAX_SIDE}")
        if value % preset.spatial_multiple:
            raise InvalidRequest(f"{side}={value} must be a multiple of {preset.spatial_multiple} for "
                                 f"{preset.name}")
    if preset.sizes is not None and (p.width, p.height) not in preset.sizes:
        allowed = ", ".join(f"{w}x{h}" for w, h in preset.sizes)
        raise InvalidRequest(f"{p.width}x{p.height} is not a size {preset.name} supports ({allowed})")
    if not 0.0 <= p.guidance_scale <= 50.0:
        raise InvalidRequest(f"guidance_scale={p.guidance_scale} must be in 0..50")
    if p.guidance_scale_2 is not None:
        if preset.boundary_ratio is None:
            raise InvalidRequest(f"guidance_scale_2 needs a two-expert model; {preset.name} has one")
        if not 0.0 <= p.guidance_scale_2 <= 50.0:
            raise InvalidRequest(f"guidance_scale_2={p.guidance_scale_2} must be in 0..50")
    if not 0.0 < p.flow_shift <= 100.0:
        raise InvalidRequest(f"flow_shift={p.flow_shift} must be in (0, 100]")
    if not 1 <= p.fps <= 120:
        raise InvalidRequest(f"fps={p.fps} must be in 1..120")
    if p.seed < 0 or p.seed >= 2**63:
        raise InvalidRequest(f"seed={p.seed} must be in 0..2^63-1")
