"""Named acceleration presets for the diffusers video pipelines (every family; one trick Wan-only).

`apply_acceleration(pipe, name, device)` changes a loaded pipeline in place and returns the string
the backend records as its `acceleration` (it flows into every result and manifest), e.g.
``lossless(attn=fa3,t=shared,compile=regional,te=cpu)`` or
``fp8(fp8-linear:300,attn=fa3,t=shared,compile=regional,te=cpu)``.

Presets (docs/performance.md has the measurements behind each choice):

* ``none``: the plain diffusers eager pipeline (attention ``native``, no compile). Reference only.
* ``lossless`` (the default): output equals the eager pipeline within bf16 tolerance.
  - the fastest exact attention kernel available (``videophy_bench.generator.attention``: FlashAttention-3
    on a Hopper GPU where it is installed and passes its self-check, else ``native`` SDPA, which on
    torch >= 2.9 / H100 dispatches to cuDNN flash attention; VIDEOPHY_ATTENTION_BACKEND forces one),
  - (Wan only: pipelines with ``expand_timesteps``, labelled ``t=shared``) one time embedding per step
    instead of one per token for text-to-video on TI2V-5B: diffusers'
    ``expand_timesteps`` path gives every latent token its own timestep so that an image-conditioned
    first frame can sit at t=0; without an image every token carries the same t, so the per-token
    embedding, the [B, N, 6, dim] fp32 modulation it feeds and the per-token output head are the
    per-sample ones repeated N times. The per-sample path computes them once (equal up to rounding),
  - regional ``torch.compile`` of each transformer's repeated block (the model's ``_repeated_blocks``
    where diffusers declares them, else the blocks of its homogeneous ModuleLists, e.g. CogVideoX's
    ``transformer_blocks``; fullgraph); the compile itself happens in the backend's warm-up, before the
    service reports ready,
  - the text encoder parked on the CPU (pinned) once embeddings are cached; `text_encoder_on` brings it
    back for an unseen prompt (GPU only; on the CPU nothing moves),
  - the VAE stays in fp32 on the device.
* ``fbcache`` (lossy, never the default): ``lossless`` + diffusers FirstBlockCache at
  ``FBCACHE_THRESHOLD``: a step's remaining blocks are skipped when the first block's residual changed
  by less than the threshold (relative absmean) since the last full step. The blocks are compiled
  without ``fullgraph`` because the cache decision is a host-side branch.
* ``fp8`` (lossy, never the default): ``lossless`` + the transformer blocks' linear layers in float8
  e4m3 with per-output-channel weight scales and per-token dynamic activation scales, computed by
  ``torch._scaled_mm`` (rowwise). This is our own small module, the recipe of torchao's
  ``Float8DynamicActivationFloat8WeightConfig(PerRow)``; torchao is not on the GPU image. Attention
  stays bf16 (exact). Needs CUDA compute capability >= 8.9.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from videophy_bench.generator import attention

log = logging.getLogger(__name__)

PRESET_NAMES = ("lossless", "none", "fbcache", "fp8")
DEFAULT_PRESET = "lossless"
# diffusers' default; ParaAttention suggests 0.05-0.1 for video DiTs (higher = more skipping).
FBCACHE_THRESHOLD = 0.05
FP8_MAX = 448.0  # largest finite float8_e4m3fn
TRANSFORMER_NAMES = ("transformer", "transformer_2")


def transformers_of(pipe: Any) -> list[Any]:
    return [m for m in (getattr(pipe, n, None) for n in TRANSFORMER_NAMES) if m is not None]


def _is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


# -- time embedding --------------------------------------------------------------------------------
def share_timestep(pipe: Any) -> bool:
    """Text-to-video on an ``expand_timesteps`` (TI2V) pipeline: one timestep per sample, not per token.

    The same values up to float rounding: without a conditioning image every token's timestep is the
    same t (the pipeline's mask is all ones), and the transformer's per-sample path computes once what
    the per-token path repeats (its matrix products have one row instead of N, so the rounding of the
    time embedding may differ in the last bits). Returns True when the pipeline was switched."""
    if not getattr(getattr(pipe, "config", None), "expand_timesteps", False):
        return False
    pipe._videophy_expand_timesteps = True  # for `reset`: the `none` preset is the pipeline as loaded
    pipe.register_to_config(expand_timesteps=False)
    return True


def reset(pipe: Any) -> None:
    """Undo what an earlier preset did to a re-attached pipeline (e.g. in bench/): diffusers' default
    attention, per-token timesteps where the pipeline had them, no compiled blocks, no cache.
    Layers quantized by `fp8` are not undone: that pipeline must be reloaded."""
    attention.reset_attention(transformers_of(pipe))
    if getattr(pipe, "_videophy_expand_timesteps", None):
        pipe.register_to_config(expand_timesteps=True)
    uncompile(pipe)
    disable_cache(pipe)


# -- compile --------------------------------------------------------------------------------------
def compile_regions(pipe: Any, fullgraph: bool = True) -> int:
    """Regional torch.compile of every transformer's repeated block; returns the number of blocks.

    Compilation is lazy: it happens at the first forward (the backend's warm-up)."""
    n = 0
    for module in transformers_of(pipe):
        for block in _repeated_blocks(module):
            block.compile(fullgraph=fullgraph)  # replaces an earlier compile, e.g. fullgraph off for fbcache
            n += 1
    return n


def _repeated_blocks(module: Any) -> list[Any]:
    """The transformer's repeated blocks: those diffusers names in `_repeated_blocks`, else the members
    of each top-level ModuleList whose members all share one class (found generically)."""
    names = set(getattr(module, "_repeated_blocks", None) or ())
    if names:
        return [m for m in module.modules() if type(m).__name__ in names]
    import torch

    blocks: list[Any] = []
    for child in module.children():
        if isinstance(child, torch.nn.ModuleList) and len(child) and len({type(b) for b in child}) == 1:
            blocks.extend(child)
    return blocks


def uncompile(pipe: Any) -> None:
    for module in transformers_of(pipe):
        for block in _repeated_blocks(module):
            block._compiled_call_impl = None


# -- text encoder ---------------------------------------------------------------------------------
def release_text_encoder(pipe: Any, device: str) -> bool:
    """Park the text encoder on the CPU to free device memory; True if it moved.

    The first call keeps a pinned CPU copy of the weights (they never change), so later parks drop the
    device copy without a transfer and `text_encoder_on` brings it back at pinned-memory speed. Prompt
    embeddings are cached by the backend, so the encoder is needed again only for unseen prompts."""
    te = getattr(pipe, "text_encoder", None)
    if te is None or not _is_cuda(device) or next(te.parameters()).device.type == "cpu":
        return False
    import torch

    host = getattr(pipe, "_videophy_text_encoder_host", None)
    if host is None:
        host = {}
        for name, t in [*te.named_parameters(), *te.named_buffers()]:
            cpu = t.detach().to("cpu")
            with contextlib.suppress(RuntimeError):  # pinning fails where page-locked memory is short
                cpu = cpu.pin_memory()
            host[name] = cpu
        pipe._videophy_text_encoder_host = host
    _swap_text_encoder(te, host, None)
    torch.cuda.empty_cache()
    return True


def _swap_text_encoder(te: Any, host: dict[str, Any], device: str | None) -> None:
    for name, t in [*te.named_parameters(), *te.named_buffers()]:
        src = host[name]
        t.data = src if device is None else src.to(device, non_blocking=True)


@contextlib.contextmanager
def text_encoder_on(pipe: Any, device: str) -> Iterator[None]:
    """Run the enclosed encoding with the text encoder on `device`, parking it again afterwards when
    it was parked. Nested uses move it once."""
    te = getattr(pipe, "text_encoder", None)
    host = getattr(pipe, "_videophy_text_encoder_host", None)
    if te is None or host is None or not _is_cuda(device) or next(te.parameters()).device.type != "cpu":
        yield
        return
    _swap_text_encoder(te, host, device)
    try:
        yield
    finally:
        release_text_encoder(pipe, device)


# -- caching (lossy) -------------------------------------------------------------------------------
def enable_fbcache(pipe: Any, threshold: float = FBCACHE_THRESHOLD) -> None:
    from diffusers.hooks import FirstBlockCacheConfig

    for module in transformers_of(pipe):
        module.enable_cache(FirstBlockCacheConfig(threshold=threshold))


def disable_cache(pipe: Any) -> None:
    for module in transformers_of(pipe):
        with contextlib.suppress(Exception):
            module.disable_cache()


# -- fp8 (lossy) ----------------------------------------------------------------------------------
def _fp8_linear_class() -> type:
    import torch

    class Fp8Linear(torch.nn.Module):
        """y = x W^T + b with W in float8 e4m3 (one scale per output channel) and x quantized per token
        on the fly; `torch._scaled_mm` rowwise on CUDA, a dequantized matmul elsewhere (tests)."""

        def __init__(self, linear: torch.nn.Linear) -> None:
            super().__init__()
            w = linear.weight.detach()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            scale = w.float().abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / FP8_MAX  # (out, 1)
            self.register_buffer("weight_fp8", (w.float() / scale).clamp(-FP8_MAX, FP8_MAX)
                                 .to(torch.float8_e4m3fn))
            self.register_buffer("weight_scale", scale.reshape(1, -1).contiguous())  # (1, out) fp32
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach(),
                                                                             requires_grad=False)
            self.out_dtype = w.dtype

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shape = x.shape
            x2 = x.reshape(-1, shape[-1])
            x_scale = x2.float().abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / FP8_MAX  # (M, 1)
            xq = (x2.float() / x_scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
            out_dtype = x.dtype if x.dtype in (torch.bfloat16, torch.float16) else self.out_dtype
            if x.is_cuda:
                y = torch._scaled_mm(xq, self.weight_fp8.t(), scale_a=x_scale, scale_b=self.weight_scale,
                                     out_dtype=out_dtype)
            else:
                w = self.weight_fp8.float() * self.weight_scale.t()
                y = ((xq.float() * x_scale) @ w.t()).to(out_dtype)
            if self.bias is not None:
                y = y + self.bias.to(y.dtype)
            return y.reshape(*shape[:-1], self.out_features)

    return Fp8Linear


def quantize_fp8(pipe: Any) -> int:
    """Swap the nn.Linear layers inside the transformers' repeated blocks for Fp8Linear (in place).

    Layers whose sizes are not multiples of 16 (a `_scaled_mm` requirement) stay in bf16; patch
    embedding, condition/time embedders and the output head are outside the blocks and stay as they are.
    Returns the number of layers converted."""
    import torch

    fp8_linear = _fp8_linear_class()
    n = 0
    for module in transformers_of(pipe):
        for block in _repeated_blocks(module):
            for parent in list(block.modules()):
                for child_name, child in list(parent.named_children()):
                    if (type(child) is torch.nn.Linear and child.in_features % 16 == 0
                            and child.out_features % 16 == 0):
                        setattr(parent, child_name, fp8_linear(child))
                        n += 1
    return n


# -- presets --------------------------------------------------------------------------------------
def apply_acceleration(pipe: Any, name: str = DEFAULT_PRESET, device: str = "cuda",
                       compile_blocks: bool | None = None, park_text_encoder: bool = True) -> str:
    """Apply preset `name` to `pipe` (already on `device`); returns the label to record.

    compile_blocks: None = the preset's default (regional compile on CUDA, off on the CPU, where the
    compile costs more than it saves on the tiny models); True/False forces it. park_text_encoder:
    the backend caches prompt embeddings (Wan), so the text encoder may wait on the CPU."""
    if name not in PRESET_NAMES:
        raise ValueError(f"unknown acceleration preset {name!r}; known: {', '.join(PRESET_NAMES)}")
    reset(pipe)
    if name == "none":
        return "none"
    cuda = _is_cuda(device)
    if name == "fp8" and cuda:
        import torch

        major, minor = torch.cuda.get_device_capability(torch.device(device))
        if (major, minor) < (8, 9):
            raise ValueError(f"fp8 needs compute capability >= 8.9 (this device: {major}.{minor})")
    parts = []
    if name == "fp8":
        parts.append(f"fp8-linear:{quantize_fp8(pipe)}")
    if attention.dispatchable(transformers_of(pipe)):
        kernel, note = attention.resolve_kernel(attention.requested_kernel(), device)
        attention.set_attention(transformers_of(pipe), kernel)
        parts.append(f"attn={kernel}" + (f"[{note}]" if note else ""))
    else:  # e.g. CogVideoX: its processors call SDPA themselves; say so rather than name a kernel
        parts.append("attn=sdpa[model's processors]")
    if share_timestep(pipe):
        parts.append("t=shared")
    do_compile = cuda if compile_blocks is None else compile_blocks
    if name == "fbcache":
        enable_fbcache(pipe)
        parts.insert(0, f"fbcache:{FBCACHE_THRESHOLD:g}")
    if do_compile:
        compile_regions(pipe, fullgraph=name != "fbcache")
        parts.append("compile=regional")
    else:
        parts.append("compile=off")
    if park_text_encoder and release_text_encoder(pipe, device):
        parts.append("te=cpu")
    label = f"{name}({','.join(parts)})"
    log.info("acceleration: %s", label)
    return label
