"""Crews' feedback on shots, kept for training: `reshoot rate` and `reshoot feedback export`.

Every verdict (`reshoot rate WS SHOT good|bad [--frames A:B] [--entity NAME] [--note TEXT]`) and every
revision of a shot (`reshoot revise`) is one row of `WS/.reshoot/feedback.sqlite` (SQLite, local to the
workspace; Python's `sqlite3`, no server):

```
events(id, time, kind "rating" | "revision", shot, revision, verdict, frame_start, frame_stop, entity,
       note, description)
```
`export_feedback` writes them as JSON lines (`reshoot/feedback-event`, one object a line). A workspace
marked sensitive (`reshoot init --sensitive`) exports interaction traces only (kind, shot, revision,
verdict, entity, frame range, time, the revision's words): never pixels, paths to pixels or geometry,
and not the crew's free-text notes. Other workspaces add where the shot's frames and camera are.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_path
from reshoot.workspace import Workspace, load_workspace

VERDICTS = ("good", "bad")
MAX_NOTE = 2000
EVENT_FORMAT = "reshoot/feedback-event"
SCHEMA = """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, kind TEXT NOT NULL, shot TEXT NOT NULL,
    revision INTEGER, verdict TEXT, frame_start INTEGER, frame_stop INTEGER, entity TEXT, note TEXT,
    description TEXT)"""
COLUMNS = (
    "id",
    "time",
    "kind",
    "shot",
    "revision",
    "verdict",
    "frame_start",
    "frame_stop",
    "entity",
    "note",
    "description",
)
TRACE = ("id", "time", "kind", "shot", "revision", "verdict", "frame_start", "frame_stop", "entity", "description")


def _database(ws: Workspace) -> Path:
    return ws.meta / "feedback.sqlite"


def _connect(ws: Workspace) -> sqlite3.Connection:
    ws.meta.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(_database(ws), timeout=30)
    connection.execute(SCHEMA)
    return connection


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Rating:
    """A recorded verdict: its row id and what it says."""

    id: int
    shot: str
    revision: int
    verdict: str
    frames: tuple[int, int]
    entity: str | None


def rate_shot(
    workspace: str | Path,
    shot: str,
    verdict: str,
    frames: tuple[int, int] | None = None,
    entity: str | None = None,
    note: str | None = None,
) -> Rating:
    """Record a crew's verdict on shot `shot` (its current revision), for frames A to B - 1 (default all).

    Raises:
        InputError: an unknown verdict, shot, entity, frames outside the shot, or a note over 2,000
            characters.
    """
    from reshoot.layout_io import read_layout
    from reshoot.shot_io import read_shot_document

    ws = Workspace(workspace)
    load_workspace(ws.root)  # a clear error when this is not a workspace
    if verdict not in VERDICTS:
        raise InputError(f"verdict {verdict!r}: say good or bad.")
    document = read_shot_document(ws.root, shot)
    shot_frames = [int(f) for f in document.paths[shot].frames]
    span = (shot_frames[0], shot_frames[-1] + 1)
    if frames is not None:
        if not (span[0] <= frames[0] < frames[1] <= span[1]):
            raise InputError(
                f"--frames {frames[0]}:{frames[1]}: shot {shot!r} has take frames {span[0]}:{span[1]}; "
                "give A:B inside them."
            )
        span = (int(frames[0]), int(frames[1]))
    if entity is not None:
        names = read_layout(ws.layout).names() if ws.layout.is_file() else []
        if entity not in names:
            raise InputError(f"--entity {entity!r} is not in the layout ({', '.join(names) or 'no entities'}).")
    if note is not None and len(note) > MAX_NOTE:
        raise InputError(f"--note is {len(note)} characters; keep it under {MAX_NOTE}.")
    revision = int(document.extra.get("shot", {}).get("revision") or 0)
    with closing(_connect(ws)) as connection, connection:
        cursor = connection.execute(
            "INSERT INTO events (time, kind, shot, revision, verdict, frame_start, frame_stop, entity, note) "
            "VALUES (?, 'rating', ?, ?, ?, ?, ?, ?, ?)",
            (_now(), shot, revision, verdict, *span, entity, note),
        )
        row = int(cursor.lastrowid or 0)
    return Rating(row, shot, revision, verdict, span, entity)


def record_revision(workspace: str | Path, shot: str, revision: int, description: str) -> None:
    """Record that shot `shot` was revised (revision number and its words)."""
    with closing(_connect(Workspace(workspace))) as connection, connection:
        connection.execute(
            "INSERT INTO events (time, kind, shot, revision, description) VALUES (?, 'revision', ?, ?, ?)",
            (_now(), shot, int(revision), description),
        )


def feedback_events(workspace: str | Path) -> list[dict]:
    """Every recorded event of the workspace, oldest first (all columns)."""
    ws = Workspace(workspace)
    if not _database(ws).is_file():
        return []
    with closing(sqlite3.connect(_database(ws), timeout=30)) as connection:
        rows = connection.execute(f"SELECT {', '.join(COLUMNS)} FROM events ORDER BY id").fetchall()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


@dataclass(frozen=True)
class FeedbackExport:
    """What `export_feedback` wrote: the file, the events and whether only traces were written."""

    path: Path
    events: int
    traces_only: bool


def export_feedback(workspace: str | Path, out: str | Path) -> FeedbackExport:
    """Write every event as JSON lines to `out` (atomically); see the module docstring for what a
    sensitive workspace's lines leave out.

    Raises:
        InputError: `out` is a folder, or inside the workspace's .reshoot/.
    """
    ws = Workspace(workspace)
    settings = ws.settings
    out = Path(out)
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; give a file name such as feedback.jsonl.")
    if ws.meta.resolve() in out.resolve().parents:
        raise InputError(f"--out {out} is inside {ws.meta}, the workspace's bookkeeping; write it elsewhere.")
    lines = []
    for event in feedback_events(ws.root):
        record = {"format": EVENT_FORMAT, "version": 1, "workspace": ws.root.name}
        if settings.sensitive:
            record.update({k: event[k] for k in TRACE if event[k] is not None})
        else:
            record.update({k: v for k, v in event.items() if v is not None})
            shot = ws.shot(event["shot"])
            record.update(shot_file=str(shot.spec.resolve()), frames_folder=str(shot.frames.resolve()))
        lines.append(json.dumps(record, sort_keys=True))
    with atomic_path(out) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines))
    return FeedbackExport(out, len(lines), settings.sensitive)
