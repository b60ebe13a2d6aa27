"""Safe writing of stage outputs: nothing half-written is ever left behind (DESIGN.md §3).

Every writer here writes to a temporary sibling and renames it into place, which is atomic on POSIX
file systems, so a crash or a bad input leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import FormatError, InputError


def _create_sibling(path: Path, suffix: str, directory: bool) -> Path:
    """Create a new, uniquely named hidden file or folder beside `path`.

    Not `tempfile.mkstemp`/`mkdtemp`: those create mode 0600/0700, which the rename would carry over
    to the output, leaving stage outputs unreadable to the user's group. Creating with 0666/0777
    lets the user's umask decide, as for any other file they write.
    """
    for _ in range(100):
        candidate = path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"
        try:
            if directory:
                os.mkdir(candidate, 0o777)
            else:
                os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")  # pragma: no cover


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    On an exception the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_sibling(path, ".tmp" + path.suffix, directory=False)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_document(path: str | os.PathLike, kind: str, version: int, body: dict[str, Any]) -> None:
    """Write a reshoot JSON document `{"format": "reshoot/<kind>", "version": N, **body}` atomically."""
    doc = {"format": f"reshoot/{kind}", "version": version, **body}
    write_text_atomic(path, json.dumps(doc, indent=2) + "\n")


def read_text_document(path: str | os.PathLike, parse: Callable[[str], Any], syntax: str, what: str) -> Any:
    """Read a UTF-8 text file and parse it (e.g. `json.loads`, `tomllib.loads`).

    Args:
        syntax: "JSON", "TOML", ... for messages.
        what: what the file should be, for messages ("a nerfstudio transforms.json").

    Raises:
        InputError: the file is missing.
        FormatError: it is not UTF-8 or does not parse (JSON and TOML decode errors are ValueErrors).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file ({what} is expected). Check the path.")
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{path}: not valid {syntax} ({exc}); {what} is expected. Fix or regenerate it.") from None


def read_json_document(path: str | os.PathLike, kind: str, max_version: int) -> dict[str, Any]:
    """Read a reshoot JSON document and check its `format` and `version`.

    Raises:
        InputError: the file is missing or is not valid JSON.
        FormatError: the file is JSON but not a `reshoot/<kind>` document of a version we read.
    """
    path = Path(path)
    doc = read_text_document(path, json.loads, "JSON", f"a reshoot/{kind} document")
    if not isinstance(doc, dict) or doc.get("format") != f"reshoot/{kind}":
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise FormatError(
            f'{path}: expected a document with "format": "reshoot/{kind}", found {found!r}. '
            "See docs/formats.md for the file formats reshoot reads."
        )
    version = doc.get("version")
    if not isinstance(version, int) or not 1 <= version <= max_version:
        raise FormatError(
            f"{path}: reshoot/{kind} version {version!r} is not supported (this reshoot reads versions "
            f"1 to {max_version}). Upgrade reshoot or regenerate the file."
        )
    return doc


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Remove what an interrupted (killed) atomic write of `path` left beside it: the hidden temporary
    siblings `.NAME.<random>.tmp…` and `.NAME.<random>.old` of `atomic_path` / `atomic_directory`.
    Only call it while no other process can be writing `path` (the workspace lock). Returns what it removed."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.[0-9a-z_]+(\.tmp.*|\.old)$")
    removed = []
    for item in path.parent.iterdir() if path.parent.is_dir() else []:
        if pattern.match(item.name):
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
            removed.append(item)
    return removed


OUTPUT_MARKER = ".reshoot-output.json"
"""A file a command writes into an output folder of the user's choosing (`reshoot export --out`, each
camera folder of `reshoot render --out`): `{"format": "reshoot/output", "version": 1, "made_by": COMMAND}`.
`--overwrite` replaces only folders that hold the marker of the same command."""


def write_output_marker(folder: str | os.PathLike, command: str) -> None:
    """Mark `folder` as made by `command` (e.g. "reshoot export")."""
    write_json_document(Path(folder) / OUTPUT_MARKER, "output", 1, {"made_by": command})


def made_by(folder: str | os.PathLike) -> str | None:
    """The command whose marker `folder` holds, or None (no marker, or an unreadable one)."""
    try:
        value = read_json_document(Path(folder) / OUTPUT_MARKER, "output", 1).get("made_by")
    except InputError:
        return None
    return value if isinstance(value, str) else None


def foreign_entries(folder: str | os.PathLike, own: Callable[[str], bool]) -> list[str]:
    """Names of the entries of `folder` that `own` does not accept (the marker is always accepted)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name != OUTPUT_MARKER and not own(p.name))


def check_replaceable(path: Path, command: str, own: Callable[[str], bool] | None = None) -> str | None:
    """Why the existing folder `path` is not `command`'s output (None when it is): it must hold `command`'s
    marker and, with `own`, nothing but entries `own` accepts (files the user added are never deleted)."""
    if (path / "reshoot.toml").exists():
        return "it is a reshoot workspace"
    if made_by(path) != command:
        return f"it has no {OUTPUT_MARKER} written by {command}"
    foreign = foreign_entries(path, own) if own is not None else []
    if foreign:
        more = " ..." if len(foreign) > 5 else ""
        return f"it also holds {', '.join(foreign[:5])}{more}, which {command} does not write"
    return None


@contextlib.contextmanager
def atomic_directory(
    path: str | os.PathLike,
    overwrite: bool = False,
    replaceable: Callable[[Path], str | None] | None = None,
    marker: str | None = None,
    command: str = "this command",
) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path`.

    Args:
        path: the folder to produce.
        overwrite: replace an existing non-empty `path`; without it an existing non-empty folder is an
            error, so nothing a user made is lost.
        replaceable: for folders the user names (not a workspace's own places): `replaceable(path)` says
            why an existing non-empty `path` is not this command's earlier output (None: it is). Such a
            folder is never replaced, even with `overwrite`. Checked before anything is written.
        marker: write the output marker of this command (e.g. "reshoot export") into the new folder.
        command: the command, for messages.

    Raises:
        InputError: `path` exists, is not empty, and `overwrite` is False or `replaceable` objects; or
            `path` is a file.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is a file; give a folder path that does not exist yet.")
    if path.is_dir() and any(path.iterdir()):
        reason = replaceable(path) if replaceable is not None else None
        if reason is not None:
            raise InputError(
                f"{path} already exists and was not made by {command} ({reason}); --overwrite only "
                f"replaces what {command} made. Nothing was changed: choose another folder, or move "
                "or delete that one yourself."
            )
        if not overwrite:
            raise InputError(f"{path} already exists and is not empty. Choose another folder or pass --overwrite.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_sibling(path, ".tmp", directory=True)
    try:
        yield tmp
        if marker is not None:
            write_output_marker(tmp, marker)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
