"""Prompt templates of the refinement steps (physical-law extraction, video captioning, mismatch
analysis, prompt refinement), in two sets chosen by `refine --templates` and recorded in the run:

* ``strict`` (default): this project's variant. No worked examples, no step-by-step cue, a neutral
  caption request, and each rewrite sees the original caption next to the previous round's prompt.
* ``official``: the structure of the official PhyT2V code (pittisl/PhyT2V, `prompts.py`): an expert
  persona, one worked example per step (a bouncing rubber ball), a "think step by step" cue, a caption
  request that asks which physics the video obeys or breaks, and a 0-1 score with 0.5 as "good". The
  wording and the examples are this project's own (the official repository states no licence).

Changing any text here changes what new items are asked; finished steps are cached and never asked
again, so a run directory keeps the set it started with (refine refuses another one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from videophy_bench.common import judge_tasks

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class TemplateSet:
    name: str
    law_system: str
    law_user: str  # {caption}
    caption_user: str  # {n}, {main_object}
    mismatch_system: str
    mismatch_user: str  # {caption}, {video_caption}
    refine_system: str
    refine_user: str  # {caption}, {previous_prompt}, {mismatch}, {physical_law}, {scores}
    format_scores: Callable[[Any], str]

    def law_messages(self, caption: str) -> Messages:
        return [
            {"role": "system", "content": self.law_system},
            {"role": "user", "content": self.law_user.format(caption=caption)},
        ]

    def caption_messages(self, main_object: str, image_urls: list[str]) -> Messages:
        parts: Messages = [{"type": "image_url", "image_url": {"url": u}} for u in image_urls]
        text = self.caption_user.format(n=len(image_urls), main_object=main_object)
        parts.append({"type": "text", "text": text})
        return [{"role": "user", "content": parts}]

    def mismatch_messages(self, caption: str, video_caption: str) -> Messages:
        return [
            {"role": "system", "content": self.mismatch_system},
            {"role": "user",
             "content": self.mismatch_user.format(caption=caption, video_caption=video_caption)},
        ]

    def refine_messages(
        self, caption: str, previous_prompt: str, mismatch: str, physical_law: str, scores: str
    ) -> Messages:
        user = self.refine_user.format(caption=caption, previous_prompt=previous_prompt, mismatch=mismatch,
                                       physical_law=physical_law, scores=scores)
        return [{"role": "system", "content": self.refine_system}, {"role": "user", "content": user}]


def _scored_tasks(family: str) -> tuple[str, ...]:
    """A judge family's SA/PC-like tasks (rule answers are not scores of the video as a whole)."""
    return tuple(t for t in judge_tasks.tasks_of(family) if judge_tasks.task(t).text_field != "rule")


def format_scores(row: Any) -> str:
    """The judges' raw scores of the last video (strict set): `sa=4, pc=3 (sa/pc: 1-5, ...)`."""
    names = [k for f in judge_tasks.families() for k in _scored_tasks(f.name)]
    keys = [k for k in names if k in row.keys()]  # noqa: SIM118 (a sqlite3.Row has no __contains__)
    parts = [f"{k}={row[k]:g}" for k in keys if row[k] is not None]
    return ", ".join(parts) + " (sa/pc: 1-5, higher is better)" if parts else "not judged"


def official_score(row: Any) -> str:
    """One 0-1 score as the official code passes it (0.5 SA + 0.5 PC): VideoCon P(yes) when the run has
    it (the official judge), else AutoEval's 1-5 scores mapped to 0-1 by (s - 1) / 4."""
    keys = row.keys()
    for family in ("videocon", "autoeval"):
        sa_key, pc_key = _scored_tasks(family)
        if sa_key in keys and pc_key in keys and row[sa_key] is not None and row[pc_key] is not None:
            lo, hi = judge_tasks.task(sa_key).scale
            sa, pc = ((float(row[k]) - lo) / (hi - lo) for k in (sa_key, pc_key))
            return f"{0.5 * sa + 0.5 * pc:.3f}"
    return "not judged"


STRICT = TemplateSet(
    name="strict",
    law_system=(
        "You advise on physical realism in generated videos. You receive a one-sentence description of "
        "a short video. Identify the main object or substance whose behaviour matters, and explain in "
        "plain language (no equations) which physical principles should shape what a viewer sees: "
        "forces, contact, gravity, momentum, deformation, fluid flow, light, heat, as relevant. "
        'Answer with one JSON object only: {"main_object": "...", "physical_law": "..."}.'
    ),
    law_user="Video description: {caption}\nReason it through, then give the JSON object.",
    caption_user=(
        "The {n} images are frames taken in order from one short video showing {main_object}. "
        "Describe what actually happens in the video, as precisely as you can: which objects appear, "
        "how they move, touch, deform, break, flow or change over time, and where they end up. Report "
        "only what is visible; do not guess what should have happened."
    ),
    mismatch_system=(
        "You compare what a video was supposed to show with what it does show. You receive the "
        "intended description and a caption written by someone who watched the video. List briefly, "
        "one point per line, every way the video departs from the intended description: missing or "
        "extra objects, wrong actions, and motion that breaks the expected physics. If nothing "
        "departs, answer exactly: No."
    ),
    mismatch_user="Intended description: {caption}\nCaption of the video: {video_caption}\nDifferences:",
    refine_system=(
        "You write prompts for a text-to-video model. You receive the description the video must show, "
        "the prompt used last time, how the resulting video departed from the description, the "
        "physical principles involved and, when known, the judges' scores of the last video. Write an "
        "improved prompt that keeps every element of the description, corrects the departures, and "
        "spells out the visible consequences of the physics (how things move, touch and change) "
        "without naming laws or using equations. Describe only what should be seen. At most 120 "
        "words. Answer with the prompt alone, on one paragraph."
    ),
    refine_user=(
        "Description the video must show: {caption}\n"
        "Prompt used last time: {previous_prompt}\n"
        "Departures of the last video: {mismatch}\n"
        "Physical principles: {physical_law}\n"
        "Scores of the last video: {scores}\n"
        "Improved prompt:"
    ),
    format_scores=format_scores,
)

