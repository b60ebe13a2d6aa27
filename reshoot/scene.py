"""The scene as shot design, conditioning and the check read it from a workspace (`scene_facts`): the take,
the registered cameras and the layout's entities on every frame of the take."""

from __future__ import annotations

from pathlib import Path

from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.layout_io import read_layout
from reshoot.shot_design import EntityTrack, SceneFacts
from reshoot.workspace import Workspace, load_workspace


def scene_facts(workspace: str | Path) -> SceneFacts:
    """The take, the registered cameras and the layout's entities of a workspace.

    Raises:
        InputError: not registered or not laid out yet.
    """
    root = Path(workspace)
    settings = load_workspace(root)
    cameras_file = Workspace(root).cameras
    if not cameras_file.is_file():
        raise InputError(f"{root}: not registered yet ({cameras_file} is missing). Run `reshoot register {root}`.")
    layout_file = Workspace(root).layout
    if not layout_file.is_file():
        raise InputError(
            f"{root}: no layout yet ({layout_file} is missing). Run `reshoot layout {root}` so that "
            "shots know where everyone is."
        )
    take = range(settings.first_frame, settings.first_frame + settings.frames)
    entities = {
        e.name: EntityTrack(e.name, e.kind, e.entity_id, e.boxes(take)) for e in read_layout(layout_file).entities
    }
    cameras = read_cameras_json(cameras_file).cameras
    return SceneFacts(settings.first_frame, settings.frames, settings.fps, cameras, entities)
