"""The human-judged VideoPhy-2 leaderboard from ``videophy2_test.csv``, the user's runs beside it, and the
agreement of our judge with the human labels where both scored the same videos.

``videophy2_test.csv`` (HF dataset ``videophysics/videophy2_test``) has one row per (caption, model) with
human ``sa``/``pc`` (1..5), ``joint`` (0/1), ``action``, ``is_hard`` (0/1), ``model_name``, ``category``,
``video_url`` and more (an unnamed empty column included). It is converted to the results schema
(:func:`labels_to_results`: arm = model, prompt_id = caption) so that the leaderboard numbers come from the
same code as the run numbers (:func:`metrics.subset_table`).
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videophy_bench.orchestrator import caption_source
from videophy_bench.orchestrator.prompts import normalize_caption

from . import plots
from .agreement import agreement
from .document import Column, Figure, Report, Section, Table, Text
from .intervals import DEFAULT_BOOTSTRAP, DEFAULT_SEED
from .judge_board import judge_board_sections
from .loading import Condition, prepare_results, prompt_choice
from .metrics import scored, subset_table
from .published_scores import PublishedScores

HUMAN_JUDGE = "human (VideoPhy-2 test set)"
REQUIRED_COLUMNS = ("caption", "sa", "pc", "model_name")
MATCHED_COLUMNS = (
    "prompt_id", "sa", "pc", "joint", "sa_h", "pc_h", "joint_h",
    "model", "video_url", "caption", "action", "is_hard", "cluster",
)

#: display names of ``model_name`` values
MODEL_NAMES = {
    "wan": "Wan2.1-T2V-14B",
    "cogvideo": "CogVideoX-5B",
    "cosmos": "Cosmos-Diffusion-7B",
    "sora": "OpenAI Sora (60-prompt subset)",
    "ray2": "Luma Ray2",
    "hunyuan": "HunyuanVideo-13B",
    "videocrafter": "VideoCrafter2",
}
#: published human leaderboard, joint % (all, hard, physical activities, object interactions);
#: source: Hritikbansal/videophy VIDEOPHY2/README.md
PUBLISHED_HUMAN = {
    "wan": (32.6, 21.9, 31.5, 36.2),
    "cogvideo": (25.0, 0.0, 24.6, 26.1),
    "cosmos": (24.1, 10.9, 22.6, 27.4),
    "sora": (23.3, 5.3, 22.2, 26.7),
    "ray2": (20.3, 8.3, 21.0, 18.5),
    "hunyuan": (17.2, 6.2, 17.6, 15.9),
    "videocrafter": (10.5, 2.9, 10.1, 13.1),
}
#: official AutoEval joint on the same test videos (HF videophysics/videophy2_autoeval_scores, issue #9)
PUBLISHED_AUTOEVAL = {
    "sora": 0.217,
    "hunyuan": 0.196,
    "cogvideo": 0.195,
    "ray2": 0.175,
    "wan": 0.169,
    "videocrafter": 0.164,
    "cosmos": 0.147,
}
GAP_STATEMENT = (
    "Human and AutoEval joint scores are not interchangeable. On the same test videos the official AutoEval "
    "gives lower and compressed joint scores (14.7-21.7% over the 7 models, against 10.5-32.6% by humans) "
    "and ranks Wan2.1-14B 5th of 7 where humans rank it 1st (AutoEval 16.9% vs human 32.6%); a user's "
    "AutoEval run of Wan2.1-14B gave 23.0% on all and 5.6% on hard prompts (Hritikbansal/videophy issue "
    "#19), and the authors state that the auto-rater's rankings may not match the human ones (issue #7). "
    "The published AutoEval agreement with humans is Pearson r 0.47 (SA) and 0.37 (PC), joint accuracy "
    "79.1% and F1 51.1% on unseen prompts. Compare AutoEval runs with AutoEval numbers; the distance of an "
    "AutoEval row to a human row mixes the model and the judge."
)


def read_test_csv(path: str | Path) -> pd.DataFrame:
    """Read ``videophy2_test.csv`` as text columns (empty cells missing); checks the required columns."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: not a videophy2_test.csv, missing columns {missing}")
    return raw


