"""The layout artefact: `Layout`, `Entity` and `EntityFrame`, and the one reader and one writer of
`layout.json` (`reshoot/layout` v1, docs/formats.md), as `cameras_io` is for cameras.

People edit `layout.json` by hand (to name "character_1" "Maya"), so `read_layout` checks every entity
where the file is read: a typo is an error that names the entity, not a crash later on. The synthetic
generator's `gt/entities.json` is the same format and reads the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reshoot.geometry.errors import FormatError, InputError
from reshoot.geometry.files import read_json_document, write_json_document
from reshoot.geometry.validation import check_name

KIND = "layout"
VERSION = 1
ENTITY_KINDS = ("character", "prop")
Vector3 = tuple[float, float, float]


@dataclass(frozen=True)
class EntityFrame:
    """Where an entity is in one take frame (a prop: in the whole take). World metres, z up.

    Attributes:
        frame: the take frame; None for a prop's one box.
        position: box centre.
        box_min, box_max: the axis-aligned box.
        floor_position: the point on the floor it stands on (None: not recorded, use `position`).
        confidence: 0..1 (None: not recorded).
        cameras: the cameras that saw it (None: not recorded).
        interpolated: not detected in this frame: placed on the track's line through a brief gap.
    """

    frame: int | None
    position: Vector3
    box_min: Vector3
    box_max: Vector3
    floor_position: Vector3 | None = None
    confidence: float | None = None
    cameras: tuple[str, ...] | None = None
    interpolated: bool = False

    @property
    def floor(self) -> np.ndarray:
        """[3] the floor point (the position where none is recorded)."""
        return np.asarray(self.floor_position if self.floor_position is not None else self.position, float)

    @property
    def box(self) -> np.ndarray:
        """[2, 3] box min and max."""
        return np.array([self.box_min, self.box_max], float)


@dataclass(frozen=True)
class Entity:
    """A character (tracked frame by frame) or a prop (one box) of the layout.

    Attributes:
        entity_id: the layout's id (also the conditioning's entity pass value - 1).
        name: a name safe as a file name; the user's to change.
        kind: "character" or "prop".
        frames: the frames it was found in, in order; a prop has one with `frame` None.
    """

    entity_id: int
    name: str
    kind: str
    frames: tuple[EntityFrame, ...]

    @property
    def is_prop(self) -> bool:
        return self.frames[0].frame is None

    def observed_frames(self) -> set[int] | None:
        """The take frames where the layout found it, not interpolated; None for a prop (every frame)."""
        if self.is_prop:
            return None
        return {int(f.frame) for f in self.frames if not f.interpolated and f.frame is not None}

    def boxes(self, take: range) -> np.ndarray:
        """[T, 2, 3] box min and max on every frame of `take`; a frame it was not found in takes the box of
        the nearest frame it was."""
        if self.is_prop:
            return np.broadcast_to(self.frames[0].box, (len(take), 2, 3)).copy()
        known = np.array([f.frame for f in self.frames])
        boxes = np.stack([f.box for f in self.frames])
        nearest = np.abs(np.arange(take.start, take.stop)[:, None] - known[None]).argmin(axis=1)
        return boxes[nearest]

    def mean_xy(self) -> np.ndarray:
        """[2] x, y of its box centres, averaged over its frames (metres)."""
        return np.mean([f.position[:2] for f in self.frames], axis=0)


@dataclass(frozen=True)
class Layout:
    """Everything `layout.json` holds.

    Attributes:
        entities: by id.
        cameras: the registered cameras; cameras_left_out: those left out of the character search.
        frames: (first, end) take frames it covers (end exclusive); None where not recorded.
        warnings: what the layout stage warned about.
        floor_z: the floor's height (0 in a registered workspace).
    """

    entities: tuple[Entity, ...]
    cameras: tuple[str, ...] = ()
    cameras_left_out: tuple[str, ...] = ()
    frames: tuple[int, int] | None = None
    warnings: tuple[str, ...] = ()
    floor_z: float = 0.0

    def of_kind(self, kind: str) -> list[Entity]:
        return [e for e in self.entities if e.kind == kind]

    def names(self) -> list[str]:
        return [e.name for e in self.entities]

    def entity(self, name: str) -> Entity:
        """The entity called `name`.

        Raises:
            InputError: no entity has that name (the message lists those that do).
        """
        for e in self.entities:
            if e.name == name:
                return e
        raise InputError(f"{name!r} is not in the layout ({', '.join(self.names()) or 'no entities'}).")


def _vector(value: object) -> Vector3 | None:
    """The value as 3 finite floats, or None when it is not that."""
    if (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        return (float(value[0]), float(value[1]), float(value[2]))
    return None


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entity_frame(row: object, where: str) -> EntityFrame:
    corners = [_vector(row.get(key)) for key in ("position", "box_min", "box_max")] if isinstance(row, dict) else []
    if not isinstance(row, dict) or not (row.get("frame") is None or _whole(row["frame"])) or None in corners:
        raise FormatError(
            f"{where}: frames must be a non-empty list of {{frame (a whole number, or null for "
            "a prop), position, box_min, box_max (3 finite numbers each)}}."
        )
    position, box_min, box_max = corners
    assert position is not None and box_min is not None and box_max is not None
    floor = _vector(row.get("floor_position"))
    confidence = row.get("confidence")
    cameras = row.get("cameras")
    return EntityFrame(
        row.get("frame"),
        position,
        box_min,
        box_max,
        floor,
        float(confidence) if isinstance(confidence, (int, float)) and not isinstance(confidence, bool) else None,
        tuple(str(c) for c in cameras) if isinstance(cameras, list) else None,
        bool(row.get("interpolated", False)),
    )


def _entity(raw: object, i: int, path: Path) -> Entity:
    where = f"{path}: entity #{i}"
    if not isinstance(raw, dict):
        raise FormatError(f"{where}: expected an object with name, kind, id and frames.")
    try:
        name = check_name(raw.get("name"), f"{where} name", "rename it in layout.json")
    except InputError as error:
        raise FormatError(str(error)) from None
    where = f"{path}: entity {name!r}"
    if raw.get("kind") not in ENTITY_KINDS:
        raise FormatError(f"{where}: kind must be one of {ENTITY_KINDS}, got {raw.get('kind')!r}.")
    if not _whole(raw.get("id")):
        raise FormatError(f"{where}: id must be a whole number, got {raw.get('id')!r}.")
    rows = raw.get("frames")
    if not isinstance(rows, list) or not rows:
        raise FormatError(f"{where}: frames must be a non-empty list of {{frame, position, box_min, box_max}}.")
    frames = tuple(_entity_frame(row, where) for row in rows)
    if (frames[0].frame is None) != all(f.frame is None for f in frames) or (
        frames[0].frame is None and len(frames) > 1
    ):
        raise FormatError(f"{where}: a prop has one frame with frame null; a character has numbered frames only.")
    return Entity(int(raw["id"]), name, raw["kind"], frames)


def read_layout(path: str | Path) -> Layout:
    """Read and check a layout document: every entity has a name safe as a file name (`check_name`), a
    kind ("character" or "prop"), a whole-number id, and frames with a `frame` (a whole number; null for
    a prop's one box) and finite 3-number `position`, `box_min`, `box_max`. Names and ids are unique.

    Raises:
        InputError: the file is missing, not JSON, of another format or a newer version (FormatError),
            or an entity breaks the rules (FormatError, naming the entity and what to fix).
    """
    path = Path(path)
    document = read_json_document(path, KIND, VERSION)
    raw = document.get("entities", [])
    if not isinstance(raw, list):
        raise FormatError(f'{path}: "entities" must be a list (see docs/formats.md, reshoot/layout).')
    entities = [_entity(e, i, path) for i, e in enumerate(raw)]
    names: set[str] = set()
    ids: set[int] = set()
    for e in entities:
        if e.name in names or e.entity_id in ids:
            raise FormatError(
                f"{path}: entity {e.name!r}: the name or id {e.entity_id} is used twice; every entity needs its own."
            )
        names.add(e.name)
        ids.add(e.entity_id)
    span = document.get("frames")
    left_out = document.get("cameras_left_out")
    return Layout(
        tuple(entities),
        tuple(str(c) for c in document.get("cameras", []) or []),
        tuple(str(c) for c in left_out) if isinstance(left_out, list) else (),
        (int(span[0]), int(span[1])) if isinstance(span, list) and len(span) == 2 and all(map(_whole, span)) else None,
        tuple(str(w) for w in document.get("warnings", []) or []),
        float((document.get("floor") or {}).get("z", 0.0)),
    )


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(float(v), 4) for v in values]


def _row(f: EntityFrame) -> dict:
    row: dict = {
        "frame": f.frame,
        "position": _rounded(f.position),
        **({"floor_position": _rounded(f.floor_position)} if f.floor_position is not None else {}),
        "box_min": _rounded(f.box_min),
        "box_max": _rounded(f.box_max),
        **({"confidence": round(f.confidence, 3)} if f.confidence is not None else {}),
        **({"cameras": list(f.cameras)} if f.cameras is not None else {}),
        **({"interpolated": True} if f.interpolated else {}),
    }
    return row


def layout_document(layout: Layout) -> dict:
    """The body of `layout.json` for `layout` (positions rounded to 0.1 mm)."""
    return {
        "floor": {"z": layout.floor_z},
        "cameras": list(layout.cameras),
        "cameras_left_out": list(layout.cameras_left_out),
        "frames": list(layout.frames) if layout.frames is not None else None,
        "warnings": list(layout.warnings),
        "entities": [
            {"id": e.entity_id, "name": e.name, "kind": e.kind, "frames": [_row(f) for f in e.frames]}
            for e in sorted(layout.entities, key=lambda e: e.entity_id)
        ],
    }


def write_layout(path: str | Path, layout: Layout) -> None:
    """Write `layout` as a `reshoot/layout` v1 document, atomically."""
    write_json_document(path, KIND, VERSION, layout_document(layout))
