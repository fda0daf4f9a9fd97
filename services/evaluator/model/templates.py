"""Exact prompt strings of the official judges.

VideoPhy-2 AutoEval: ``VIDEOPHY2/template.py`` ("an AI assistant", trailing space after ``AI:``, space
before the
newline in the rule prompt). VideoCon-Physics: ``utils/constants.py`` ("human and AI assistant", no "an").
Captions and rules are inserted raw with ``str.format``, exactly as the official scripts do.
"""

from __future__ import annotations

from videophy_bench.common import judge_tasks

# The system sentence of the AutoEval prompts, without its newline (the VLM judge's system message).
AUTOEVAL_SYSTEM = (
    "The following is a conversation between a curious human and an AI assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
_SYSTEM_AUTOEVAL = AUTOEVAL_SYSTEM + "\n"
_SYSTEM_VIDEOCON = (
    "The following is a conversation between a curious human and AI assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.\n"
)

# The AutoEval rubric: the human turn of each task after the video, as `VIDEOPHY2/template.py` has it.
QUESTIONS = {
    "sa": ('Does this video match the description: "{caption}"? '
           "Please rate the video on a scale from 1 to 5, "
           "where 5 indicates a perfect match and 1 indicates no relevance."),
    "pc": ("Does this video adhere to the physical laws? "
           "Rate the video on a scale from 1 to 5, "
           "where 5 means full compliance and 1 means significant violations."),
    "rule": ('Does the video follow the physical rule: "{rule}"?\n'
             "Choose 0 if not, 1 if valid, or 2 if indeterminate. "),
}


def _autoeval(task: str) -> str:
    return _SYSTEM_AUTOEVAL + "Human: <|video|>\nHuman: " + QUESTIONS[task] + "\nAI: "


PROMPT_SA = _autoeval("sa")
PROMPT_PHYSICS = _autoeval("pc")
PROMPT_RULE = _autoeval("rule")
PROMPT_VIDEOCON_SA = (
    _SYSTEM_VIDEOCON + 'Human: <|video|>\nHuman: Does this video entail the description: "{caption}"?\nAI: '
)
PROMPT_VIDEOCON_PC = (
    _SYSTEM_VIDEOCON + "Human: <|video|>\nHuman: Does this video follow the physical laws?\nAI: "
)

# The official prompt of each task the mPLUG-Owl judges answer; a query's text fills the task's
# `text_field` (videophy_bench.common.judge_tasks).
PROMPTS = {
    "sa": PROMPT_SA,
    "pc": PROMPT_PHYSICS,
    "rule": PROMPT_RULE,
    "videocon_sa": PROMPT_VIDEOCON_SA,
    "videocon_pc": PROMPT_VIDEOCON_PC,
}


def _fill(template: str, task: str, text: str) -> str:
    field = judge_tasks.task(task).text_field
    return template.format(**{field: text}) if field else template


def question(task: str, text: str = "") -> str:
    """The AutoEval rubric question of ``task`` (sa, pc, rule) with its caption or rule inserted raw."""
    if task not in QUESTIONS:
        raise ValueError(f"no AutoEval question for task {task!r}")
    return _fill(QUESTIONS[task], task, text)


def build_prompt(task: str, text: str = "") -> str:
    """The official prompt for ``task``; ``text`` is the caption or rule its ``text_field`` names, else
    unused."""
    if task not in PROMPTS:
        raise ValueError(f"unknown task {task!r}")
    return _fill(PROMPTS[task], task, text)
