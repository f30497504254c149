"""Videos: what ``write_video`` writes is read back (imageio's ffmpeg) as the frames it was given."""

import imageio.v3 as iio
import numpy as np
import pytest

from policies.video import annotate, write_video


def frames(n: int, h: int, w: int) -> list[np.ndarray]:
    """``n`` frames ``(h, w, 3)``: frame ``k`` is a flat grey of level ``20 + 30 k``."""
    return [np.full((h, w, 3), 20 + 30 * k, np.uint8) for k in range(n)]


@pytest.mark.parametrize("size", [(32, 48), (33, 47)])  # odd sides are padded to even
def test_the_mp4_holds_every_frame_at_its_size_rate_and_content(tmp_path, size):
    h, w = size
    path = write_video(tmp_path / "sub" / "clip.mp4", frames(7, h, w), fps=5)
    assert path == tmp_path / "sub" / "clip.mp4" and path.stat().st_size > 0
    video = iio.imread(path)  # (T, H', W', 3)
    assert video.shape == (7, h + h % 2, w + w % 2, 3) and video.dtype == np.uint8
    assert iio.immeta(path)["fps"] == 5 and iio.immeta(path)["codec"] == "h264"
    levels = video.reshape(7, -1).mean(1)  # H.264 is lossy: each frame's level within 2
    np.testing.assert_allclose(levels, [20 + 30 * k for k in range(7)], atol=2)


def test_annotate_adds_an_even_text_bar_and_a_verdict_border():
    frame = np.zeros((48, 48, 3), np.uint8)
    plain = annotate(frame, "touch the red cube")
    assert plain.shape[1] == 48 and plain.shape[0] > 48 and plain.shape[0] % 2 == 0
    assert np.array_equal(plain[:48], frame)  # the frame itself is untouched
    assert plain[48:].max() > 200  # light text on the dark bar
    won, lost = annotate(frame, "x", True), annotate(frame, "x", False)
    assert tuple(won[0, 24]) == (40, 200, 70) and tuple(lost[0, 24]) == (220, 50, 50)
    many = annotate(frame, " ".join(["word"] * 40))  # wrapped onto several lines
    assert many.shape[0] > plain.shape[0]
