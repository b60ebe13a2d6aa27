"""`cameras.json`, the one camera format of the project (DESIGN.md §4).

```
{"format": "reshoot/cameras", "version": 1,
 "cameras": [{"name", "width", "height", "K" (3x3), "distortion" ([k1 k2 p1 p2 k3] or []),
              "cam_from_world" (4x4), optional "role", optional "frames": [{"frame", "cam_from_world"}]}]}
```
Static cameras give one `cam_from_world`; moving (shot) cameras add per-frame poses in `frames`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .camera import Camera
from .errors import FormatError, InputError
from .files import read_json_document, write_json_document
from .validation import check_name

KIND = "cameras"
VERSION = 1


@dataclass(frozen=True)
class CameraPath:
    """Per-frame poses of a moving camera.

    Attributes:
        frames: [T] int64 take frame numbers.
        cam_from_world: [T, 4, 4] float64.
    """

    frames: torch.Tensor
    cam_from_world: torch.Tensor


@dataclass(frozen=True)
class CamerasDocument:
    """The content of a cameras.json.

    Attributes:
        cameras: the V cameras (static pose; for moving cameras the pose of their first frame).
        paths: per-frame poses of the cameras that move, by name.
        attributes: other per-camera fields (such as "role"), by name.
        extra: top-level fields besides format, version and cameras.
    """

    cameras: Camera
    paths: dict[str, CameraPath] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def names_with_role(self, role: str, default: str | None = None) -> list[str]:
        """Names of the cameras whose "role" is `role`, in file order (a camera without one counts as `default`)."""
        return [n for n in self.cameras.names if self.attributes.get(n, {}).get("role", default) == role]


def _matrix_list(m: torch.Tensor) -> list[list[float]]:
    return [[float(x) for x in row] for row in m.tolist()]


def write_cameras_json(
    path: str | Path,
    cameras: Camera,
    paths: Mapping[str, CameraPath] | None = None,
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write cameras (and optional per-frame paths) atomically as `reshoot/cameras` version 1."""
    paths = dict(paths or {})
    attributes = dict(attributes or {})
    entries = []
    for i, name in enumerate(cameras.names):
        dist = cameras.distortion[i]
        entry: dict[str, Any] = {
            "name": name,
            "width": int(cameras.width[i]),
            "height": int(cameras.height[i]),
            "K": _matrix_list(cameras.K[i]),
            "distortion": [float(x) for x in dist.tolist()] if bool((dist != 0).any()) else [],
            "cam_from_world": _matrix_list(cameras.cam_from_world[i]),
        }
        entry.update(attributes.get(name, {}))
        if name in paths:
            p = paths[name]
            entry["frames"] = [
                {"frame": int(f), "cam_from_world": _matrix_list(m)}
                for f, m in zip(p.frames.tolist(), p.cam_from_world)
            ]
        entries.append(entry)
    write_json_document(path, KIND, VERSION, {**dict(extra or {}), "cameras": entries})


def _field(entry: Mapping[str, Any], key: str, where: str):
    if key not in entry:
        raise FormatError(f'{where}: missing field "{key}" (see docs/formats.md, reshoot/cameras).')
    return entry[key]


def _matrix(value: Any, rows: int, cols: int, where: str) -> torch.Tensor:
    try:
        m = torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError):
        m = None
    if m is None or m.shape != (rows, cols) or not bool(torch.isfinite(m).all()):
        raise FormatError(f"{where}: expected a {rows}x{cols} matrix of finite numbers.")
    return m


def _intrinsics(value: Any, where: str) -> torch.Tensor:
    """A 3x3 K of finite numbers with positive focal lengths (fx = K[0][0], fy = K[1][1], pixels)."""
    K = _matrix(value, 3, 3, where)
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise FormatError(
            f"{where}: the focal lengths fx = K[0][0] and fy = K[1][1] must be positive (pixels), "
            f"got {float(K[0, 0]):g} and {float(K[1, 1]):g}. Fix the calibration."
        )
    return K


def read_cameras_json(path: str | Path) -> CamerasDocument:
    """Read a `reshoot/cameras` document.

    Camera names must be safe as file names (`validation.check_name`): they become folders and files.

    Raises:
        InputError / FormatError: missing file, wrong format or version, malformed camera entries (a bad
            name, NaN or infinite numbers, a focal length that is not positive).
    """
    doc = read_json_document(path, KIND, VERSION)
    entries = doc.get("cameras")
    if not isinstance(entries, list) or not entries:
        raise FormatError(f'{path}: "cameras" must be a non-empty list.')
    names, Ks, poses, widths, heights, dists = [], [], [], [], [], []
    paths: dict[str, CameraPath] = {}
    attributes: dict[str, dict[str, Any]] = {}
    known = {"name", "width", "height", "K", "distortion", "cam_from_world", "frames"}
    for i, entry in enumerate(entries):
        where = f"{path}: camera #{i}"
        if not isinstance(entry, dict):
            raise FormatError(f"{where}: expected an object.")
        name = check_name(
            str(_field(entry, "name", where)),
            f"{where} name",
            "rename the camera (and its footage) to one that is safe as a file name",
        )
        where = f"{path}: camera {name!r}"
        width, height = _field(entry, "width", where), _field(entry, "height", where)
        if not all(isinstance(s, int) and s > 0 for s in (width, height)):
            raise FormatError(f"{where}: width and height must be positive integers (pixels).")
        dist = entry.get("distortion") or []
        if (
            not isinstance(dist, list)
            or len(dist) > 5
            or not all(isinstance(d, (int, float)) and math.isfinite(d) for d in dist)
        ):
            raise FormatError(f"{where}: distortion must be a list of up to 5 numbers (k1 k2 p1 p2 k3).")
        names.append(name)
        Ks.append(_intrinsics(_field(entry, "K", where), f"{where} K"))
        poses.append(_matrix(_field(entry, "cam_from_world", where), 4, 4, f"{where} cam_from_world"))
        widths.append(width)
        heights.append(height)
        dists.append(list(dist) + [0.0] * (5 - len(dist)))
        if "frames" in entry:
            frames = entry["frames"]
            if (
                not isinstance(frames, list)
                or not frames
                or not all(isinstance(f, dict) and isinstance(f.get("frame"), int) for f in frames)
            ):
                raise FormatError(
                    f'{where}: "frames" must be a non-empty list of {{"frame" (an integer), "cam_from_world"}}.'
                )
            numbers = torch.tensor([int(_field(f, "frame", where)) for f in frames], dtype=torch.int64)
            mats = torch.stack([_matrix(_field(f, "cam_from_world", where), 4, 4, f"{where} frames") for f in frames])
            paths[name] = CameraPath(numbers, mats)
        attributes[name] = {k: v for k, v in entry.items() if k not in known}
    try:
        cameras = Camera.create(names, torch.stack(Ks), torch.stack(poses), widths, heights, dists)
    except FormatError:
        raise
    except InputError as exc:  # duplicate names, a pose that is not a rotation: name the file
        raise FormatError(f"{path}: {exc}") from None
    extra = {k: v for k, v in doc.items() if k not in ("format", "version", "cameras")}
    return CamerasDocument(cameras, paths, attributes, extra)
