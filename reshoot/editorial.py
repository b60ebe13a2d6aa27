"""A shot's editorial hand-off: an OpenTimelineIO timeline `shots/NAME/NAME.otio` and a CMX 3600 EDL `NAME.edl`.

The timeline starts at the shot's first timecode and holds, one video track each:
- `generated`: the synthesized shot, its media the EXR deliverable (`exr/NAME.NNNN.exr`, an image
  sequence numbered from the deliverable start) with the mp4 as a second media reference ("review");
- one track per production camera: the same span of the take in that camera's own footage (its file, its
  rate, its start timecode), so an editor can cut between the filmed angles and the new one.
The EDL (OTIO's cmx_3600 adapter; one video track) lists the generated clip alone, record timecode
equal to source timecode. CMX 3600 timecodes exist at the SMPTE rates only (23.976 to 60 fps): a take at
another rate (a 6 fps webcam rig) gets the timeline and no EDL (`edl_supported`).
Timecodes are HH:MM:SS:FF strings counted at the rounded rate (`reshoot.datasets.sync`), so the timeline
is exact at any rate.
"""

from __future__ import annotations

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
        span = time_range(camera_start + rational(source.first, source.fps), rational(source.frames, source.fps))
        track = otio.schema.Track(name=source.name, kind=otio.schema.TrackKind.Video)
        track.append(otio.schema.Clip(name=source.name, media_reference=reference, source_range=span))
        timeline.tracks.append(track)
    return timeline


def edl_text(timeline) -> str:
    """The CMX 3600 EDL of the timeline's generated track, recorded at its source timecode."""
    import copy

    import opentimelineio as otio

    generated = copy.deepcopy(next(t for t in timeline.tracks if t.name == GENERATED_TRACK))
    # The adapter records from the track's start; a gap as long as the start timecode puts the record
    # timecode on the source's, as an edit starting at that timecode would.
    generated.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=timeline.global_start_time)))
    single = otio.schema.Timeline(name=timeline.name)
    single.tracks.append(generated)
    rate = timeline.global_start_time.rate
    return otio.adapters.write_to_string(single, "cmx_3600", rate=rate)


def write_timeline(timeline, otio_path: Path, edl_path: Path) -> bool:
    """Write the timeline as .otio and, at a SMPTE rate, its EDL, each replaced whole (never half-written); at
    another rate an EDL of an earlier run is removed. Whether an EDL was written."""
    import opentimelineio as otio

    write_text_atomic(otio_path, otio.adapters.write_to_string(timeline, "otio_json"))
    if not edl_supported(timeline.global_start_time.rate):
        edl_path.unlink(missing_ok=True)
        return False
    write_text_atomic(edl_path, edl_text(timeline))
    return True
