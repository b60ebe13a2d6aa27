"""Stages `reshoot shoot`, `reshoot revise` and `reshoot shots`: shots in a workspace and their history.

```
WS/shots/<name>/shot.json        the shot: reshoot/cameras with one camera and a pose per frame, plus
                                 "shot": {revision, description, spec, widened_by, layout_sha1}
WS/shots/<name>/history.jsonl    one line per revision: {revision, parent, description, spec, layout_sha1}
WS/shots/<name>/keyframes.json   for explicit shots: the cameras file as given (copied)
```
Revision 0 is the `shoot`; each `revise` appends revision N + 1, made by applying its words to the
spec of its parent (the newest revision, or `--from N`). Replaying the history (`replay_history`)
applies every line's words to its parent again and must give the recorded specs and, with the same
layout, the same cameras.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import CameraPath, CamerasDocument, read_cameras_json, write_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, write_text_atomic
from reshoot.geometry.validation import check_image_size
from reshoot.scene import scene_facts
from reshoot.shot_design import SceneFacts, ShotPath, design_shot
from reshoot.shot_io import Revision, existing_shot, read_history, read_shot_document, shot_folder, shot_name_for
from reshoot.shot_language import Vocabulary, apply_description, default_spec, load_vocabulary
from reshoot.shot_spec import ShotSpec
from reshoot.workspace import KEYFRAMES_FILE, ShotPaths, Workspace, load_workspace


@dataclass(frozen=True)
class ShotResult:
    """What shoot / revise wrote."""

    name: str
    folder: Path
    revision: Revision
    path: ShotPath


def layout_sha1(workspace: str | Path) -> str | None:
    path = Workspace(workspace).layout
    return hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else None


def _names(facts: SceneFacts) -> tuple[list[str], list[str]]:
    return list(facts.entities), list(facts.cameras.names)


def _keyframes(folder: Path, spec: ShotSpec) -> CamerasDocument | None:
    return read_cameras_json(folder / spec.keyframes) if spec.explicit else None


def _write_shot(
    folder: Path, name: str, revision: Revision, path: ShotPath, history: list[Revision], fps: float
) -> None:
    camera = Camera.create(
        [name], torch.as_tensor(path.K)[None], torch.as_tensor(path.cam_from_world[:1]), [path.width], [path.height]
    )
    extra = {
        "fps": fps,
        "shot": {
            "revision": revision.revision,
            "description": revision.description,
            "spec": revision.spec.to_json(),
            "widened_by": round(path.widened_by, 6),
            "layout_sha1": revision.layout_sha1,
        },
    }
    paths = ShotPaths(name, folder)
    write_cameras_json(
        paths.spec,
        camera,
        paths={name: CameraPath(torch.as_tensor(path.frames), torch.as_tensor(path.cam_from_world))},
        attributes={name: {"role": "shot"}},
        extra=extra,
    )
    write_text_atomic(paths.history, "".join(json.dumps(r.to_json()) + "\n" for r in history))


def shoot(
    workspace: str | Path,
    description: str | None = None,
    name: str | None = None,
    cameras_file: str | Path | None = None,
    frames: tuple[int, int] | None = None,
    resolution: tuple[int, int] | None = None,
    overwrite: bool = False,
) -> ShotResult:
    """Design a new shot from a description, or follow explicit cameras (`cameras_file`), and write it.

    Args:
        description: the shot in the shot language (docs/shots.md); with `cameras_file`, optional
            words applied on top (e.g. "50mm").
        name: the shot's name; default made from the description.
        cameras_file: explicit cameras (reshoot/cameras, registration's world frame), one camera; with
            per-frame poses they are keys, interpolated smoothly.
        frames: (A, B) take frames A to B - 1; default the whole take (explicit: the keyed range).
        overwrite: replace an existing shot of that name (its history too).

    Raises:
        InputError: no description and no cameras, a bad name or description, an existing shot without
            `overwrite`, a cameras file with other than one camera.
    """
    root = Path(workspace)
    if (description is None or not description.strip()) and cameras_file is None:
        raise InputError('describe the shot (e.g. "overhead wide") or give explicit cameras with --cameras FILE.')
    if name is None:
        if cameras_file is not None:
            raise InputError("a shot from --cameras needs a name: pass --name NAME.")
        name = shot_name_for(description)
    folder = shot_folder(root, name)
    if folder.exists() and not overwrite:
        raise InputError(
            f"shot {name!r} already exists ({folder}); change it with `reshoot revise {root} {name} ...`, "
            "pick another --name, or pass --overwrite to start it again."
        )
    facts = scene_facts(root)
    vocabulary = load_vocabulary(root)
    keyframes = None
    if cameras_file is not None:
        keyframes = read_cameras_json(cameras_file)
        if len(keyframes.cameras) != 1:
            raise InputError(
                f"{cameras_file} holds {len(keyframes.cameras)} cameras ({', '.join(keyframes.cameras.names)}); "
                "a shot follows exactly one. Put the shot's camera alone in a file."
            )
    spec = _with_frames(_first_spec(vocabulary, explicit=cameras_file is not None), frames, resolution)
    text = description or ""
    if description is not None and description.strip():
        spec = apply_description(spec, description, vocabulary, *_names(facts))
    path = design_shot(spec, facts, keyframes)  # validate everything before anything is written
    revision = Revision(0, None, text, spec, layout_sha1(root))
    with atomic_directory(folder, overwrite=True) as staging:  # existence was checked against `overwrite` above
        if cameras_file is not None:
            shutil.copyfile(cameras_file, staging / KEYFRAMES_FILE)
        _write_shot(staging, name, revision, path, [revision], facts.fps)
    return ShotResult(name, folder, revision, path)


def redesign(workspace: str | Path, name: str) -> ShotResult:
    """Design shot `name`'s current revision again against the workspace as it is now (after the layout or
    the registration changed): same words, same spec, new cameras; the history is kept.

    Raises:
        InputError: the shot does not exist, or its words no longer apply (an entity it names is gone).
    """
    root = Path(workspace)
    folder = existing_shot(root, name)
    history = read_history(folder)
    shown = read_cameras_json(Workspace(root).shot(name).spec).extra.get("shot", {}).get("revision")
    revision = next((r for r in history if r.revision == shown), history[-1])
    facts = scene_facts(root)
    path = design_shot(revision.spec, facts, _keyframes(folder, revision.spec))
    revision = dataclasses.replace(revision, layout_sha1=layout_sha1(root))
    history = [revision if r.revision == revision.revision else r for r in history]
    _write_shot(folder, name, revision, path, history, facts.fps)
    return ShotResult(name, folder, revision, path)


def _first_spec(vocabulary: Vocabulary, explicit: bool) -> ShotSpec:
    """What revision 0's words apply to: the default shot, or an explicit shot following keyframes.json."""
    if explicit:
        return ShotSpec(angle="explicit", elevation_deg=None, keyframes=KEYFRAMES_FILE)
    return default_spec(vocabulary)


