"""A shot's editorial hand-off: an OpenTimelineIO timeline `shots/NAME/NAME.otio` and CMX 3600 EDLs `NAME.edl`
(the generated clip) and `NAME.CAMERA.edl` (each production camera's span).

The timeline starts at the shot's first timecode and holds, one video track each:
- `generated`: the synthesized shot, its media the EXR deliverable (`exr/NAME.NNNN.exr`, an image
  sequence numbered from the deliverable start) with the mp4 as a second media reference ("review");
- one track per production camera: the same span of the take in that camera's own footage (its file, its
  rate, its start timecode), so an editor can cut between the filmed angles and the new one.
A CMX 3600 EDL has one video track, so each track gets its own (OTIO's cmx_3600 adapter), as an editor's
system exports one per track: `NAME.edl` the generated clip, record timecode equal to its source
timecode; `NAME.CAMERA.edl` that camera's span of its footage (source timecodes its own) recorded at the
same record timecodes, so the EDLs conform the cameras in parallel with the new shot. CMX 3600 timecodes
exist at the SMPTE rates only (23.976 to 60 fps): a take at another rate (a 6 fps webcam rig) gets the
timeline and no EDL (`edl_supported`), and a camera at a rate other than the take's gets none of its own.
Timecodes are HH:MM:SS:FF strings counted at the rounded rate (`reshoot.datasets.sync`), so the timeline
is exact at any rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reshoot.geometry.files import write_text_atomic

GENERATED_TRACK = "generated"


@dataclass(frozen=True)
class SourceClip:
    """The part of one production camera's footage a shot spans.

    Attributes:
        name: the camera.
        path: its video file or image folder.
        fps: its own frame rate.
        start_timecode: the timecode of its first frame (HH:MM:SS:FF).
        first: index of the shot's first frame in it; frames: how many of its frames the shot spans.
        length: its frame count.
    """

    name: str
    path: Path
    fps: float
    start_timecode: str
    first: int
    frames: int
    length: int


def edl_supported(fps: float) -> bool:
    """Whether a CMX 3600 EDL can hold timecodes at `fps` (a SMPTE rate, 23.976 counting as 24000/1001)."""
    import opentimelineio as otio

    return abs(otio.opentime.RationalTime.nearest_smpte_timecode_rate(fps) - fps) < 0.01


def _time(timecode: str, fps: float):
    """The `RationalTime` of a timecode at `fps` (OTIO's own parser accepts SMPTE rates only)."""
    import opentimelineio as otio

    from reshoot.datasets.sync import timecode_to_frames  # (torch: not at `reshoot status`'s start)

    return otio.opentime.RationalTime(timecode_to_frames(timecode, fps), fps)


def shot_timeline(
    name: str,
    fps: float,
    timecode: str,
    frames: int,
    first_number: int,
    exr_folder: str,
    video: str,
    sources: list[SourceClip],
):
    """The shot's `opentimelineio.schema.Timeline` (see the module docstring).

    Args:
        name: the shot.
        fps: the take's rate.
        timecode: the shot's first frame's timecode.
        frames: the shot's frame count.
        first_number: the deliverable number of its first frame.
        exr_folder, video: the deliverable folder and the mp4, relative to the timeline file.
        sources: the production cameras' spans.
    """
    import opentimelineio as otio

    rational, time_range = otio.opentime.RationalTime, otio.opentime.TimeRange
    start = _time(timecode, fps)
    shot_range = time_range(start, rational(frames, fps))
    timeline = otio.schema.Timeline(name=name, global_start_time=start)
    exr = otio.schema.ImageSequenceReference(
        target_url_base=exr_folder.rstrip("/") + "/",
        name_prefix=f"{name}.",
        name_suffix=".exr",
        start_frame=first_number,
        frame_step=1,
        rate=fps,
        frame_zero_padding=4,
        available_range=shot_range,
    )
    clip = otio.schema.Clip(name=name, source_range=shot_range)
    clip.set_media_references(
        {
            otio.schema.Clip.DEFAULT_MEDIA_KEY: exr,
            "review": otio.schema.ExternalReference(target_url=video, available_range=shot_range),
        },
        otio.schema.Clip.DEFAULT_MEDIA_KEY,
    )
    generated = otio.schema.Track(name=GENERATED_TRACK, kind=otio.schema.TrackKind.Video)
    generated.append(clip)
    timeline.tracks.append(generated)
    for source in sources:
        camera_start = _time(source.start_timecode, source.fps)
        reference = otio.schema.ExternalReference(
            target_url=source.path.resolve().as_uri(),
            available_range=time_range(camera_start, rational(source.length, source.fps)),
        )
        reference.name = source.name  # an EDL's reel: the camera (cmx_3600 keeps 8 letters and digits of it)
        span = time_range(camera_start + rational(source.first, source.fps), rational(source.frames, source.fps))
        track = otio.schema.Track(name=source.name, kind=otio.schema.TrackKind.Video)
        track.append(otio.schema.Clip(name=source.name, media_reference=reference, source_range=span))
        timeline.tracks.append(track)
    return timeline


def edl_text(timeline, track: str = GENERATED_TRACK) -> str:
    """The CMX 3600 EDL of one of the timeline's tracks (by name), recorded from the timeline's start timecode."""
    import copy

    import opentimelineio as otio

    single_track = copy.deepcopy(next(t for t in timeline.tracks if t.name == track))
    # The adapter records from the track's start; a gap as long as the start timecode puts the record
    # timecode on the shot's, as an edit starting at that timecode would.
    single_track.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=timeline.global_start_time)))
    single = otio.schema.Timeline(name=timeline.name)
    single.tracks.append(single_track)
    rate = timeline.global_start_time.rate
    return otio.adapters.write_to_string(single, "cmx_3600", rate=rate)


def write_timeline(
    timeline, otio_path: Path, edl_path: Path, camera_edl_path: Callable[[str], Path]
) -> dict[str, Path]:
    """Write the timeline as .otio and, at a SMPTE rate, its EDLs (see the module docstring), each replaced whole
    (never half-written); EDLs of an earlier run that this one does not write are removed.

    Args:
        camera_edl_path: the EDL path of a production camera's track, by camera name.

    Returns:
        The EDLs written, by track name (the generated track's first); empty at a rate without SMPTE timecode.
    """
    import opentimelineio as otio

    write_text_atomic(otio_path, otio.adapters.write_to_string(timeline, "otio_json"))
    rate = timeline.global_start_time.rate
    written: dict[str, Path] = {}
    if edl_supported(rate):
        written[GENERATED_TRACK] = edl_path
        for track in timeline.tracks:
            if track.name != GENERATED_TRACK and abs(track[0].source_range.duration.rate - rate) < 1e-3:
                written[track.name] = camera_edl_path(track.name)
        for name, path in written.items():
            write_text_atomic(path, edl_text(timeline, name))
    any_camera = camera_edl_path("*")
    for stale in [edl_path, *any_camera.parent.glob(any_camera.name)]:
        if stale not in written.values():
            stale.unlink(missing_ok=True)
    return written
