"""`ShotSpec`: what a shot is, in the terms of the shot language (the state that revisions change).

A spec is plain data (numbers, names, tuples) so that it goes into `shot.json` and `history.jsonl`
and comes back identical; `reshoot.shot_design` turns it into a camera per frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from reshoot.geometry.errors import FormatError


@dataclass(frozen=True)
class ShotSpec:
    """A designed (or explicit) shot.

    Attributes:
        angle: name of the camera angle in the vocabulary ("overhead", "high", "eye", "low") or
            "match" (the height of `match_camera`) or "explicit" (cameras from a file).
        elevation_deg: view pitch below the horizon in degrees (90 = straight down), or None when the
            camera height is fixed instead.
        height_m: fixed camera height above the floor (metres), or None.
        size: shot size name ("wide", "full", "medium", "close").
        fill: how much of the frame the subject spans (below 1: with a margin; above 1: cropped).
        target: the entity framed, pushed toward or orbited; None = everyone.
        follow: the aim follows `target` frame by frame (else it stays put, or drifts to it in a push-in).
        keep: entities that must stay inside the frame through the whole shot.
        move: "static", "push_in", "pull_out", "crane_up", "crane_down", "orbit_left", "orbit_right".
        move_amount: the move's size at normal speed (see the vocabulary file for its unit per move).
        speed: factor on `move_amount`.
        heading_offset_deg: turn around the subject from the default side (counter-clockwise from above).
        distance_scale: factor on the framing distance (closer < 1 < wider).
        roll_deg: horizon roll in degrees (0 = level).
        lens_mm: focal length, 35 mm full-frame equivalent; None = 35 mm, or the matched camera's lens.
        match_camera: a production camera whose lens and height the shot takes, or None.
        frames: (A, B) take frames A to B - 1, or None for the whole take.
        resolution: (width, height) in pixels, or None for the first production camera's.
        keyframes: for explicit shots, the cameras file (inside the shot folder) holding the keys.
        raise_m, dolly_m, truck_m: offsets of an explicit camera: up, forward, to its right (metres).
    """

    angle: str = "high"
    elevation_deg: float | None = 35.0
    height_m: float | None = None
    size: str = "wide"
    fill: float = 0.85
    target: str | None = None
    follow: bool = False
    keep: tuple[str, ...] = ()
    move: str = "static"
    move_amount: float = 0.0
    speed: float = 1.0
    heading_offset_deg: float = 0.0
    distance_scale: float = 1.0
    roll_deg: float = 0.0
    lens_mm: float | None = None
    match_camera: str | None = None
    frames: tuple[int, int] | None = None
    resolution: tuple[int, int] | None = None
    keyframes: str | None = None
    raise_m: float = 0.0
    dolly_m: float = 0.0
    truck_m: float = 0.0

    @property
    def explicit(self) -> bool:
        """The shot's cameras come from a file (keyframes), not from the design."""
        return self.keyframes is not None

    def to_json(self) -> dict[str, Any]:
        """JSON-plain dict (tuples become lists)."""
        out = asdict(self)
        for key in ("keep", "frames", "resolution"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    @staticmethod
    def from_json(data: Mapping[str, Any], where: str) -> ShotSpec:
        """The inverse of `to_json`.

        Raises:
            FormatError: unknown or missing fields, or values of the wrong type.
        """
        names = {f.name for f in fields(ShotSpec)}
        unknown = set(data) - names
        if unknown:
            raise FormatError(f"{where}: unknown shot fields {sorted(unknown)}; known: {sorted(names)}.")
        values = dict(data)
        try:
            for key in ("keep", "frames", "resolution"):
                if values.get(key) is not None:
                    values[key] = tuple(values[key])
            spec = ShotSpec(**values)
            numbers = [
                spec.fill,
                spec.move_amount,
                spec.speed,
                spec.heading_offset_deg,
                spec.distance_scale,
                spec.roll_deg,
                spec.raise_m,
                spec.dolly_m,
                spec.truck_m,
            ]
            numbers += [v for v in (spec.elevation_deg, spec.height_m, spec.lens_mm) if v is not None]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
                raise TypeError("a number is not finite")
        except TypeError as exc:
            raise FormatError(f"{where}: not a valid shot ({exc}).") from None
        return spec
