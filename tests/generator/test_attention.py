"""The exact attention kernels: the choice, its refusals, and the FlashAttention-3 route into diffusers.

FA3 runs only on Hopper GPUs. Here a stand-in module with FA3's `flash_attn_func` signature (computing
SDPA on the CPU) takes its place, so the adapter, the dispatcher registration and the processor routing
are the real ones; the kernel itself is checked on the GPU by bench/bench_attention.py.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from videophy_bench.generator import attention  # noqa: E402


def test_requested_kernel_defaults_to_auto_and_refuses_lossy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(attention.ENV, raising=False)
    assert attention.requested_kernel() == "auto"
    monkeypatch.setenv(attention.ENV, "sage")
    with pytest.raises(ValueError, match="not an exact attention kernel"):
        attention.requested_kernel()
    monkeypatch.setenv(attention.ENV, "_native_cudnn")
    assert attention.requested_kernel() == "_native_cudnn"


def test_resolve_on_cpu() -> None:
    assert attention.resolve_kernel("auto", "cpu") == ("native", "")
    assert attention.resolve_kernel("_native_cudnn", "cpu") == ("native", "")  # CUDA-only kernels
    with pytest.raises(ValueError, match="fa3 requested but unusable: not a CUDA device"):
        attention.resolve_kernel("fa3", "cpu")
    with pytest.raises(ValueError, match="unknown attention kernel"):
        attention.resolve_kernel("flash4", "cpu")


class _StandInFA3(types.SimpleNamespace):
    """FA3's `flash_attn_func(q, k, v, softmax_scale, causal, return_attn_probs)` on (B, S, H, D)."""

    def __init__(self) -> None:
        super().__init__(calls=0)

    def flash_attn_func(self, q, k, v, softmax_scale=None, causal=False, return_attn_probs=False):
        self.calls += 1
        out = _sdpa_bshd(q, k, v, softmax_scale, causal)
        return (out, None) if return_attn_probs else out


def _sdpa_bshd(q, k, v, softmax_scale=None, causal=False):
    return torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=softmax_scale, is_causal=causal
    ).transpose(1, 2)


@pytest.fixture
def tiny_transformer(tiny_models: dict[str, Path]):
    from diffusers import WanTransformer3DModel

    tx = WanTransformer3DModel.from_pretrained(tiny_models["tiny"], subfolder="transformer")
    g = torch.Generator().manual_seed(0)
    cfg = tx.config
    inputs = {
        "hidden_states": torch.randn((1, cfg.in_channels, 3, 8, 8), generator=g),
        "timestep": torch.tensor([500]),
        "encoder_hidden_states": torch.randn((1, 16, cfg.text_dim), generator=g),
        "return_dict": False,
    }
    return tx, inputs


def test_fa3_route_goes_through_diffusers_dispatch(tiny_transformer, monkeypatch: pytest.MonkeyPatch) -> None:
    tx, inputs = tiny_transformer
    stand_in = _StandInFA3()
    monkeypatch.setattr(attention, "_fa3", stand_in)
    with torch.inference_mode():
        attention.set_attention([tx], "native")
        ref = tx(**inputs)[0]
        assert stand_in.calls == 0
        attention.set_attention([tx], "fa3")
        out = tx(**inputs)[0]
        # every block's self-attention went through the adapter; cross-attention stays on SDPA
        assert stand_in.calls == len(tx.blocks)
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
        attention.set_attention([tx], "native")
        tx(**inputs)
    assert stand_in.calls == len(tx.blocks)


def test_fa3_adapter_refuses_lse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attention, "_fa3", _StandInFA3())
    q = torch.zeros((1, 4, 2, 8))
    with pytest.raises(NotImplementedError, match="context parallelism"):
        attention.fa3_attention(q, q, q, return_lse=True)
    assert attention.fa3_attention(q, q, q).shape == q.shape


