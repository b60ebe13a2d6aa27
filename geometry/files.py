"""Safe writing of stage outputs: nothing half-written is ever left behind (DESIGN.md §3).

Every writer here writes to a temporary sibling and renames it into place, which is atomic on POSIX
file systems, so a crash or a bad input leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

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


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path`.

    Args:
        path: the folder to produce.
        overwrite: replace an existing non-empty `path`; without it an existing non-empty folder is an
            error, so nothing a user made is lost.

    Raises:
        InputError: `path` exists, is not empty, and `overwrite` is False; or `path` is a file.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is a file; give a folder path that does not exist yet.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise InputError(f"{path} already exists and is not empty. Choose another folder or pass --overwrite.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_sibling(path, ".tmp", directory=True)
    try:
        yield tmp
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
