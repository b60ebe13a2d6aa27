"""What the user knows about metric scale (`ScaleHint`): a light module, so that settings are read and
compared without loading the geometry that uses them (`world_frame`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .validation import check_number


@dataclass(frozen=True)
class ScaleHint:
    """What the user knows about metric scale.

    Attributes:
        known_distance: (camera a, camera b, metres between their centres), or None.
        camera_heights: camera name → height of its centre above the floor in metres; the name "*"
            means every production camera stands at that height on average.
    """

    known_distance: tuple[str, str, float] | None = None
    camera_heights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Distances and heights must be positive finite metres (up to 1 km): a camera sits above the floor."""
        if self.known_distance is not None:
            a, b, metres = self.known_distance
            what = f"--known-distance {a}:{b} (metres between the camera centres)"
            check_number(metres, what, 0, 1000, low_open=True)
        for name, metres in self.camera_heights.items():
            what = "--camera-height" + ("" if name == "*" else f" {name}") + " (metres of the camera above the floor)"
            check_number(metres, what, 0, 1000, low_open=True)
