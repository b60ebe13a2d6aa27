"""Procedural textures with real detail (noise, patterns, printed glyphs), so that SIFT finds
features on the synthetic set as it does on a real one.

Every texture is an albedo image `[H, W, 3]` float32 in [0, 1] that covers a surface without
repeating (textures are sized to the surface they cover; `sample_bilinear` wraps only at seams).
"""

from __future__ import annotations

import string

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def fractal_noise(rng: np.random.Generator, height: int, width: int, exponent: float = 1.6) -> np.ndarray:
    """Gaussian noise with a 1/f^exponent power spectrum (periodic), normalized to [0, 1].

    Returns:
        [height, width] float32.
    """
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    radius[0, 0] = 1.0
    spectrum = (rng.standard_normal(radius.shape) + 1j * rng.standard_normal(radius.shape)) / radius**exponent
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(height, width))
    lo, hi = np.percentile(field, [1, 99])
    return np.clip((field - lo) / (hi - lo + 1e-12), 0.0, 1.0).astype(np.float32)


def random_palette(rng: np.random.Generator, count: int, saturation: float = 0.6) -> np.ndarray:
    """`count` distinct colours around a random hue. Returns [count, 3] float32 in [0.08, 0.92]."""
    base_hue = rng.uniform(0, 1)
    hues = (base_hue + np.arange(count) * rng.uniform(0.08, 0.4)) % 1.0
    values = rng.uniform(0.25, 0.9, count)
    sats = np.clip(rng.normal(saturation, 0.15, count), 0.05, 0.95)
    return np.stack([_hsv_to_rgb(h, s, v) for h, s, v in zip(hues, sats, values)]).astype(np.float32)


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.clip(np.array(rgb), 0.08, 0.92)


def _colorize(field: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Map a [H, W] field in [0, 1] through a palette gradient. Returns [H, W, 3]."""
    stops = np.linspace(0, 1, len(palette))
    return np.stack([np.interp(field, stops, palette[:, c]) for c in range(3)], axis=-1).astype(np.float32)


def _pattern(rng: np.random.Generator, kind: str, height: int, width: int, texels_per_m: float) -> np.ndarray:
    """A [H, W] pattern in [0, 1]: planks, tiles, stripes, checks or plaid, with jittered spacing."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / texels_per_m  # metres
    period = rng.uniform(0.12, 0.5)
    if kind == "planks":
        row = np.floor(yy / period)
        offset = (np.sin(row * 12.9898) * 43758.5453) % 1.0 * 1.5
        seam = (np.abs(((yy / period) % 1.0) - 0.5) > 0.46) | (np.abs(((xx + offset) / 1.2) % 1.0 - 0.5) > 0.49)
        return np.where(seam, 0.0, 0.55 + 0.45 * ((row * 0.618) % 1.0)).astype(np.float32)
    if kind == "tiles":
        cell = (np.floor(yy / period) * 7 + np.floor(xx / period) * 13) % 5 / 4.0
        grout = (np.abs((yy / period) % 1.0 - 0.5) > 0.45) | (np.abs((xx / period) % 1.0 - 0.5) > 0.45)
        return np.where(grout, 0.05, 0.3 + 0.7 * cell).astype(np.float32)
    if kind == "stripes":
        angle = rng.uniform(0, np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy) / (period * 0.5)
        return (0.5 + 0.5 * np.sign(np.sin(np.pi * t))).astype(np.float32)
    if kind == "checks":
        return ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32)
    if kind == "plaid":
        a = 0.5 + 0.5 * np.sin(2 * np.pi * xx / period)
        b = 0.5 + 0.5 * np.sin(2 * np.pi * yy / (period * 0.7))
        return (0.5 * a + 0.5 * b > 0.6).astype(np.float32) * 0.7 + 0.3 * a * b
    raise ValueError(f"unknown pattern {kind!r}")


PATTERNS = ("planks", "tiles", "stripes", "checks", "plaid")


def _font(size: int) -> ImageFont.ImageFont:
    # Pillow's bundled font: no font files needed on the machine, sized glyphs through FreeType.
    return ImageFont.load_default(size=size)


