"""A shot's files as other stages read them: its folder (`shot_folder`, `existing_shot`), its `shot.json`
(`read_shot_document`: one camera with a pose per frame, reshoot/cameras) and its `history.jsonl`
(`read_history`: one `Revision` a line). `reshoot.shots` writes them; conditioning, synthesis, check,
export, the report and `reshoot run` read them through here (no torch imported).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reshoot.geometry.errors import FormatError, InputError
from reshoot.geometry.validation import MAX_NAME_LENGTH, check_name
from reshoot.shot_spec import ShotSpec
from reshoot.workspace import ShotPaths, Workspace

if TYPE_CHECKING:
    from reshoot.geometry.cameras_io import CamerasDocument


@dataclass(frozen=True)
class Revision:
    """One line of history.jsonl."""

    revision: int
    parent: int | None
    description: str
    spec: ShotSpec
    layout_sha1: str | None

    def to_json(self) -> dict:
        return {
            "revision": self.revision,
            "parent": self.parent,
            "description": self.description,
            "spec": self.spec.to_json(),
            "layout_sha1": self.layout_sha1,
        }


def shot_folder(workspace: str | Path, name: str) -> Path:
    """WS/shots/NAME (checks the name)."""
    check_name(name, "shot name", "pick another name")
    return Workspace(workspace).shot(name).folder


def existing_shot(workspace: str | Path, name: str) -> Path:
    """The folder of shot `name`, which must exist.

    Raises:
        InputError: the shot has no shot.json.
    """
    folder = shot_folder(workspace, name)
    spec = Workspace(workspace).shot(name).spec
    if not spec.is_file():
        raise InputError(
            f"shot {name!r} does not exist ({spec} is missing); make it with `reshoot shoot {workspace} ...`."
        )
    return folder


def read_shot_document(workspace: str | Path, name: str) -> CamerasDocument:
    """Shot `name`'s shot.json, its one camera (and that camera's poses) under the name `name`.

    The folder's name is the shot's name: a shot folder copied under a new name to try a variant
    (`cp -r WS/shots/overhead WS/shots/variant`) is shot "variant", though its shot.json still names
    "overhead" until it is next written.

    Raises:
        InputError: the shot does not exist; FormatError: shot.json is not one camera with a pose per frame.
    """
    from reshoot.geometry.cameras_io import read_cameras_json  # (torch: only where a shot is read)

    spec = Workspace(workspace).shot(name).spec
    existing_shot(workspace, name)
    document = read_cameras_json(spec)
    if len(document.cameras) != 1 or len(document.paths) != 1:
        raise FormatError(
            f"{spec}: a shot holds one camera with a pose per frame; this file has "
            f"{len(document.cameras)} camera(s), {len(document.paths)} with poses. Make the shot again "
            f"with `reshoot shoot {workspace} ... --name {name} --overwrite`."
        )
    (path,) = document.paths.values()
    (attributes,) = document.attributes.values() if document.attributes else ({},)
    return dataclasses.replace(
        document, cameras=document.cameras.renamed([name]), paths={name: path}, attributes={name: attributes}
    )


def read_history(folder: Path) -> list[Revision]:
    """Every revision of the shot in `folder`, in order.

    Raises:
        InputError: the shot does not exist; FormatError: a malformed line.
    """
    path = ShotPaths(folder.name, folder).history
    if not path.is_file():
        raise InputError(
            f"shot {folder.name!r} does not exist in {folder.parent} (no {path.name}); list shots with "
            f"`reshoot shots {folder.parent.parent}` or make it with `reshoot shoot`."
        )
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            out.append(
                Revision(
                    int(data["revision"]),
                    data["parent"],
                    str(data["description"]),
                    ShotSpec.from_json(data["spec"], f"{path}:{number}"),
                    data.get("layout_sha1"),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise FormatError(
                f"{path}:{number}: not a history line ({{revision, parent, description, spec}})."
            ) from None
    return out


def shot_name_for(description: str) -> str:
    """The default name of a shot described in words: its first four words joined by "_"."""
    return "_".join(re.findall(r"[a-z0-9]+", description.lower())[:4])[:MAX_NAME_LENGTH] or "shot"
