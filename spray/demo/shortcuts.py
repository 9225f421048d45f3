"""The planted watermark of the demo world (the thesis's horse shortcut, L2055).

About a fifth of the horse photos come from one archive that stamps a copyright notice at
the bottom-left corner. :func:`stamp_watermark` is public so that tests and verification
experiments can stamp it onto images of other classes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WATERMARK_TEXT = "© PHOTO"


def stamp_watermark(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw the copyright notice at the bottom-left corner; returns (new image, (H, W) bool mask).

    The text is white with a dark outline, its height about 18% of the image height, inset
    by 8% of the width from the left and 6% of the height from the bottom (so that the
    centre crop of the preprocessing keeps it). The mask is the text's bounding box.
    """
    height, width = image.shape[:2]
    size = max(8, round(0.18 * height))
    font = ImageFont.load_default(size=size)
    stroke = max(1, size // 10)
    left, top, right, bottom = font.getbbox(WATERMARK_TEXT, stroke_width=stroke)
    x = round(0.08 * width) - left
    y = round(0.94 * height) - bottom
    canvas = Image.fromarray(image)
    ImageDraw.Draw(canvas).text(
        (x, y), WATERMARK_TEXT, font=font, fill=(255, 255, 255), stroke_width=stroke, stroke_fill=(20, 20, 20)
    )
    mask = np.zeros((height, width), dtype=bool)
    mask[max(0, y + top) : max(0, y + bottom), max(0, x + left) : max(0, x + right)] = True
    return np.asarray(canvas), mask