def labels_to_results(raw: pd.DataFrame) -> pd.DataFrame:
    """The human labels as a typed results frame: one item per row, arm = ``model_name``, prompt_id =
    caption. The file's own ``joint`` column is kept as ``joint_file``."""
    frame = pd.DataFrame(
        {
            "prompt_id": raw["caption"],
            "caption": raw["caption"],
            "arm": raw["model_name"],
            "seed": 0,
            "round": 0,
            "state": "judged",
            "sa": raw["sa"],
            "pc": raw["pc"],
            "action": raw.get("action"),
            "is_hard": raw.get("is_hard"),
            "category": raw.get("category"),
            "video_path": raw.get("video_url"),
        }
    )
    typed = prepare_results(frame)
    typed["video_url"] = raw.get("video_url", pd.Series(pd.NA, index=raw.index)).astype("string")
    typed["joint_file"] = pd.to_numeric(raw.get("joint", pd.Series(np.nan, index=raw.index)), errors="coerce")
    return typed


def leaderboard_row(
    model: str, judge: str, df: pd.DataFrame, categories: list[str], n_boot: int, seed: int
) -> dict[str, Any]:
    """Joint all (Wilson and action-bootstrap CIs), hard, easy and per category for one model or run."""
    rows = {r["subset"]: r for r in subset_table(df, n_boot=n_boot, seed=seed)}
    out: dict[str, Any] = {
        "model": model,
        "judge": judge,
        "n": rows["all"]["n"],
        "n_items": rows["all"]["n_items"],
        "coverage": rows["all"]["coverage"],
    }
    for key in ("joint", "joint_lo", "joint_hi", "joint_boot_lo", "joint_boot_hi", "mean_sa", "mean_pc"):
        out[key] = rows["all"].get(key, float("nan"))
    for name in ("hard", "easy"):
        out.update(
            {
                f"{name}": rows[name]["joint"],
                f"{name}_lo": rows[name]["joint_lo"],
                f"{name}_hi": rows[name]["joint_hi"],
                f"n_{name}": rows[name]["n"],
            }
        )
    for i, category in enumerate(categories):
        row = rows.get(f"category: {category}")
        out.update(
            {
                f"cat{i}": row["joint"] if row else float("nan"),
                f"cat{i}_lo": row["joint_lo"] if row else float("nan"),
                f"cat{i}_hi": row["joint_hi"] if row else float("nan"),
                f"n_cat{i}": row["n"] if row else 0,
            }
        )
    return out


def human_leaderboard(
    test: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED
) -> list[dict[str, Any]]:
    """One row per model of the test set, sorted by joint (all) descending, with the published values."""
    categories = sorted(test["category"].dropna().unique())
    rows = []
    for model, part in test.groupby("arm", sort=True):
        row = leaderboard_row(
            MODEL_NAMES.get(str(model), str(model)), HUMAN_JUDGE, part, categories, n_boot, seed
        )
        published = PUBLISHED_HUMAN.get(str(model))
        row["model_id"] = str(model)
        row["caption_source"] = leaderboard_prompt_choice(part)
        row["published_all"] = published[0] / 100 if published else float("nan")
        row["published_hard"] = published[1] / 100 if published else float("nan")
        rows.append(row)
    rows.sort(key=lambda r: (-np.nan_to_num(r["joint"], nan=-1.0), r["model"]))
    return rows


def leaderboard_prompt_choice(part: pd.DataFrame) -> str:
    """Which captions a leaderboard model's videos came from, as their URL folders say."""
    urls = part["video_url"] if "video_url" in part.columns else pd.Series(dtype="string")
    return caption_source.of_group(caption_source.of_url(str(u)) for u in urls.dropna())


def prompt_choice_notes(human_rows: list[dict[str, Any]], conditions: list[Condition],
                        test: pd.DataFrame) -> list[Text]:
    """In words, per run: which leaderboard models it meets like for like in prompts, and which not."""
    notes = []
    urls = set(test["video_url"].dropna()) if "video_url" in test.columns else set()
    for cond in conditions:
        own = cond.df["video_url"].dropna() if "video_url" in cond.df.columns else pd.Series(dtype="string")
        if len(own) and set(own) <= urls:
            notes.append(Text(f"{cond.label} judges the leaderboard's own videos: the same videos, so the "
                              "same prompts, as the human rows of its models."))
            continue
        choice = prompt_choice(cond.df)
        same = [r["model"] for r in human_rows if caption_source.like_for_like(choice, r["caption_source"])]
        other = [f"{r['model']} ({r['caption_source']})" for r in human_rows if r["model"] not in same]
        text = f"{cond.label} was generated from {choice} captions. "
        text += f"Like for like in prompts with: {', '.join(same)}. " if same else ""
        text += (f"Not like for like (the model's videos were generated from other or unrecorded "
                 f"captions, as their URL folders say): {', '.join(other)}." if other else "")
        notes.append(Text(text.strip(), "warning" if other else "info"))
    return notes


