"""The workspace: one folder per take, settings in `reshoot.toml` (DESIGN.md §4).

```toml
format = "reshoot/workspace"
version = 1

[footage]
path = "../take/footage"        # relative to the workspace (or absolute)
calibration = "calib.json"      # optional: reshoot/cameras JSON or caliscope camera_array.toml
fps = 24.0
frames = 48                     # frames of the take that every camera covers
first_frame = 0
cameras = ["a_wide", "b_medium"]

[footage.offsets]               # camera frame i shows take frame i + offset
a_wide = 0

[survey]                        # optional: photos or a video walking around the empty set
path = "../take/survey"

[plates]                        # optional: clean plates, one video or image folder per camera
path = "../take/plates"

[scale]
source = "arbitrary"            # or "known_distance" / "camera_height" with their values

[privacy]
sensitive = false               # true: the footage may never be used to train models
```
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from reshoot.geometry.errors import FormatError, InputError
from reshoot.geometry.files import read_text_document, write_text_atomic

log = logging.getLogger(__name__)

WORKSPACE_FILE = "reshoot.toml"
FORMAT = "reshoot/workspace"
VERSION = 1


@dataclass(frozen=True)
class WorkspaceSettings:
    """The settings of a workspace.

    Attributes:
        root: the workspace folder.
        footage: the take's footage folder (absolute).
        calibration: a calibration file (absolute) or None.
        fps: frame rate of the take.
        frames: frames of the take covered by every camera.
        first_frame: take frame number of the first frame.
        cameras: camera names, in footage order.
        offsets: per-camera frame offsets.
        sensitive: the footage must never be used to train models.
        scale: how metric scale is to be found: {"source": "arbitrary"} or with a hint.
        survey: a survey of the empty set (photo folder or video), absolute, or None.
        plates: clean plates (one video or image folder per camera of the empty set), absolute, or None:
            used instead of the footage's temporal median.
    """

    root: Path
    footage: Path
    calibration: Path | None
    fps: float
    frames: int
    first_frame: int
    cameras: tuple[str, ...]
    offsets: dict[str, int] = field(default_factory=dict)
    sensitive: bool = False
    scale: dict[str, Any] = field(default_factory=lambda: {"source": "arbitrary"})
    survey: Path | None = None
    plates: Path | None = None

    def open_footage(self):
        """The take's footage on the workspace's frame clock (its calibration, offsets and fps); a `Footage`,
        to be closed (it is a context manager)."""
        from reshoot.datasets.footage import open_footage

        return open_footage(self.footage, self.calibration, self.offsets or None, self.fps)

    def open_plates(self, footage) -> dict | None:
        """The clean plates per camera name (`CameraFootage`, frames from 0), or None without plates.

        Args:
            footage: the open `Footage`, whose cameras' sizes the plates must have.
        """
        if self.plates is None:
            return None
        from reshoot.datasets.footage import open_plates

        return open_plates(self.plates, {s.name: (s.width, s.height) for s in footage.sources})


def _relative(path: Path, root: Path) -> str:
    """`path` relative to `root` when they share a file system tree, so a moved project still works."""
    try:
        return os.path.relpath(path.resolve(), root.resolve())
    except ValueError:  # different drives on Windows
        return str(path.resolve())


def init_workspace(
    root: str | Path,
    footage: str | Path,
    calibration: str | Path | None = None,
    sensitive: bool = False,
    fps: float | None = None,
    offsets: Mapping[str, int] | None = None,
    force: bool = False,
    survey: str | Path | None = None,
    plates: str | Path | None = None,
) -> WorkspaceSettings:
    """Create a workspace for a take: check the footage, write `root/reshoot.toml`.

    The footage is opened (not decoded) to validate it: every camera readable, same fps and length,
    calibration matching the cameras.

    Raises:
        InputError: bad footage or calibration, or a workspace already exists and `force` is False.
    """
    from reshoot.datasets.footage import open_footage

    root = Path(root)
    settings_file = root / WORKSPACE_FILE
    if settings_file.exists() and not force:
        raise InputError(
            f"{settings_file} already exists: {root} is a workspace. Use it as it is, choose another "
            "folder, or pass --force to rewrite its settings (stage outputs are kept)."
        )
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file; the workspace must be a folder.")
    take = open_footage(footage, calibration=calibration, offsets=offsets, fps=fps)
    if plates is not None:
        from reshoot.datasets.footage import open_plates

        for plate in open_plates(plates, {s.name: (s.width, s.height) for s in take.sources}).values():
            plate.close()
    if survey is not None and not Path(survey).exists():
        raise InputError(f"{survey}: no such survey folder or video. Give the photos or video of the set's survey.")
    settings = WorkspaceSettings(
        root=root,
        footage=Path(footage).resolve(),
        calibration=Path(calibration).resolve() if calibration else None,
        fps=float(take.fps),
        frames=int(take.num_frames),
        first_frame=int(take.first_frame),
        cameras=tuple(take.camera_names),
        offsets={s.name: int(s.offset) for s in take.sources},
        sensitive=bool(sensitive),
        survey=Path(survey).resolve() if survey else None,
        plates=Path(plates).resolve() if plates else None,
    )
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(settings_file, _to_toml(settings))
    log.info("workspace %s: %d cameras, %d frames at %g fps", root, len(settings.cameras), settings.frames, settings.fps)
    return settings


def _to_toml(settings: WorkspaceSettings) -> str:
    import tomli_w

    footage: dict[str, Any] = {"path": _relative(settings.footage, settings.root)}
    if settings.calibration is not None:
        footage["calibration"] = _relative(settings.calibration, settings.root)
    footage.update(fps=settings.fps, frames=settings.frames, first_frame=settings.first_frame,
                   cameras=list(settings.cameras), offsets=dict(settings.offsets))
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "footage": footage}
    if settings.survey is not None:
        doc["survey"] = {"path": _relative(settings.survey, settings.root)}
    if settings.plates is not None:
        doc["plates"] = {"path": _relative(settings.plates, settings.root)}
    doc.update(scale=dict(settings.scale), privacy={"sensitive": settings.sensitive})
    return tomli_w.dumps(doc)


def load_workspace(root: str | Path) -> WorkspaceSettings:
    """Read `root/reshoot.toml`.

    Raises:
        InputError: no workspace there; FormatError: the settings file is malformed.
    """
    root = Path(root)
    settings_file = root / WORKSPACE_FILE
    if not settings_file.is_file():
        raise InputError(
            f"{root} is not a reshoot workspace (no {WORKSPACE_FILE}). Create one with "
            f"`reshoot init {root} --footage TAKE/footage`."
        )
    doc = read_text_document(settings_file, tomllib.loads, "TOML", "reshoot workspace settings")
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise FormatError(
            f'{settings_file}: expected format = "{FORMAT}" and version = {VERSION}, found '
            f"{doc.get('format')!r} version {doc.get('version')!r}."
        )
    try:
        footage = doc["footage"]
        calibration = footage.get("calibration")
        return WorkspaceSettings(
            root=root,
            footage=(root / footage["path"]).resolve(),
            calibration=(root / calibration).resolve() if calibration else None,
            fps=float(footage["fps"]),
            frames=int(footage["frames"]),
            first_frame=int(footage.get("first_frame", 0)),
            cameras=tuple(str(c) for c in footage["cameras"]),
            offsets={str(k): int(v) for k, v in footage.get("offsets", {}).items()},
            sensitive=bool(doc.get("privacy", {}).get("sensitive", False)),
            scale=dict(doc.get("scale", {"source": "arbitrary"})),
            survey=(root / doc["survey"]["path"]).resolve() if "survey" in doc else None,
            plates=(root / doc["plates"]["path"]).resolve() if "plates" in doc else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{settings_file}: missing or malformed setting ({exc}). Rerun `reshoot init --force`.") from None
