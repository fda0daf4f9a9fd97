"""Acceleration presets on the tiny TI2V model, on the CPU.

The lossless preset must give the unoptimized pipeline's output on the same seed within bf16
tolerance. On the CPU the preset skips regional torch.compile by default (it compiles on CUDA only);
the compiled path is checked here by the slow test below, and on the GPU by bench/bench_generation.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from videophy_bench.generator import acceleration as acc  # noqa: E402
from videophy_bench.generator.backend import GenerationJob  # noqa: E402
from videophy_bench.generator.presets import PRESETS, resolve  # noqa: E402

BF16_TOL = 1e-2  # max abs difference of [0, 1] frames
PROMPT = "a ball rolls off the table"


@pytest.fixture(scope="module")
def tiny_dir(tiny_models: dict[str, Path]) -> Path:
    return tiny_models["tiny"]  # the session's prebuilt pipeline (tests/generator/conftest.py)


def _backend(tiny_dir: Path, acceleration: str, compile_blocks: bool | None = None):
    from videophy_bench.generator.diffusers_backend import DiffusersWanBackend, resolve_model_dir

    preset = PRESETS["tiny"]
    model_dir, revision = resolve_model_dir(preset, str(tiny_dir), None, None)
    b = DiffusersWanBackend(preset, model_dir, revision, "cpu", model_id="test/tiny",
                            compile_blocks=compile_blocks, acceleration=acceleration)
    b.load()
    return b


def _frames(b, seed: int = 3, steps: int = 3) -> np.ndarray:
    params = resolve(b.preset, seed=seed, num_inference_steps=steps)
    frames = b.generate(GenerationJob(PROMPT, params), lambda *_: None, lambda: False).frames
    assert frames.dtype == np.uint8
    return frames.astype(np.float32) / 255.0


def test_lossless_equals_unoptimized_pipeline(tiny_dir: Path) -> None:
    plain = _backend(tiny_dir, "none")
    fast = _backend(tiny_dir, "lossless")
    assert plain.acceleration == "none"
    # CPU: no compile, the encoder stays; text-to-video on TI2V shares one timestep per step
    assert fast.acceleration == "lossless(attn=native,t=shared,compile=off)"
    assert plain.pipe.config.expand_timesteps and not fast.pipe.config.expand_timesteps
    a, b = _frames(plain), _frames(fast)
    assert a.shape == b.shape == (9, 64, 64, 3)
    assert np.isfinite(b).all()
    assert float(np.abs(a - b).max()) <= BF16_TOL


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on the CPU needs a C compiler")
def test_lossless_with_regional_compile_equals_eager(tiny_dir: Path) -> None:
    plain = _backend(tiny_dir, "none")
    compiled = _backend(tiny_dir, "lossless", compile_blocks=True)
    assert compiled.acceleration == "lossless(attn=native,t=shared,compile=regional)"
    a, b = _frames(plain, steps=2), _frames(compiled, steps=2)
    assert float(np.abs(a - b).max()) <= BF16_TOL


def test_fast_presets_are_labelled(tiny_dir: Path) -> None:
    fp8 = _backend(tiny_dir, "fp8")
    # the tiny model's widths (24) are not multiples of 16, so its layers stay bf16 (0 converted);
    # the quantization itself is checked below on 16-aligned layers
    assert fp8.acceleration.startswith("fp8(fp8-linear:")
    out = _frames(fp8)
    assert np.isfinite(out).all() and out.shape == (9, 64, 64, 3)  # as the lossless preset's
    fb = _backend(tiny_dir, "fbcache")
    assert fb.acceleration.startswith(f"fbcache(fbcache:{acc.FBCACHE_THRESHOLD:g},")
    assert np.isfinite(_frames(fb)).all()


def test_fp8_linear_matches_linear_within_fp8_error() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 32)
    fp8 = acc._fp8_linear_class()(lin)
    x = torch.randn(5, 7, 64)
    ref, got = lin(x), fp8(x)
    assert got.shape == ref.shape
    rel = float((got - ref).norm() / ref.norm())
    assert 0 < rel < 0.06  # e4m3 has a 3-bit mantissa: a few percent


def test_quantize_fp8_only_touches_block_linears() -> None:
    from diffusers import WanTransformer3DModel

    tx = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16,
                               in_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=64,
                               num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                               rope_max_seq_len=32)

    class Pipe:
        transformer = tx
        transformer_2 = None

    n = acc.quantize_fp8(Pipe())
    assert n == 2 * 10  # per block: q, k, v, out of self- and of cross-attention, and the 2 FFN layers
    assert type(tx.proj_out) is torch.nn.Linear
    assert type(tx.condition_embedder.time_embedder.linear_1) is torch.nn.Linear


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown acceleration preset"):
        acc.apply_acceleration(object(), "turbo", "cpu")


def test_none_after_lossless_restores_the_pipeline_as_loaded(tiny_dir: Path) -> None:
    b = _backend(tiny_dir, "lossless")
    assert not b.pipe.config.expand_timesteps
    acc.compile_regions(b.pipe)  # as the lossless preset does on a GPU
    acc.enable_fbcache(b.pipe)
    assert acc.apply_acceleration(b.pipe, "none", "cpu") == "none"
    assert b.pipe.config.expand_timesteps  # per-token timesteps again, as diffusers runs TI2V
    blocks = acc._repeated_blocks(b.pipe.transformer)
    assert blocks and all(blk._compiled_call_impl is None for blk in blocks)
    assert not b.pipe.transformer.is_cache_enabled
    processors = [m.processor for m in b.pipe.transformer.modules() if hasattr(m, "processor")]
    assert processors and all(p._attention_backend is None for p in processors)  # diffusers' default


def test_text_encoder_stays_put_on_cpu(tiny_dir: Path) -> None:
    b = _backend(tiny_dir, "lossless")
    assert not acc.release_text_encoder(b.pipe, "cpu")
    with acc.text_encoder_on(b.pipe, "cpu"):
        pass
    assert b.prepare([PROMPT], "neg") == (2, 0)
    assert b.prepare([PROMPT], "neg") == (0, 2)