# The official structure, in this project's words; the worked examples are written for this project.
_BALL = "a tennis ball is dropped onto a concrete floor and bounces"
OFFICIAL = TemplateSet(
    name="official",
    law_system=(
        "You are an expert in physics. Given a user's prompt for a video, name the main object in it "
        "and describe, in as much detail as you can and in words rather than formulas, the real-world "
        "physical laws that this object must follow. A worked example shows the expected answer; then "
        "solve the current task. Give the answer as JSON."
    ),
    law_user=(
        "### Worked example\n"
        f"User prompt: {_BALL}\n"
        '{{"main_object": "tennis ball", "physical_law": "Gravity accelerates the ball downward, so it '
        "falls faster and faster until it meets the floor. At contact the ball flattens briefly; the "
        "collision is only partly elastic, so some energy turns into heat and sound and the ball "
        "rises less high than it was dropped from. On the way up it slows under gravity, stops at the "
        "top of its arc and falls again, each bounce lower than the last until it rests on the "
        'floor."}}\n\n'
        "### Current task\n"
        "User prompt: {caption}\n"
        "Think it through step by step."
    ),
    caption_user=(
        "The {n} images are frames taken in order from a video of {main_object}. Describe in great "
        "detail the motion and the deformation shown in the video, and say which physical laws the "
        "video follows and which it breaks."
    ),
    mismatch_system=(
        "You are an expert in physics. You receive the prompt given to a video generation model and a "
        "caption of the video the model made from it; the video should follow the prompt. Summarise "
        "how the content described by the caption fails to match the prompt. If it matches, answer "
        '"No". A worked example shows the expected answer; then solve the current task.'
    ),
    mismatch_user=(
        "### Worked example\n"
        f"User prompt: seen from the side, {_BALL} back up.\n"
        "Video caption: A ball slides from left to right over a flat surface and stretches slightly "
        "sideways as it goes; its motion is smooth and steady.\n"
        "Mismatch: Direction: the prompt asks for a vertical fall and a rebound, the video shows "
        "horizontal sliding. Missing bounce: the impact with the floor and the rebound never happen. "
        "Wrong deformation: a ball does not stretch while moving steadily; it flattens only on impact. "
        "Gravity: nothing in the video shows the ball accelerating downward.\n\n"
        "### Current task\n"
        "User prompt: {caption}\n"
        "Video caption: {video_caption}\n"
        "Think it through step by step."
    ),
    refine_system=(
        "You are an expert in writing prompts for a diffusion model that generates videos. Improve the "
        "user's prompt so that the generated video simulates the real world better. You receive the "
        "physical laws the video should follow, the mismatch between the current video and the prompt, "
        "a worked example, and the score of the current prompt (0 to 1: above 0.5 is a good prompt, "
        "below 0.5 a bad one). Give only the enhanced prompt, describing what the video should show "
        "without naming the physical laws. At most 120 words."
    ),
    refine_user=(
        "### Physical law:\n{physical_law}\n\n"
        "### Mismatch:\n{mismatch}\n\n"
        "### Worked example\n"
        "User prompt: A tennis ball falls to the floor.\n"
        "Enhanced prompt: A bright yellow tennis ball drops from the top of the frame toward a grey "
        "concrete floor, speeding up as it falls while its shadow grows under it. It hits the floor, "
        "squashes for an instant, and springs back up, rising to about two thirds of its starting "
        "height. It hangs at the top for a moment, falls again, and each following bounce is lower "
        "until the ball rolls to a stop.\n\n"
        "### Score of the current prompt\n{scores}\n\n"
        "### Current task\n"
        "User prompt: {previous_prompt}"
    ),
    format_scores=official_score,
)

TEMPLATE_SETS: dict[str, TemplateSet] = {t.name: t for t in (STRICT, OFFICIAL)}
DEFAULT_TEMPLATES = STRICT.name

_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.S | re.I)


def strip_reasoning(text: str) -> str:
    """The answer without closed reasoning blocks; with a bare closing tag (templates that open the
    block themselves), the text after it. An unclosed opening tag is left for the validator to refuse."""
    text = _THINK_BLOCK.sub("", text)
    closing = list(re.finditer(r"</(think|thinking|reasoning)>", text, re.I))
    if closing:
        text = text[closing[-1].end():]
    return text.strip()


def parse_law(text: str) -> dict[str, str]:
    """{"main_object", "physical_law"} from the answer: the last JSON object in it, else the text."""
    text = strip_reasoning(text)
    for match in reversed(list(re.finditer(r"\{.*?\}", text, re.S))):
        try:
            obj = json.loads(match.group(0), strict=False)
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
