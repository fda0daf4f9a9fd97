"""Prompt templates of the refinement steps, written for this project after the PhyT2V paper's steps
(physical-law extraction, video captioning, mismatch analysis, prompt refinement). Changing any text
here changes what new items are asked; finished steps are cached and never asked again.
"""

from __future__ import annotations

import json
import re
from typing import Any

LAW_SYSTEM = (
    "You advise on physical realism in generated videos. You receive a one-sentence description of a "
    "short video. Identify the main object or substance whose behaviour matters, and explain in plain "
    "language (no equations) which physical principles should shape what a viewer sees: forces, "
    "contact, gravity, momentum, deformation, fluid flow, light, heat, as relevant. "
    'Answer with one JSON object only: {"main_object": "...", "physical_law": "..."}.'
)
LAW_USER = "Video description: {caption}\nReason it through, then give the JSON object."

CAPTION_USER = (
    "The {n} images are frames taken in order from one short video showing {main_object}. "
    "Describe what actually happens in the video, as precisely as you can: which objects appear, "
    "how they move, touch, deform, break, flow or change over time, and where they end up. Report "
    "only what is visible; do not guess what should have happened."
)

MISMATCH_SYSTEM = (
    "You compare what a video was supposed to show with what it does show. You receive the intended "
    "description and a caption written by someone who watched the video. List briefly, one point per "
    "line, every way the video departs from the intended description: missing or extra objects, wrong "
    "actions, and motion that breaks the expected physics. If nothing departs, answer exactly: No."
)
MISMATCH_USER = "Intended description: {caption}\nCaption of the video: {video_caption}\nDifferences:"

REFINE_SYSTEM = (
    "You write prompts for a text-to-video model. You receive the description the video must show, the "
    "prompt used last time, how the resulting video departed from the description, the physical "
    "principles involved and, when known, the judges' scores of the last video. Write an improved "
    "prompt that keeps every element of the description, corrects the departures, and spells out "
    "the visible consequences of the physics (how things move, touch and change) without naming laws "
    "or using equations. Describe only what should be seen. At most 120 words. Answer with the "
    "prompt alone, on one paragraph."
)
REFINE_USER = (
    "Description the video must show: {caption}\n"
    "Prompt used last time: {previous_prompt}\n"
    "Departures of the last video: {mismatch}\n"
    "Physical principles: {physical_law}\n"
    "Scores of the last video: {scores}\n"
    "Improved prompt:"
)


def law_messages(caption: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": LAW_SYSTEM},
        {"role": "user", "content": LAW_USER.format(caption=caption)},
    ]


def caption_messages(main_object: str, image_urls: list[str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": u}} for u in image_urls]
    parts.append({"type": "text", "text": CAPTION_USER.format(n=len(image_urls), main_object=main_object)})
    return [{"role": "user", "content": parts}]


def mismatch_messages(caption: str, video_caption: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": MISMATCH_SYSTEM},
        {"role": "user", "content": MISMATCH_USER.format(caption=caption, video_caption=video_caption)},
    ]


def refine_messages(
    caption: str, previous_prompt: str, mismatch: str, physical_law: str, scores: str
) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": REFINE_SYSTEM},
        {
            "role": "user",
            "content": REFINE_USER.format(
                caption=caption,
                previous_prompt=previous_prompt,
                mismatch=mismatch,
                physical_law=physical_law,
                scores=scores,
            ),
        },
    ]


_THINK = re.compile(r"<think>.*?</think>", re.S)


def strip_reasoning(text: str) -> str:
    return _THINK.sub("", text).strip()


def parse_law(text: str) -> dict[str, str]:
    """{"main_object", "physical_law"} from the answer: the last JSON object in it, else the text."""
    text = strip_reasoning(text)
    for match in reversed(list(re.finditer(r"\{.*?\}", text, re.S))):
        try:
            obj = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("physical_law"):
            return {
                "main_object": str(obj.get("main_object") or "the main object"),
                "physical_law": str(obj["physical_law"]),
                "parsed": "json",
            }
    return {"main_object": "the main object", "physical_law": text, "parsed": "text"}


def parse_mismatch(text: str) -> str:
    text = strip_reasoning(text)
    return re.sub(r"^\s*(mismatch(es)?|differences?)\s*:\s*", "", text, flags=re.I).strip()


def parse_refined(text: str) -> str:
    """The prompt alone: reasoning, a leading label and wrapping quotes removed, whitespace folded."""
    text = strip_reasoning(text)
    text = re.sub(r"^\s*(refined|improved|enhanced)?\s*prompt\s*:\s*", "", text, flags=re.I)
    text = " ".join(text.split())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def format_scores(row: Any) -> str:
    keys = [k for k in ("sa", "pc", "videocon_sa", "videocon_pc") if k in row.keys()]  # noqa: SIM118 (sqlite3.Row)
    parts = [f"{k}={row[k]:g}" for k in keys if row[k] is not None]
    return ", ".join(parts) + " (sa/pc: 1-5, higher is better)" if parts else "not judged"
