"""Exact prompt strings of the official judges.

VideoPhy-2 AutoEval: ``VIDEOPHY2/template.py`` ("an AI assistant", trailing space after ``AI:``, space
before the
newline in the rule prompt). VideoCon-Physics: ``utils/constants.py`` ("human and AI assistant", no "an").
Captions and rules are inserted raw with ``str.format``, exactly as the official scripts do.
"""

from __future__ import annotations

from services.common import judge_tasks

_SYSTEM_AUTOEVAL = (
    "The following is a conversation between a curious human and an AI assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.\n"
)
_SYSTEM_VIDEOCON = (
    "The following is a conversation between a curious human and AI assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.\n"
)

PROMPT_SA = (
    _SYSTEM_AUTOEVAL + "Human: <|video|>\n"
    'Human: Does this video match the description: "{caption}"? '
    "Please rate the video on a scale from 1 to 5, "
    "where 5 indicates a perfect match and 1 indicates no relevance.\n"
    "AI: "
)
PROMPT_PHYSICS = (
    _SYSTEM_AUTOEVAL + "Human: <|video|>\n"
    "Human: Does this video adhere to the physical laws? "
    "Rate the video on a scale from 1 to 5, "
    "where 5 means full compliance and 1 means significant violations.\n"
    "AI: "
)
PROMPT_RULE = (
    _SYSTEM_AUTOEVAL + "Human: <|video|>\n"
    'Human: Does the video follow the physical rule: "{rule}"?\n'
    "Choose 0 if not, 1 if valid, or 2 if indeterminate. \n"
    "AI: "
)
PROMPT_VIDEOCON_SA = (
    _SYSTEM_VIDEOCON + 'Human: <|video|>\nHuman: Does this video entail the description: "{caption}"?\nAI: '
)
PROMPT_VIDEOCON_PC = (
    _SYSTEM_VIDEOCON + "Human: <|video|>\nHuman: Does this video follow the physical laws?\nAI: "
)

# The official prompt of each task the mPLUG-Owl judges answer; a query's text fills the task's
# `text_field` (services.common.judge_tasks).
PROMPTS = {
    "sa": PROMPT_SA,
    "pc": PROMPT_PHYSICS,
    "rule": PROMPT_RULE,
    "videocon_sa": PROMPT_VIDEOCON_SA,
    "videocon_pc": PROMPT_VIDEOCON_PC,
}


def build_prompt(task: str, text: str = "") -> str:
    """The official prompt for ``task``; ``text`` is the caption or rule its ``text_field`` names, else
    unused."""
    if task not in PROMPTS:
        raise ValueError(f"unknown task {task!r}")
    field = judge_tasks.task(task).text_field
    return PROMPTS[task].format(**{field: text}) if field else PROMPTS[task]
