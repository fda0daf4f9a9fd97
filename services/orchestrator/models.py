"""`videophy-bench models`: every generator preset (family, pipeline, official defaults, their source)
and every judge, from the registries alone (torch-free, no model loaded)."""

from __future__ import annotations

import json
from typing import Any

from videophy_bench.evaluator.catalog import judge_names, judge_spec
from videophy_bench.generator.presets import PRESETS, Preset


def preset_row(p: Preset) -> dict[str, Any]:
    family = p.family_spec
    return {
        "preset": p.name, "family": family.name, "pipeline": family.pipeline,
        "model_id": p.model_id or "(built offline)", "width": p.width, "height": p.height,
        "num_frames": p.num_frames, "frame_rule": family.frame_rule(), "steps": p.num_inference_steps,
        "guidance_scale": p.guidance_scale, "guidance_scale_2": p.guidance_scale_2,
        "flow_shift": p.flow_shift, "fps": p.fps, "extra": dict(p.extra),
        "scheduler": p.scheduler[0] if p.scheduler else "(as shipped)", "source": p.source,
    }


def judge_row(name: str) -> dict[str, Any]:
    spec = judge_spec(name)
    assert spec is not None
    return {"judge": name, "tasks": list(spec.tasks), "model_id": spec.model_id or "(built offline)",
            "description": spec.description}


def _guidance(r: dict[str, Any]) -> str:
    g = f"{r['guidance_scale']:g}"
    return g + (f"/{r['guidance_scale_2']:g}" if r["guidance_scale_2"] is not None else "")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def render(presets: list[dict[str, Any]], judges: list[dict[str, Any]]) -> str:
    head = ["PRESET", "FAMILY", "PIPELINE", "SIZE", "FRAMES", "STEPS", "GUIDANCE", "SHIFT", "FPS",
            "FAMILY PARAMS",
            "MODEL"]
    rows = [head] + [[
        r["preset"], r["family"], r["pipeline"], f"{r['width']}x{r['height']}",
        f"{r['num_frames']} ({r['frame_rule']})", str(r["steps"]), _guidance(r),
        "-" if r["flow_shift"] is None else f"{r['flow_shift']:g}", str(r["fps"]),
        ",".join(f"{k}={v:g}" for k, v in r["extra"].items()) or "-", r["model_id"],
    ] for r in presets]
    sources = "\n".join(f"  {r['preset']}: {r['source']}" for r in presets)
    judge_rows = [["JUDGE", "TASKS", "MODEL", "DESCRIPTION"]] + [
        [r["judge"], ",".join(r["tasks"]), r["model_id"], r["description"]] for r in judges]
    return (f"Generator presets (--model)\n{_table(rows)}\n\nDefaults from\n{sources}\n\n"
            f"Judges (--judge-model)\n{_table(judge_rows)}\n")


def models_main(as_json: bool = False) -> int:
    presets = [preset_row(p) for p in PRESETS.values()]
    judges = [judge_row(n) for n in judge_names()]
    if as_json:
        print(json.dumps({"presets": presets, "judges": judges}, indent=1, ensure_ascii=False))
    else:
        print(render(presets, judges), end="")
    return 0