def test_auto_falls_back_to_sdpa_when_the_self_check_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that imports but computes something else (or does not launch) is never used."""
    monkeypatch.setattr(attention, "fa3_unusable_reason", lambda device: None)
    monkeypatch.setattr(attention, "fa3_self_check", lambda device: 0.5)
    kernel, note = attention.resolve_kernel("auto", "cuda")
    assert kernel == "native" and note == "fa3 failed self-check 0.5"

    def broken(device: str) -> float:
        raise RuntimeError("no kernel image is available for execution on the device")

    monkeypatch.setattr(attention, "fa3_self_check", broken)
    assert attention.resolve_kernel("fa3", "cuda") == ("native", "fa3 failed self-check: RuntimeError")
    monkeypatch.setattr(attention, "fa3_self_check", lambda device: 4.6e-3)
    assert attention.resolve_kernel("auto", "cuda") == ("fa3", "")


def test_self_check_compares_against_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself, on the CPU with the stand-in: an exact kernel passes, a wrong one does not."""
    monkeypatch.setattr(attention, "_fa3", _StandInFA3())
    assert attention.fa3_self_check("cpu") < 1e-5

    class Wrong(_StandInFA3):
        def flash_attn_func(self, q, k, v, **kw):
            return super().flash_attn_func(q, k, v.flip(1), **kw)

    monkeypatch.setattr(attention, "_fa3", Wrong())
    assert attention.fa3_self_check("cpu") > attention.SELF_CHECK_MAX_REL


def test_fa3_adapter_sends_masked_calls_to_exact_sdpa() -> None:
    """LTX-Video and HunyuanVideo pass their text padding mask through attention modules that do not
    say whether they are cross-attention: such a call must give SDPA's exact result, not an error."""
    import torch
    from diffusers.models import attention_dispatch as ad

    from videophy_bench.generator.attention import fa3_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 6, 2, 8) for _ in range(3))  # (B, S, H, D), the dispatcher's layout
    mask = torch.tensor([[True] * 4 + [False] * 2]).view(1, 1, 1, 6).expand(1, 2, 6, 6)
    native = ad._AttentionBackendRegistry._backends[ad.AttentionBackendName.NATIVE]
    want = native(q, k, v, attn_mask=mask, scale=0.3)
    got = fa3_attention(q, k, v, attn_mask=mask, scale=0.3)
    assert torch.equal(got, want)
    assert not torch.equal(got, native(q, k, v, scale=0.3))  # the mask mattered


@pytest.mark.parametrize("preset", ["tiny-ltx", "tiny-hunyuanvideo"])
def test_fa3_route_traces_whole_through_masked_calls(preset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """LTX-Video's and HunyuanVideo's masked calls reach the FA3 adapter inside the compiled blocks:
    each block must trace whole (fullgraph, as `lossless` compiles them) and give the eager numbers.
    The first GPU run of `lossless` on these families failed exactly here: the adapter's SDPA lookup
    imported diffusers' lazy module inside the traced call (bench/results/h100-2026-12-06)."""
    from videophy_bench.generator import acceleration
    from videophy_bench.generator.backend import GenerationJob
    from videophy_bench.generator.families import get_backend
    from videophy_bench.generator.presets import get_preset, resolve

    # A stateless stand-in (the counting one mutates itself, which dynamo does not trace).
    monkeypatch.setattr(attention, "_fa3", types.SimpleNamespace(flash_attn_func=_sdpa_bshd))
    monkeypatch.setattr(attention, "_native", None)  # as in a fresh process: bound by set_attention
    backend = get_backend(get_preset(preset), device="cpu")  # the real pipeline (tiny, built once)
    backend.load()
    job = GenerationJob("a ball rolls off the table", resolve(backend.preset, seed=0, num_inference_steps=2))
    ref = backend.generate(job, lambda *_: None, lambda: False).frames
    transformers = acceleration.transformers_of(backend.pipe)
    attention.set_attention(transformers, "fa3")
    # Bound before tracing: torch 2.11's dynamo refuses the lookup's import of diffusers' lazy module
    # inside a compiled block (2.13's traces it, so the equality below alone would not catch it).
    assert attention._native is not None
    blocks = [b for t in transformers for b in acceleration._repeated_blocks(t)]
    assert blocks
    torch._dynamo.reset()
    try:
        for block in blocks:  # what compile_regions does, with dynamo's tracing only (no inductor)
            block.compile(fullgraph=True, backend="eager")
        out = backend.generate(job, lambda *_: None, lambda: False).frames
    finally:
        acceleration.uncompile(backend.pipe)
        torch._dynamo.reset()
    assert out.shape == ref.shape
    assert abs(out.astype(int) - ref.astype(int)).max() <= 1  # uint8 frames: rounding of one level at most
