"""N frames sampled evenly from an MP4, as base64 JPEG data URLs (OpenAI image_url parts)."""

from __future__ import annotations

from pathlib import Path

from videophy_bench.common.openai_chat import data_url


def sample_indices(total: int, n: int) -> list[int]:
    if total <= 0 or n <= 0:
        return []
    if n >= total:
        return list(range(total))
    return [round(i * (total - 1) / (n - 1)) for i in range(n)] if n > 1 else [total // 2]


def frame_urls(path: Path, n: int, max_side: int = 1024, quality: int = 90) -> list[str]:
    import av

    with av.open(str(path)) as container:
        total = sum(1 for _ in container.decode(video=0))
    wanted = set(sample_indices(total, n))
    images = []
    with av.open(str(path)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k in wanted:
                images.append(frame.to_image())
    out = []
    for img in images:
        if max_side and max(img.size) > max_side:
            scale = max_side / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
        out.append(data_url(img, "jpeg", quality))
    return out
