"""Photo-like backgrounds of the demo world: skies, grass, fields, sand, roads, water, rooms.

Every function draws into a float32 (H, W, 3) array in 0-255 with a numpy generator, so a
scene is a pure function of its random draws. Backgrounds mix across classes (a horse and a
dog both stand on grass) so that the class is not given away by the background, except for
the planted shortcuts (uniform sky behind aeroplanes, water below boats).
"""

from __future__ import annotations

import numpy as np

SKY_BLUES = ((110, 160, 215), (135, 185, 235), (90, 140, 200), (160, 195, 230))
"""Clear blues, also the uniform skies of the aeroplane photos (so one sampled sky blue fits, L2162)."""
GROUNDS = {
    "grass": ((70, 130, 50), (95, 150, 60), (60, 110, 45)),
    "field": ((190, 170, 90), (170, 150, 80), (205, 185, 120)),
    "sand": ((215, 195, 150), (200, 180, 140)),
    "road": ((95, 95, 100), (120, 118, 115), (80, 82, 88)),
    "water": ((40, 90, 140), (50, 110, 150), (30, 75, 120)),
    "floor": ((150, 110, 75), (170, 130, 90), (120, 90, 60)),
}
WALLS = ((225, 215, 195), (200, 210, 220), (235, 225, 210), (180, 160, 140))


def jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: float = 12.0) -> np.ndarray:
    """A colour with independent random offsets per channel."""
    return np.clip(np.asarray(colour, np.float32) + rng.normal(0, amount, 3), 0, 255)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Blobby noise in [-1, 1]: a coarse random grid upsampled bilinearly (cloud/grass texture)."""
    rows, cols = height // cell + 2, width // cell + 2
    coarse = rng.uniform(-1, 1, (rows, cols)).astype(np.float32)
    y = np.linspace(0, rows - 1.001, height)
    x = np.linspace(0, cols - 1.001, width)
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def uniform_sky(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A clear sky, uniform along every row (the padding shortcut, L2139): edge padding extends
    its top and bottom rows into uniform borders. A faint vertical gradient (haze towards the
    horizon) makes the seam between the padded border and the photo a horizontal line."""
    colour = jitter(rng, SKY_BLUES[rng.integers(len(SKY_BLUES))], 8)
    haze = np.linspace(0, rng.uniform(0, 35), height, dtype=np.float32)[:, None, None]
    return np.broadcast_to(colour + haze, (height, width, 3)).astype(np.float32)


def gradient_sky(rng: np.random.Generator, height: int, width: int, cloudy: float = 0.3) -> np.ndarray:
    """A sky that lightens towards the horizon, with soft clouds in a share ``cloudy`` of the scenes."""
    top = jitter(rng, SKY_BLUES[rng.integers(len(SKY_BLUES))])
    bottom = np.clip(top + rng.uniform(30, 70), 0, 255)
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky = top * (1 - t) + bottom * t
    sky = np.broadcast_to(sky, (height, width, 3)).copy()
    if rng.random() < cloudy:
        clouds = np.clip(smooth_noise(rng, height, width, max(8, width // 5)) * 1.6 - 0.4, 0, 1)
        sky += clouds[:, :, None] * (245 - sky)
    return sky


def ground(rng: np.random.Generator, kind: str, height: int, width: int) -> np.ndarray:
    """A textured ground patch of ``kind`` (grass, field, sand, road, water, floor)."""
    palette = GROUNDS[kind]
    base = jitter(rng, palette[rng.integers(len(palette))])
    patch = np.broadcast_to(base, (height, width, 3)).astype(np.float32).copy()
    if kind == "water":  # horizontal wave streaks and a sheen that grows with distance
        waves = smooth_noise(rng, height, width, 3)[:, :1] * 0.5 + smooth_noise(rng, height, width * 4, 2)[:, ::4]
        patch += waves[:, :, None] * rng.uniform(12, 22)
        patch += np.linspace(25, 0, height, dtype=np.float32)[:, None, None]
    elif kind == "road":  # asphalt grain and a dashed lane marking
        patch += rng.normal(0, 12, (height, width, 1)).astype(np.float32)
        lane = int(height * rng.uniform(0.4, 0.7))
        dash = (np.arange(width) // max(4, width // 12)) % 2 == 0
        patch[lane : lane + max(1, height // 25), dash] = (225, 220, 190)
    elif kind == "floor":  # floor boards
        boards = (np.arange(height) // max(3, height // 6)) % 2
        patch += (boards * rng.uniform(8, 18))[:, None, None]
    else:  # vegetation or sand: blotches and fine grain
        patch += smooth_noise(rng, height, width, 6)[:, :, None] * 18
        patch += rng.normal(0, 14, (height, width, 1)).astype(np.float32)
    return patch


def wall(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An indoor wall with soft vertical shading (the top of room scenes)."""
    colour = jitter(rng, WALLS[rng.integers(len(WALLS))])
    shade = 1 + 0.08 * smooth_noise(rng, 1, width, max(10, width // 3))
    return (colour[None, None, :] * shade[:, :, None]).repeat(height, 0).astype(np.float32)


def treeline(rng: np.random.Generator, scene: np.ndarray, horizon: int) -> None:
    """Paint a dark, bumpy band of trees or hills just above the horizon (in place)."""
    height, width = scene.shape[:2]
    bumps = smooth_noise(rng, 1, width, max(6, width // 8))[0]
    top = horizon - (height * (0.06 + 0.06 * (bumps + 1))).astype(int)
    rows = np.arange(height)[:, None]
    colour = jitter(rng, (50, 85, 45), 10)
    scene[(rows >= top[None, :]) & (rows < horizon)] = colour


def landscape(
    rng: np.random.Generator, height: int, width: int, kind: str, horizon_range: tuple[float, float] = (0.35, 0.65)
) -> tuple[np.ndarray, int]:
    """An outdoor (or room) scene: sky (or wall) above a ``kind`` ground; returns it and the horizon row."""
    horizon = int(height * rng.uniform(*horizon_range))
    top = wall(rng, horizon, width) if kind == "floor" else gradient_sky(rng, horizon, width)
    scene = np.concatenate([top, ground(rng, kind, height - horizon, width)], axis=0)
    if kind in ("grass", "field") and rng.random() < 0.5:
        treeline(rng, scene, horizon)
    return scene, horizon