def _with_frames(spec: ShotSpec, frames, resolution) -> ShotSpec:
    """`spec` with new frames and resolution where given."""
    if resolution is not None and len(resolution) != 2:
        raise InputError(f"resolution {resolution}: give WIDTHxHEIGHT.")
    if resolution is not None:
        check_image_size(resolution[0], resolution[1], "shot --size")
    return dataclasses.replace(
        spec,
        frames=tuple(frames) if frames else spec.frames,
        resolution=tuple(resolution) if resolution else spec.resolution,
    )


def revise(
    workspace: str | Path,
    name: str,
    description: str,
    from_revision: int | None = None,
    frames: tuple[int, int] | None = None,
    resolution: tuple[int, int] | None = None,
) -> ShotResult:
    """Change a shot relative to its newest revision (or to revision `from_revision`: a branch).

    Raises:
        InputError: the shot does not exist, `from_revision` is not in its history, bad words.
    """
    root = Path(workspace)
    folder = shot_folder(root, name)
    history = read_history(folder)
    by_number = {r.revision: r for r in history}
    parent = history[-1] if from_revision is None else by_number.get(from_revision)
    if parent is None:
        raise InputError(f"shot {name!r} has revisions {sorted(by_number)}; --from {from_revision} is not one of them.")
    facts = scene_facts(root)
    vocabulary = load_vocabulary(root)
    spec = apply_description(_with_frames(parent.spec, frames, resolution), description, vocabulary, *_names(facts))
    path = design_shot(spec, facts, _keyframes(folder, spec))
    revision = Revision(max(by_number) + 1, parent.revision, description, spec, layout_sha1(root))
    _write_shot(folder, name, revision, path, history + [revision], facts.fps)
    from reshoot.feedback import record_revision

    record_revision(root, name, revision.revision, description)  # every revision is a crew's interaction
    return ShotResult(name, folder, revision, path)


def replay_history(workspace: str | Path, name: str, vocabulary: Vocabulary | None = None) -> list[ShotPath]:
    """Re-make every revision from its parent's spec and its words; the paths, in history order.

    Raises:
        InputError: a revision does not reproduce its recorded spec (the vocabulary or the layout's names
            changed since), or its parent is missing.
    """
    root = Path(workspace)
    folder = shot_folder(root, name)
    history = read_history(folder)
    facts = scene_facts(root)
    vocabulary = vocabulary or load_vocabulary(root)
    made: dict[int, ShotSpec] = {}
    paths = []
    for r in history:
        if r.parent is None:
            start = _with_frames(_first_spec(vocabulary, r.spec.explicit), r.spec.frames, r.spec.resolution)
        elif r.parent in made:
            start = _with_frames(made[r.parent], r.spec.frames, r.spec.resolution)
        else:
            raise InputError(
                f"{Workspace(root).shot(name).history}: revision {r.revision} branches from {r.parent}, which is "
                "not before it."
            )
        spec = apply_description(start, r.description, vocabulary, *_names(facts)) if r.description.strip() else start
        if spec != r.spec:
            raise InputError(
                f"shot {name!r} revision {r.revision} ({r.description!r}) no longer gives its recorded "
                "shot: the vocabulary or the layout's names changed since."
            )
        made[r.revision] = spec
        paths.append(design_shot(spec, facts, _keyframes(folder, spec)))
    return paths


@dataclass(frozen=True)
class ShotListing:
    """A shot of the workspace: its name, newest revision and history."""

    name: str
    frames: tuple[int, int]
    revision: int
    history: list[Revision]


def list_shots(workspace: str | Path) -> list[ShotListing]:
    """Every shot of the workspace, by name."""
    root = Path(workspace)
    load_workspace(root)
    out = []
    ws = Workspace(root)
    for name in ws.shot_names():
        folder = ws.shot(name).folder
        if not ws.shot(name).history.is_file():
            continue
        history = read_history(folder)
        document = read_shot_document(root, name)
        path = document.paths[name].frames
        out.append(
            ShotListing(
                folder.name, (int(path[0]), int(path[-1]) + 1), int(document.extra["shot"]["revision"]), history
            )
        )
    return out
