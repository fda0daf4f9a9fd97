"""Which caption a video was generated from: the prompt choice that "like for like" needs.

One value per item (results.csv `caption_source`, docs/results-schema.md):

- `original`: generated from the prompt's `caption`;
- `upsampled`: generated from its `upsampled_caption`;
- `other`: generated from a text that is neither (e.g. a PhyT2V-refined prompt);
- `unknown`: made elsewhere, and nothing says which (a `--videos` CSV; a leaderboard folder whose
  name does not say).

Videos this project generates know it exactly (`gen_prompt` against the prompt set). The VideoPhy-2
leaderboard's videos say it only in their URL's folder name (`wan_videophy2_test_hard_upsampled/`,
`cogvideoX5b_hard_upsampled/`): a folder name with the word `upsampled` means upsampled captions, one
with `original` (or `orig`) the original ones; any other folder (`hunyuan_xdit/`,
`sora_hard_videophy2/`) is `unknown`, never guessed. A group of items (an arm, a leaderboard model)
has one choice when all its items agree, else `mixed`. Two groups are compared like for like only
when both have the same known choice.
"""

from __future__ import annotations

import re
import urllib.parse
from collections import Counter
from collections.abc import Iterable

ORIGINAL = "original"
UPSAMPLED = "upsampled"
OTHER = "other"
UNKNOWN = "unknown"
MIXED = "mixed"
VALUES = (ORIGINAL, UPSAMPLED, OTHER, UNKNOWN)
KNOWN = (ORIGINAL, UPSAMPLED)

_FOLDER_WORDS = {"upsampled": UPSAMPLED, "original": ORIGINAL, "orig": ORIGINAL}


def of_generation(gen_prompt: str, caption: str, upsampled_caption: str) -> str:
    """An item generated here: what `gen_prompt` (the text sent) was; `unknown` without one."""
    if not gen_prompt:
        return UNKNOWN
    if gen_prompt == caption:
        return ORIGINAL
    if upsampled_caption and gen_prompt == upsampled_caption:
        return UPSAMPLED
    return OTHER


def url_folder(url: str) -> str:
    """The folder that holds the URL's file (`cogvideoX5b_hard_upsampled`), "" when it has none."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    parts = [p for p in path.split("/") if p]
    return parts[-2] if len(parts) >= 2 else ""


def of_url(url: str) -> str:
    """A leaderboard video: what its folder's name says (words split at `_`, `-`, `.`, case ignored)."""
    words = {w.lower() for w in re.split(r"[_\-.\s]+", url_folder(url)) if w}
    found = {_FOLDER_WORDS[w] for w in words if w in _FOLDER_WORDS}
    return found.pop() if len(found) == 1 else UNKNOWN


def of_group(values: Iterable[str | None]) -> str:
    """One choice for a group of items: the value all share, `mixed` when they differ, `unknown`
    when empty or unrecorded."""
    seen = {v or UNKNOWN for v in values}
    if not seen:
        return UNKNOWN
    return seen.pop() if len(seen) == 1 else MIXED


def tally(values: Iterable[str | None]) -> dict[str, int]:
    """Items per value (the evidence behind `of_group`)."""
    return dict(sorted(Counter(v or UNKNOWN for v in values).items()))


def like_for_like(a: str, b: str) -> bool:
    return a == b and a in KNOWN


def mismatch(label_a: str, a: str, label_b: str, b: str) -> str:
    """One sentence when `a` and `b` (group choices) are not the same known prompt choice, else ""."""
    if like_for_like(a, b):
        return ""

    def say(label: str, value: str) -> str:
        if value in KNOWN:
            return f"{label} was generated from the {value} captions"
        if value == OTHER:
            return f"{label} was generated from texts that are neither the captions nor the upsampled ones"
        if value == MIXED:
            return f"{label} mixes videos generated from different captions"
        return f"nothing records which captions {label} was generated from"

    if a in KNOWN and b in KNOWN:
        return (f"Prompt choice differs: {say(label_a, a)}, {say(label_b, b)}; the difference mixes the "
                "prompt choice with the model (generate with --upsampled, or without it, to match).")
    return (f"Prompt choice not confirmed like for like: {say(label_a, a)}; {say(label_b, b)}.")
