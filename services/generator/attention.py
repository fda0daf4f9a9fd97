"""Exact attention kernels for the diffusers video transformers, and the choice of the fastest one available.

Every kernel here computes softmax(q kᵀ / √d) v exactly (only the float accumulation order differs), so
any of them may serve the ``lossless`` preset. Lossy kernels (Sage, FP8 attention) belong in a named
fast preset, never here.

* ``native``: diffusers' SDPA backend (on torch ≥ 2.9 with an H100 it dispatches to cuDNN flash
  attention, measured at ~600 TFLOP/s for the TI2V-5B shape);
* ``_native_cudnn``, ``_native_flash``, ``_native_efficient``: one SDPA kernel forced;
* ``fa3``: FlashAttention-3 (Hopper only), from the official build (``flash_attn_interface``, which
  diffusers knows as ``_flash_3``) or from the PyPI forward-only build ``fa3-fwd``
  (``fa3_fwd_interface``), which we plug into diffusers' dispatcher ourselves;
* ``auto`` (the default): ``fa3`` where it imports, the GPU is a Hopper and a start-up self-check
  against SDPA passes; ``native`` otherwise. With ``fa3`` only self-attention runs in FA3; the short
  cross-attention to the text tokens stays on SDPA, which is faster there.

The pick is recorded in the acceleration label (``attn=fa3`` / ``attn=native``), so every result says
which kernel made it, and logged once at start-up with the reason FA3 was not taken (e.g. the import
error of a build for another CUDA), so a silent fallback cannot go unnoticed.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

AUTO = "auto"
FA3 = "fa3"
SDPA_BACKENDS = ("native", "_native_cudnn", "_native_flash", "_native_efficient")
KERNELS = (AUTO, FA3, *SDPA_BACKENDS)
ENV = "VIDEOPHY_ATTENTION_BACKEND"
# FA3 modules, most official first: the Dao-AILab build, then the PyPI forward-only package.
FA3_MODULES = ("flash_attn_interface", "fa3_fwd_interface")
# Start-up self-check tolerance: bf16 outputs of two exact kernels differ by a few bf16 ulps.
SELF_CHECK_MAX_REL = 2e-2

_fa3: ModuleType | None = None
_fa3_errors: dict[str, str] = {}  # module -> why it did not import


def requested_kernel() -> str:
    """The kernel asked for through VIDEOPHY_ATTENTION_BACKEND (default ``auto``); refuses lossy names."""
    name = os.environ.get(ENV, "").strip() or AUTO
    if name not in KERNELS:
        raise ValueError(f"{ENV}={name!r} is not an exact attention kernel ({', '.join(KERNELS)}); "
                         "lossy ones belong in a named preset")
    return name


def fa3_module() -> ModuleType | None:
    """The first FlashAttention-3 interface module that imports, or None."""
    global _fa3
    if _fa3 is None:
        for name in FA3_MODULES:
            try:
                _fa3 = importlib.import_module(name)
                break
            except Exception as exc:  # ImportError, or a binary built for another torch/CUDA
                _fa3_errors[name] = f"{type(exc).__name__}: {exc}"
                log.debug("FlashAttention-3 module %s unavailable: %s", name, exc)
    return _fa3


def fa3_unusable_reason(device: str) -> str | None:
    """Why FA3 cannot run on `device` (None when it can)."""
    if not str(device).startswith("cuda"):
        return "not a CUDA device"
    import torch

    major, _ = torch.cuda.get_device_capability(torch.device(device))
    if major != 9:
        return f"FlashAttention-3 needs a Hopper GPU (compute capability 9.x, this one is {major}.x)"
    if fa3_module() is None:
        return "no FlashAttention-3 module imports (" + "; ".join(
            f"{name}: {_fa3_errors.get(name, 'not found')}" for name in FA3_MODULES) + ")"
    return None


_native: Any = None  # diffusers' SDPA backend function, bound by `_native_attention` before tracing


def _native_attention() -> Any:
    """diffusers' exact SDPA backend function, looked up once. `set_attention` binds it before any
    compiled region runs: torch.compile cannot trace the lookup's import of diffusers' lazy module
    ("Bad import result"), so a traced call must only ever read the bound global."""
    global _native
    if _native is None:
        from diffusers.models import attention_dispatch as ad

        _native = ad._AttentionBackendRegistry._backends[ad.AttentionBackendName.NATIVE]
    return _native


def fa3_attention(query: Any, key: Any, value: Any, attn_mask: Any = None, scale: float | None = None,
                  is_causal: bool = False, return_lse: bool = False, _parallel_config: Any = None) -> Any:
    """diffusers dispatcher signature -> FA3 ``flash_attn_func``; tensors are (B, S, H, D).

    FA3 takes no mask: a masked call (LTX-Video's and HunyuanVideo's padded text tokens, in attention
    modules that do not say whether they are cross-attention) runs in exact SDPA instead, so routing
    a family's attention here never changes its numbers. No log-sum-exp output (only context
    parallelism asks for it, which we do not register this adapter for)."""
    if attn_mask is not None:
        return _native_attention()(query, key, value, attn_mask=attn_mask, scale=scale, is_causal=is_causal)
    if return_lse or _parallel_config is not None:
        raise NotImplementedError("the FA3 adapter does not serve context parallelism")
    mod = fa3_module()
    if mod is None:
        raise RuntimeError("FlashAttention-3 is not installed")
    out = mod.flash_attn_func(query, key, value, softmax_scale=scale, causal=is_causal)
    return out[0] if isinstance(out, tuple) else out


def fa3_self_check(device: str) -> float:
    """Largest relative difference between FA3 and SDPA on a random Wan-like problem (B, S, H, 128)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator(device=device).manual_seed(0)
    q, k, v = (torch.randn((1, 2048, 4, 128), generator=g, device=device, dtype=torch.bfloat16)
               for _ in range(3))
    with torch.inference_mode():
        ref = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v))).transpose(1, 2)
        out = _fa3_function()(query=q, key=k, value=v)
    return float(((out.float() - ref.float()).abs().max() / ref.float().abs().max()).item())


