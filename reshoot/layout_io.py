"""The one reader of `layout.json`'s entities (`reshoot/layout` v1, docs/formats.md), which people edit by
hand (to name "character_1" "Maya"): every entity is checked where the file is read, so a typo is an
error that names the entity, not a crash later on.
"""

from __future__ import annotations

import math
from pathlib import Path

from reshoot.geometry.errors import FormatError, InputError
from reshoot.geometry.files import read_json_document
from reshoot.geometry.validation import check_name

KIND = "layout"
VERSION = 1
ENTITY_KINDS = ("character", "prop")


def _box_corner(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


def read_layout_entities(path: str | Path) -> list[dict]:
    """The entities of a layout.json, each checked: a name safe as a file name (`check_name`), a kind
    ("character" or "prop"), a whole-number id, and frames with a `frame` (a whole number; null for a
    prop's one box) and finite 3-number `position`, `box_min`, `box_max`. Names and ids are unique.

    Raises:
        InputError: the file is missing, not JSON, of another format or a newer version (FormatError),
            or an entity breaks the rules (FormatError, naming the entity and what to fix).
    """
    path = Path(path)
    entities = read_json_document(path, KIND, VERSION).get("entities", [])
    if not isinstance(entities, list):
        raise FormatError(f'{path}: "entities" must be a list (see docs/formats.md, reshoot/layout).')
    names: set[str] = set()
    ids: set[int] = set()
    for i, entity in enumerate(entities):
        where = f"{path}: entity #{i}"
        if not isinstance(entity, dict):
            raise FormatError(f"{where}: expected an object with name, kind, id and frames.")
        try:
            name = check_name(entity.get("name"), f"{where} name", "rename it in layout.json")
        except InputError as error:
            raise FormatError(str(error)) from None
        where = f"{path}: entity {name!r}"
        if entity.get("kind") not in ENTITY_KINDS:
            raise FormatError(f"{where}: kind must be one of {ENTITY_KINDS}, got {entity.get('kind')!r}.")
        if isinstance(entity.get("id"), bool) or not isinstance(entity.get("id"), int):
            raise FormatError(f"{where}: id must be a whole number, got {entity.get('id')!r}.")
        frames = entity.get("frames")
        if (
            not isinstance(frames, list)
            or not frames
            or not all(
                isinstance(f, dict)
                and (
                    f.get("frame") is None or (isinstance(f.get("frame"), int) and not isinstance(f.get("frame"), bool))
                )
                and all(_box_corner(f.get(key)) for key in ("position", "box_min", "box_max"))
                for f in frames
            )
        ):
            raise FormatError(
                f"{where}: frames must be a non-empty list of {{frame (a whole number, or null for "
                "a prop), position, box_min, box_max (3 finite numbers each)}}."
            )
        if name in names or entity["id"] in ids:
            raise FormatError(f"{where}: the name or id {entity['id']} is used twice; every entity needs its own.")
        names.add(name)
        ids.add(entity["id"])
    return list(entities)