def _print_glyphs(rng: np.random.Generator, image: np.ndarray, texels_per_m: float, density: float) -> np.ndarray:
    """Stamp random letters and digits (labels, stencils, graffiti) onto an image [H, W, 3]."""
    height, width = image.shape[:2]
    canvas = Image.fromarray((image * 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    count = max(1, int(density * height * width / texels_per_m**2))
    alphabet = string.ascii_uppercase + string.digits
    for _ in range(count):
        size = int(np.clip(rng.uniform(0.04, 0.16) * texels_per_m, 8, 96))
        text = "".join(rng.choice(list(alphabet), int(rng.integers(1, 5))))
        x = int(rng.uniform(0, max(1, width - size)))
        y = int(rng.uniform(0, max(1, height - size)))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.text((x, y), text, fill=color, font=_font(size))
    return np.asarray(canvas, dtype=np.float32) / 255.0


def surface_texture(
    rng: np.random.Generator,
    width_m: float,
    height_m: float,
    texels_per_m: float,
    pattern: str | None = None,
    glyph_density: float = 6.0,
    saturation: float = 0.55,
) -> np.ndarray:
    """A detailed, non-repeating albedo texture for a surface of `width_m` × `height_m` metres.

    Noise at several scales, an optional structured pattern, and printed glyphs.

    Returns:
        [round(height_m * texels_per_m), round(width_m * texels_per_m), 3] float32 in [0, 1].
    """
    height = max(8, int(round(height_m * texels_per_m)))
    width = max(8, int(round(width_m * texels_per_m)))
    palette = random_palette(rng, 3, saturation)
    image = _colorize(fractal_noise(rng, height, width), palette)
    detail = fractal_noise(rng, height, width, exponent=0.9)[..., None]
    image = image * (0.75 + 0.5 * detail)
    if pattern is not None:
        second = random_palette(rng, 2, saturation)
        mix = _pattern(rng, pattern, height, width, texels_per_m)[..., None]
        image = image * (0.45 + 0.55 * mix) + second[0] * 0.25 * (1.0 - mix)
    image = np.clip(image, 0.02, 0.98)
    if glyph_density > 0:
        image = _print_glyphs(rng, image, texels_per_m, glyph_density)
    return image.astype(np.float32)


def skin_texture(rng: np.random.Generator, size: int, hair_rows: int) -> np.ndarray:
    """Head texture: skin tone with fine noise, hair over the first `hair_rows` rows.

    Returns:
        [size, size, 3] float32; rows run from the top of the head (row 0) downward.
    """
    tone = np.array(rng.choice([[0.87, 0.68, 0.55], [0.72, 0.52, 0.38], [0.52, 0.36, 0.25], [0.95, 0.8, 0.7]]))
    hair = random_palette(rng, 1, 0.4)[0] * 0.5
    noise = fractal_noise(rng, size, size, 1.2)[..., None]
    image = tone * (0.85 + 0.3 * noise)
    image[:hair_rows] = hair * (0.7 + 0.6 * noise[:hair_rows])
    return np.clip(image, 0, 1).astype(np.float32)


def sample_bilinear(texture: np.ndarray, u_px: np.ndarray, v_px: np.ndarray) -> np.ndarray:
    """Bilinear lookup with wrap-around.

    Args:
        texture: [H, W, 3].
        u_px, v_px: [M] texel coordinates (column, row), texel centres at integers.

    Returns:
        [M, 3] float32.
    """
    height, width = texture.shape[:2]
    u0 = np.floor(u_px)
    v0 = np.floor(v_px)
    fu = (u_px - u0).astype(np.float32)[:, None]
    fv = (v_px - v0).astype(np.float32)[:, None]
    u0 = u0.astype(np.int64) % width
    v0 = v0.astype(np.int64) % height
    u1 = (u0 + 1) % width
    v1 = (v0 + 1) % height
    top = texture[v0, u0] * (1 - fu) + texture[v0, u1] * fu
    bottom = texture[v1, u0] * (1 - fu) + texture[v1, u1] * fu
    return top * (1 - fv) + bottom * fv