def _url_tail(value: object, parts: int = 2) -> str | None:
    if pd.isna(value):
        return None
    path = urllib.parse.unquote(urllib.parse.urlparse(str(value)).path).replace("\\", "/")
    pieces = [p for p in path.split("/") if p]
    return "/".join(pieces[-parts:]) if len(pieces) >= parts else None


def match_human(run: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Pair the run's scored items with human labels of the same videos.

    Tried in order, the first key that matches anything wins: the run's ``video_url`` column (if it has
    one) equal to the test ``video_url``; the last two path components of ``video_path`` equal to those
    of ``video_url`` (e.g. ``hunyuan_xdit/A_yo-yo_....mp4``); (caption, arm) equal to (caption,
    model_name), captions compared after ``normalize_caption`` as everywhere else. Test keys that occur
    more than once are ambiguous and dropped. Returns the matched frame (:data:`MATCHED_COLUMNS`: the
    run's ``prompt_id``, ``sa``, ``pc``, ``joint``; the human ``sa_h``, ``pc_h``, ``joint_h``; the test
    row's ``model`` (model_name), ``video_url``, ``caption``, ``action``, ``is_hard`` and bootstrap
    ``cluster``) and the key used.
    """
    ok = scored(run)
    human = scored(test)
    candidates = []
    if "video_url" in ok.columns:
        candidates.append(("video_url", ok["video_url"].astype("string"), human["video_url"]))
    candidates.append(("video path tail", ok["video_path"].map(_url_tail), human["video_url"].map(_url_tail)))
    candidates.append(
        (
            "caption + model",
            ok["caption"].astype(str).map(normalize_caption) + "\x00" + ok["arm"].astype(str),
            human["caption"].astype(str).map(normalize_caption) + "\x00" + human["arm"].astype(str),
        )
    )
    for name, run_key, human_key in candidates:
        unique = human_key[~human_key.duplicated(keep=False) & human_key.notna()]
        lookup = pd.Series(unique.index, index=unique.to_numpy())
        hits = run_key[run_key.notna() & run_key.isin(lookup.index)]
        if hits.empty:
            continue
        h = human.loc[lookup[hits.to_numpy()].to_numpy()]
        mine = ok.loc[hits.index]
        matched = pd.DataFrame(
            {
                "prompt_id": mine["prompt_id"].to_numpy(),
                "sa": mine["sa"].to_numpy(),
                "pc": mine["pc"].to_numpy(),
                "joint": mine["joint"].to_numpy(),
                "sa_h": h["sa"].to_numpy(),
                "pc_h": h["pc"].to_numpy(),
                "joint_h": h["joint"].to_numpy(),
                "model": h["arm"].to_numpy(),
                "video_url": h["video_url"].to_numpy(),
                "caption": h["caption"].to_numpy(),
                "action": h["action"].to_numpy(),
                "is_hard": h["is_hard"].to_numpy(),
                "cluster": h["cluster"].to_numpy(),
            }
        )
        return matched, name
    return pd.DataFrame(columns=list(MATCHED_COLUMNS)), "none"


def _leaderboard_columns(categories: list[str]) -> list[Column]:
    columns = [
        Column("model", "model / run"),
        Column("judge", "judge"),
        Column("n", "n scored", "int"),
        Column("joint", "joint all [95% Wilson CI]", "pct", ("joint_lo", "joint_hi")),
        Column("joint_boot_lo", "bootstrap low", "pct"),
        Column("joint_boot_hi", "bootstrap high", "pct"),
        Column("hard", "joint hard [Wilson]", "pct", ("hard_lo", "hard_hi")),
        Column("n_hard", "n hard", "int"),
        Column("easy", "joint easy [Wilson]", "pct", ("easy_lo", "easy_hi")),
    ]
    for i, category in enumerate(categories):
        columns.append(Column(f"cat{i}", f"joint {category}", "pct", (f"cat{i}_lo", f"cat{i}_hi")))
    columns += [
        Column("mean_sa", "mean SA", "num2"),
        Column("mean_pc", "mean PC", "num2"),
        Column("caption_source", "generated from"),
        Column("published_all", "published all", "pct"),
        Column("published_hard", "published hard", "pct"),
    ]
    return columns


def build_leaderboard_report(
    test: pd.DataFrame,
    conditions: list[Condition],
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    source: str = "",
    published: PublishedScores | None = None,
    published_note: str = "",
) -> Report:
    """The leaderboard report: human rows from ``test`` (typed, :func:`labels_to_results`), the runs beside
    them labelled by judge, the published AutoEval-vs-human gap, and the leaderboard on one judge
    (:mod:`judge_board`: judge vs human on the same videos, agreement, the user's runs on the judge's scale
    and, estimated, on the human scale, like-for-like statements, the published per-video AutoEval scores
    reproduced when ``published`` is given; ``published_note`` says why they are absent)."""
    categories = sorted(test["category"].dropna().unique())
    human_rows = human_leaderboard(test, n_boot=n_boot, seed=seed)
    run_rows = [leaderboard_row(c.label, c.judge, c.df, categories, n_boot, seed) for c in conditions]
    for row, cond in zip(run_rows, conditions, strict=True):
        row["caption_source"] = prompt_choice(cond.df)
    rows = human_rows + run_rows
    table = Table(
        "leaderboard",
        "Joint score (SA>=4 and PC>=4) by model",
        _leaderboard_columns(categories),
        rows,
        hidden=("model_id",),
        note="Human rows are computed from the test CSV; 'published' gives the VideoPhy-2 README table "
        "for comparison. Bootstrap CIs resample actions. 'generated from': the captions the videos were "
        "generated from (leaderboard models: as their URL folders say, e.g. *_hard_upsampled/).",
    )
    colors = [plots.PALETTE[0] if r["judge"] == HUMAN_JUDGE else plots.PALETTE[1] for r in rows]
    figure = Figure(
        "leaderboard_plot",
        "Joint (all) with 95% Wilson CI; blue = human judge, orange = runs",
        plots.horizontal_bars(rows, "model", "joint", "joint_lo", "joint_hi", "joint (%)", colors=colors),
        data_table="leaderboard",
    )
    notes = prompt_choice_notes(human_rows, conditions, test)
    blocks = [Text(GAP_STATEMENT, "warning"), *notes, table, figure]
    sections = [Section("leaderboard", "Leaderboard", blocks)]

    human_by_id = {r["model_id"]: r for r in human_rows}
    gap_rows = []
    for model_id, auto in PUBLISHED_AUTOEVAL.items():
        human = human_by_id.get(model_id, {}).get("joint", float("nan"))
        gap_rows.append(
            {
                "model": MODEL_NAMES[model_id],
                "human": human,
                "autoeval": auto,
                "published_human": PUBLISHED_HUMAN[model_id][0] / 100,
                "gap": auto - human,
            }
        )
    sections.append(
        Section(
            "gap",
            "AutoEval vs human on the same videos (published)",
            [
                Table(
                    "autoeval_gap",
                    "Official AutoEval joint vs human joint",
                    [
                        Column("model", "model"),
                        Column("human", "human (this CSV)", "pct"),
                        Column("published_human", "human (published)", "pct"),
                        Column("autoeval", "AutoEval (published)", "pct"),
                        Column("gap", "AutoEval - human", "pp"),
                    ],
                    gap_rows,
                    note="AutoEval joint from HF videophysics/videophy2_autoeval_scores "
                    "(Hritikbansal/videophy issue #9).",
                )
            ],
        )
    )

    sections += judge_board_sections(
        test, conditions, MODEL_NAMES, PUBLISHED_AUTOEVAL, published=published,
        published_note=published_note, n_boot=n_boot, seed=seed,
    )

    checks = test["joint_file"].notna() & test["joint"].notna()
    mismatch = int((test.loc[checks, "joint_file"] != test.loc[checks, "joint"]).sum())
    sections.append(
        Section(
            "data",
            "Data checks",
            [
                Text(
                    f"Test CSV{(' ' + source) if source else ''}: {len(test)} rows, "
                    f"{test['arm'].nunique()} models, "
                    f"{test['prompt_id'].nunique()} captions, {test['action'].nunique()} actions, "
                    f"{int(test['is_hard'].fillna(False).sum())} hard rows; "
                    f"{int((test['status'] != 'scored').sum())} rows "
                    "without both human scores; the file's joint column disagrees with SA>=4 and PC>=4 on "
                    f"{mismatch} of {int(checks.sum())} rows (joint is recomputed from SA and PC; "
                    f"{int(test['joint'].sum())} passes).",
                    "warning" if mismatch else "info",
                )
            ],
        )
    )
    meta = {"test csv": source or "(given frame)", "bootstrap resamples": n_boot, "bootstrap seed": seed}
    return Report("VideoPhy-2 leaderboard: human judges and this project's runs", sections, meta)


__all__ = [
    "agreement",
    "build_leaderboard_report",
    "human_leaderboard",
    "labels_to_results",
    "match_human",
    "read_test_csv",
]
