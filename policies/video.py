"""Frames -> annotated mp4: the instruction and the outcome drawn on every frame."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont


def annotate(frame: np.ndarray, text: str, success: bool | None = None) -> np.ndarray:
    """Draw ``text`` in a bar under the frame; a green/red border once ``success`` is known."""
    h, w, _ = frame.shape
    font = ImageFont.load_default(size=max(10, w // 24))
    lines = _wrap(text, font, w - 8)
    bar = 6 + len(lines) * (font.size + 3)
    bar += (h + bar) % 2  # H.264 with yuv420p needs even sides
    canvas = Image.new("RGB", (w, h + bar), (20, 20, 24))
    canvas.paste(Image.fromarray(frame), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((4, h + 3 + i * (font.size + 3)), line, fill=(235, 235, 235), font=font)
    if success is not None:
        colour = (40, 200, 70) if success else (220, 50, 50)
        draw.rectangle([0, 0, w - 1, h - 1], outline=colour, width=max(2, w // 64))
    return np.asarray(canvas)  # (H + bar, W, 3) uint8


def write_video(path: str | Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Write ``frames`` (all the same size) as an H.264 mp4 readable by any browser."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # macro_block_size=1: no silent resize; odd sides are padded instead (yuv420p needs even)
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as writer:
        for frame in frames:
            h, w = frame.shape[:2]
            writer.append_data(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))
    return path


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return [*lines, line] if line else lines or [""]
