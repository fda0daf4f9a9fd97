"""Exact parity with the official AutoEval code on the tiny random-weights fixture (float32 run).

Tolerances are the fixture README's: max-abs <= 1e-4 and relative L2 <= 1e-6 for vision output, visual
tokens and
logits; identical generated ids, decoded text and parsed scores; VideoCon scores within 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from videophy_bench.evaluator.judge import JudgeQuery
from videophy_bench.evaluator.model.frames import PixelNormalizer, decode_video


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= 1e-4
    assert np.linalg.norm(actual - expected) / np.linalg.norm(expected) <= 1e-6


def test_tensors_match_fixture(fp32_judge, reference: dict, fixture_dir: Path, videophy2_dir: Path) -> None:
    model = fp32_judge.model
    normalizer = PixelNormalizer.from_dir(fixture_dir)
    checked = 0
    with torch.inference_mode():
        for rec in reference["records"]:
            if "visual_tokens_npy" not in rec["fp32"]:
                continue
            pixels = normalizer.to_pixels(decode_video(videophy2_dir / rec["videopath"]).frames)[None]
            if rec["index"] == 0:
                vision = model.vision_features(pixels).numpy()
                _close(vision, np.load(fixture_dir / "first_video_vision_last_hidden_state_fp32.npy"))
            visual = model.encode_video(pixels)
            _close(visual.numpy(), np.load(fixture_dir / rec["fp32"]["visual_tokens_npy"]))
            embeds, mask = model.embed_prompts([rec["input_ids"]], [visual[0]])
            logits = model.greedy_generate(embeds, mask, max_new_tokens=1).first_logits.numpy()
            _close(logits, np.load(fixture_dir / rec["fp32"]["last_prompt_logits_npy"]))
            top20 = np.argsort(-logits[0], kind="stable")[:20].tolist()
            assert top20 == rec["fp32"]["last_prompt_logits_top20"]["ids"]
            checked += 1
    assert checked == 6


def test_every_record_and_videocon_score(fp32_judge, reference: dict, videophy2_dir: Path) -> None:
    """All 30 generate records and 30 VideoCon entries through the public Judge API, one vision pass per
    video."""
    per_video: dict[str, list[tuple[str, dict, JudgeQuery]]] = {}
    for rec in reference["records"]:
        q = JudgeQuery(rec["task"], rec.get("caption") or rec.get("rule") or "")
        per_video.setdefault(rec["videopath"], []).append(("gen", rec, q))
    for entry in reference["videocon_physics"]:
        task = "videocon_sa" if entry["kind"] == "vc_sa" else "videocon_pc"
        q = JudgeQuery(task, entry.get("caption") or "")
        per_video.setdefault(entry["videopath"], []).append(("vc", entry, q))
    n_gen = n_vc = 0
    for videopath, jobs in per_video.items():
        outcome = fp32_judge.judge(str(videophy2_dir / videopath), [q for _, _, q in jobs])
        for (kind, ref, _), answer in zip(jobs, outcome.answers, strict=True):
            if kind == "gen":
                n_gen += 1
                assert outcome.frame_indices == ref["frame_indices"]
                fp32 = ref["fp32"]
                assert answer.raw_text == fp32["decoded_text"], ref["index"]
                assert answer.score == (None if fp32["parsed_score"] is None else float(fp32["parsed_score"]))
                if fp32["parse_rule"].startswith("official_parser_raises"):
                    assert answer.parse_status == "parser_error"
                else:
                    assert answer.parse_rule == fp32["parse_rule"]
            else:
                n_vc += 1
                assert abs(answer.score - ref["fp32"]["score"]) <= 1e-5, ref["index"]
                assert answer.parse_status == "probability"
    assert (n_gen, n_vc) == (30, 30)


def test_generated_ids_exact(fp32_judge, reference: dict, fixture_dir: Path, videophy2_dir: Path) -> None:
    """Token-level check incl. EOS handling and the 255-token cap (records 6, 7 hit it)."""
    model, tok = fp32_judge.model, fp32_judge.tokenizer
    normalizer = PixelNormalizer.from_dir(fixture_dir)
    with torch.inference_mode():
        for index in (0, 6, 12, 25):
            rec = reference["records"][index]
            pixels = normalizer.to_pixels(decode_video(videophy2_dir / rec["videopath"]).frames)[None]
            embeds, mask = model.embed_prompts([rec["input_ids"]], [model.encode_video(pixels)[0]])
            tokens = model.greedy_generate(embeds, mask).tokens[0]
            assert [1, *tokens] == rec["fp32"]["generated_ids"]
            assert len(tokens) == rec["fp32"]["num_generated_tokens_excluding_leading_bos"] <= 255
            assert tok.decode(tokens) == rec["fp32"]["decoded_text"]


def test_logits_from_reference_visual_tokens_are_bit_identical(fp32_judge, reference: dict,
                                                                fixture_dir: Path) -> None:
    """Given the official visual tokens, the LLM's last-prompt logits equal the fixture's exactly."""
    model = fp32_judge.model
    checked = 0
    with torch.inference_mode():
        for rec in reference["records"]:
            if "visual_tokens_npy" not in rec["fp32"]:
                continue
            visual = torch.from_numpy(np.load(fixture_dir / rec["fp32"]["visual_tokens_npy"]))
            embeds, mask = model.embed_prompts([rec["input_ids"]], [visual[0]])
            logits = model.greedy_generate(embeds, mask, max_new_tokens=1).first_logits.numpy()
            expected = np.load(fixture_dir / rec["fp32"]["last_prompt_logits_npy"])
            np.testing.assert_array_equal(logits, expected)
            checked += 1
    assert checked == 6
