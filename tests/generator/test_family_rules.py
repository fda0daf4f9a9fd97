"""The family registry and each family's parameter rules (torch-free), and the generic regional
compile finding the repeated blocks of a transformer that declares none (CogVideoX)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from videophy_bench.common.errors import InvalidRequest
from videophy_bench.generator.families import FAMILIES, get_family, load_object
from videophy_bench.generator.presets import PRESETS, get_preset, resolve

REPO = Path(__file__).resolve().parents[2]
NEW_FAMILIES = ("cogvideox", "ltx", "hunyuanvideo")


def test_every_preset_names_a_registered_family_and_its_defaults_pass_its_rules():
    for preset in PRESETS.values():
        assert preset.family in FAMILIES, preset.name
        assert preset.source, preset.name
        params = resolve(preset, seed=0)
        assert set(params.extra) == {p.name for p in preset.family_spec.extra}, preset.name
    for family in NEW_FAMILIES:  # each has a real preset and a tiny one
        names = [p.name for p in PRESETS.values() if p.family == family]
        assert f"tiny-{family}" in names and any(PRESETS[n].model_id for n in names), names


def test_the_registry_imports_no_torch_and_names_importable_backends():
    code = ("import sys; import videophy_bench.generator.presets, videophy_bench.orchestrator.models; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{REPO}", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False"
    for family in FAMILIES.values():
        assert callable(load_object(family.backend)) and callable(load_object(family.tiny))


@pytest.mark.parametrize(("preset", "frames", "words"), [
    ("tiny", 10, "num_frames=10 must be 4k+1"),
    ("wan2.2-t2v-a14b", 83, "num_frames=83 must be 4k+1"),
    ("tiny-cogvideox", 10, "num_frames=10 must be 4k+1"),
    ("cogvideox-5b", 45, "num_frames=45 is not a length cogvideox-5b supports (49)"),
    ("tiny-ltx", 13, "num_frames=13 must be 8k+1"),
    ("ltx-video", 121 + 4, "num_frames=125 must be 8k+1"),
    ("tiny-hunyuanvideo", 12, "num_frames=12 must be 4k+1"),
])
def test_each_family_refuses_its_bad_frame_counts(preset, frames, words):
    with pytest.raises(InvalidRequest, match="^" + re.escape(words)):
        resolve(get_preset(preset), seed=0, num_frames=frames)


def test_frame_counts_each_family_takes():
    assert resolve(get_preset("tiny-ltx"), seed=0, num_frames=17).num_frames == 17
    assert resolve(get_preset("tiny-cogvideox"), seed=0, num_frames=13).num_frames == 13
    assert resolve(get_preset("tiny-hunyuanvideo"), seed=0, num_frames=13).num_frames == 13


@pytest.mark.parametrize(("preset", "overrides", "words"), [
    ("tiny-cogvideox", {"flow_shift": 3.0}, "flow_shift is not a parameter of the cogvideox family"),
    ("tiny-ltx", {"guidance_scale_2": 3.0}, "guidance_scale_2 is not a parameter of the ltx family"),
    ("tiny-ltx", {"height": 48}, "height=48 must be a multiple of 32 for tiny-ltx"),
    ("cogvideox-5b", {"width": 1280, "height": 720},
     "1280x720 is not a size cogvideox-5b supports (720x480)"),
    ("tiny", {"extra": {"use_dynamic_cfg": 1}}, "'use_dynamic_cfg' is not a parameter of the wan family"),
    ("tiny-cogvideox", {"extra": {"true_cfg_scale": 2}},
     "'true_cfg_scale' is not a parameter of the cogvideox"),
    ("tiny-cogvideox", {"extra": {"use_dynamic_cfg": 0.5}}, "use_dynamic_cfg=0.5 must be 0 or 1"),
    ("tiny-hunyuanvideo", {"extra": {"true_cfg_scale": 0.5}}, "true_cfg_scale=0.5 must be in 1..50"),
    ("tiny-ltx", {"extra": {"decode_timestep": 2}}, "decode_timestep=2 must be in 0..1"),
])
def test_family_rules_refuse_what_the_family_lacks(preset, overrides, words):
    with pytest.raises(InvalidRequest) as info:
        resolve(get_preset(preset), seed=0, **overrides)
    assert str(info.value).startswith(words), str(info.value)


def test_family_parameters_and_negative_prompts_resolve_from_family_and_preset():
    cog = resolve(get_preset("cogvideox-5b"), seed=1, extra={"use_dynamic_cfg": 0})
    assert cog.extra == {"use_dynamic_cfg": 0.0} and cog.flow_shift is None and cog.negative_prompt == ""
    assert (cog.guidance_scale, cog.num_inference_steps, cog.fps) == (6.0, 50, 8)
    assert cog.max_sequence_length == 226
    ltx = resolve(get_preset("ltx-video"), seed=1)
    assert ltx.negative_prompt == get_family("ltx").negative_prompt != ""
    assert resolve(get_preset("hunyuanvideo"), seed=1).flow_shift == 7.0


def test_a_wan_fingerprint_is_what_it_was_before_families():
    """The service fingerprints `as_dict()`: a Wan request's must not gain a key (its cached results
    and sidecars stay valid)."""
    keys = set(resolve(get_preset("tiny"), seed=3).as_dict())
    assert keys == {"height", "width", "num_frames", "num_inference_steps", "guidance_scale",
                    "guidance_scale_2", "flow_shift", "boundary_ratio", "fps", "negative_prompt", "seed",
                    "max_sequence_length"}
    assert "extra" in resolve(get_preset("tiny-ltx"), seed=3).as_dict()


def test_regional_compile_finds_blocks_of_a_transformer_that_declares_none():
    from diffusers import CogVideoXTransformer3DModel, WanTransformer3DModel

    from videophy_bench.generator.acceleration import _repeated_blocks

    cog = CogVideoXTransformer3DModel(num_attention_heads=2, attention_head_dim=16, in_channels=4,
                                      time_embed_dim=8, text_embed_dim=32, num_layers=3)
    assert not getattr(cog, "_repeated_blocks", None)
    assert _repeated_blocks(cog) == list(cog.transformer_blocks)
    wan = WanTransformer3DModel(num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
                                text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2)
    assert _repeated_blocks(wan) == list(wan.blocks)  # the declared ones, as before