def describe(kernel: str) -> str:
    """What `kernel` runs, for the start-up log."""
    if kernel == FA3:
        mod = fa3_module()
        return (f"fa3 (FlashAttention-3 via {mod.__name__ if mod else '?'}) for self-attention, SDPA for "
                "cross-attention")
    return f"{kernel} (SDPA)" if kernel == "native" else f"{kernel} (SDPA, this backend forced)"


def resolve_kernel(requested: str, device: str) -> tuple[str, str]:
    """(kernel to use, note for the label) for `requested` on `device`, logged in one line.

    ``auto`` falls back to ``native`` when FA3 cannot run (the log line says why); an explicit ``fa3``
    that cannot run is an error. A failed self-check always falls back, with the reason in the note."""
    kernel, note, why = _resolve(requested, device)
    log.info("attention kernel: %s%s (requested %s on %s)", describe(kernel),
             f"; FlashAttention-3 not used: {why}" if why else "", requested, device)
    return kernel, note


def _resolve(requested: str, device: str) -> tuple[str, str, str]:
    """(kernel, label note, why FA3 is not used: '' when it is or was not asked for)."""
    if requested not in KERNELS:
        raise ValueError(f"unknown attention kernel {requested!r}; known: {', '.join(KERNELS)}")
    cuda = str(device).startswith("cuda")
    if requested in SDPA_BACKENDS:
        return (requested if cuda else "native"), "", ""  # the _native_* backends force CUDA kernels
    reason = fa3_unusable_reason(device)
    if reason is not None:
        if requested == FA3:
            raise ValueError(f"attention kernel fa3 requested but unusable: {reason}")
        return "native", "", reason
    try:
        err = fa3_self_check(device)
    except Exception as exc:  # e.g. a binary built for another CUDA: the kernel does not launch
        log.warning("FlashAttention-3 self-check failed: %s: using SDPA", exc)
        return "native", f"fa3 failed self-check: {type(exc).__name__}", f"self-check failed: {exc}"
    if err > SELF_CHECK_MAX_REL:
        log.warning("FlashAttention-3 differs from SDPA by %.3g (> %g): using SDPA", err, SELF_CHECK_MAX_REL)
        return "native", f"fa3 failed self-check {err:.2g}", f"differs from SDPA by {err:.3g}"
    return FA3, "", ""


def _diffusers_has_fa3() -> bool:
    from diffusers.models import attention_dispatch as ad

    return bool(getattr(ad, "_CAN_USE_FLASH_ATTN_3", False))


def _fa3_function() -> Any:
    """The function the generator will run for FA3: diffusers' own where it knows the official build,
    else our adapter (so the self-check tests what production runs)."""
    if _diffusers_has_fa3():
        from diffusers.models import attention_dispatch as ad

        return ad._AttentionBackendRegistry._backends[ad.AttentionBackendName._FLASH_3]
    return fa3_attention


def reset_attention(transformers: list[Any]) -> None:
    """diffusers' default: no per-module backend, the active one from DIFFUSERS_ATTN_BACKEND (native)."""
    from diffusers.models import attention_dispatch as ad
    from diffusers.utils.constants import DIFFUSERS_ATTN_BACKEND

    for module in transformers:
        module.reset_attention_backend()
    ad._AttentionBackendRegistry.set_active_backend(ad.AttentionBackendName(DIFFUSERS_ATTN_BACKEND))


def _set_processor_backend(module: Any, self_backend: Any, cross_backend: Any) -> None:
    """What diffusers' `set_attention_backend` does, without its installed-package check (which only
    knows the official FA3 distribution), with one kernel for self- and one for cross-attention."""
    for m in module.modules():
        processor = _dispatching_processor(m)
        if processor is not None:
            cross = bool(getattr(m, "is_cross_attention", False))
            processor._attention_backend = cross_backend if cross else self_backend


def dispatchable(transformers: list[Any]) -> bool:
    """Whether the transformers' attention goes through diffusers' attention dispatch (their
    processors take a backend), so that `set_attention` decides the kernel."""
    return any(_dispatching_processor(m) is not None for t in transformers for m in t.modules())


def _dispatching_processor(module: Any) -> Any:
    """The module's attention processor when it calls diffusers' attention dispatch (it has a
    `_attention_backend`), else None. The attention module may be the legacy `Attention` class
    (HunyuanVideo) or an AttentionModuleMixin (Wan, LTX)."""
    processor = getattr(module, "processor", None)
    return processor if hasattr(processor, "_attention_backend") else None


def set_attention(transformers: list[Any], kernel: str) -> str:
    """Route the attention calls of `transformers` to `kernel` (from `resolve_kernel`).

    With ``fa3`` only self-attention goes to FA3: cross-attention to the 512 text tokens is faster in
    SDPA (0.36 against 0.42 ms at the TI2V-5B shape, docs/performance.md)."""
    if kernel != FA3:
        for module in transformers:
            module.set_attention_backend(kernel)
        return kernel
    from diffusers.models import attention_dispatch as ad

    name = ad.AttentionBackendName._FLASH_3
    _native_attention()  # bound now, outside any compiled region (masked calls go there)
    if not _diffusers_has_fa3():
        # diffusers' own _flash_3 needs the official package; route its name to our adapter instead.
        ad._AttentionBackendRegistry.register(name, constraints=[])(fa3_attention)
    for module in transformers:
        _set_processor_backend(module, name, ad.AttentionBackendName.NATIVE)
    return kernel
