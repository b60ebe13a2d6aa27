"""`reshoot report WS`: one self-contained HTML page of a workspace's continuity checks.

Writes `WS/report/index.html` (atomically): every image is embedded as a base64 PNG and the page loads
nothing from anywhere (no CDN, no script from outside), so it opens offline and can be mailed. It
shows, for the workspace, the top-down plan with the camera frusta, the layout and every shot's camera
path; for every synthesized shot its clip (the mp4, embedded and playable), its camera (lens in mm on a
36 mm-wide filmback, height, tilt, frames, deliverable numbers, timecodes) and links to its deliverables
(EXRs, timeline, EDL, video; relative to the page); and for every shot that has a `check.json` (run
`reshoot check` first): the verdicts, the
placement error of each entity over time, cross-view agreement and temporal change over time, and for
a few sample frames the original cameras beside the reshoot, the footage carried into the shot, and
the error heat map. Every figure is a `<figure data-figure="...">`, so tests (and people) can find them.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reshoot.check import read_check
from reshoot.geometry.cameras_io import CamerasDocument, read_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import read_json_document, write_text_atomic
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.layout_io import read_layout
from reshoot.layout_plan import plan_figure
from reshoot.shot_io import read_shot_document
from reshoot.workspace import ShotPaths, Workspace, load_workspace

THUMBNAIL_WIDTH = 320
VERDICT_COLOURS = {"pass": "#1b7f3b", "warn": "#b36b00", "fail": "#b3261e"}


@dataclass(frozen=True)
class ReportSummary:
    """What `write_report` wrote: the page, the shots it covers, the shots without a check."""

    path: Path
    shots: list[str]
    unchecked: list[str]


def _png(image: np.ndarray) -> str:
    """A data: URI of an 8-bit PNG of an [H, W, 3] float image in [0, 1] or uint8."""
    import imageio.v3 as iio

    return (
        "data:image/png;base64," + base64.b64encode(iio.imwrite("<bytes>", _to_uint8(image), extension=".png")).decode()
    )


def _figure_png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _thumbnail(image: np.ndarray, width: int = THUMBNAIL_WIDTH) -> np.ndarray:
    import cv2

    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_AREA)


def _figure(kind: str, caption: str, src: str, alt: str) -> str:
    return (
        f'<figure data-figure="{kind}"><img src="{src}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _verdict(verdict: str) -> str:
    return (
        f'<span class="verdict" style="background:{VERDICT_COLOURS.get(verdict, "#555")}">{html.escape(verdict)}</span>'
    )


def _error_plot(check: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 3.2))
    for entity in check["entities"]:
        frames = [row["frame"] for row in entity["frames"]]
        errors = [
            row["placement_error_px"] if row["placement_error_px"] is not None else np.nan for row in entity["frames"]
        ]
        if np.isfinite(errors).any():
            axes.plot(frames, errors, marker=".", label=entity["name"])
        missing = entity["missing_frames"]
        if missing:
            axes.scatter(missing, [0] * len(missing), marker="x", color="black")
    limits = check["thresholds"]
    axes.axhline(limits["placement_tolerance_px"], ls="--", color="0.5", lw=1)
    axes.set_xlabel("take frame")
    axes.set_ylabel("placement error (px)")
    axes.set_title("placement error per entity (x on the axis: not found)")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, ncol=3)
    return figure


def _series_plot(check: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 2.8))
    series = check["cross_view"]["series"]
    left.plot(series["frame"], [np.nan if v is None else v for v in series["agreement"]], marker=".")
    left.axhline(check["thresholds"]["agreement_warn"], ls="--", color="0.5", lw=1)
    left.set_ylim(0, 1)
    left.set_title("cross-view agreement")
    left.set_xlabel("take frame")
    temporal = check["temporal"]["series"]
    right.plot(temporal["frame"], temporal["change"], marker=".", color="tab:purple")
    right.axhline(check["thresholds"]["stability_warn"], ls="--", color="0.5", lw=1)
    right.set_title("warped frame-to-frame change (static set)")
    right.set_xlabel("take frame")
    figure.tight_layout()
    return figure


def _entity_rows(check: dict) -> str:
    rows = []
    for e in check["entities"]:
        px = "–" if e["placement_error_px"] is None else f"{e['placement_error_px']:.1f}"
        metres = "–" if e["placement_error_m"] is None else f"{e['placement_error_m']:.3f}"
        share = "–" if e["within_tolerance_share"] is None else f"{100 * e['within_tolerance_share']:.0f}%"
        rows.append(
            f"<tr><td>{html.escape(e['name'])}</td><td>{e['kind']}</td><td>{_verdict(e['verdict'])}</td>"
            f"<td>{px}</td><td>{metres}</td><td>{share}</td><td>{e['frames_found']}/{e['frames_measured']}</td>"
            f"<td>{html.escape('; '.join(e['reasons']))}</td></tr>"
        )
    return (
        "<table><tr><th>entity</th><th>kind</th><th>verdict</th><th>median error (px)</th>"
        "<th>median error (m)</th><th>within tolerance</th><th>found / measured</th><th>why</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _rule_rows(check: dict) -> str:
    c = check["continuity"]
    rows = [
        f"<tr><td>cross-view agreement</td><td>{_verdict(check['cross_view']['verdict'])}</td>"
        f"<td>{check['cross_view']['agreement']} of seen pixels within {check['thresholds']['agreement_error']}"
        f" ({check['cross_view']['seen_share']} of the frame seen)</td></tr>",
        f"<tr><td>temporal stability</td><td>{_verdict(check['temporal']['verdict'])}</td>"
        f"<td>mean change {check['temporal']['mean_change']}, max {check['temporal']['max_change']}</td></tr>",
    ]
    for item in c["axis_of_action"]:
        rows.append(
            f"<tr><td>180° line {html.escape(' / '.join(item['pair']))}</td><td>{_verdict(item['verdict'])}</td>"
            f"<td>{len(item['flipped_frames'])} of {item['decidable_frames']} frames flipped</td></tr>"
        )
    for item in c["screen_direction"]:
        rows.append(
            f"<tr><td>screen direction {html.escape(item['entity'])}</td><td>{_verdict(item['verdict'])}</td>"
            f"<td>{len(item['flipped_frames'])} of {item['decidable_frames']} frames flipped</td></tr>"
        )
    for item in c["props"]:
        rows.append(
            f"<tr><td>prop {html.escape(item['entity'])}</td><td>{_verdict(item['verdict'])}</td>"
            f"<td>missing in {len(item['missing_frames'])}, moved in {len(item['moved_frames'])} of "
            f"{item['frames_measured']} frames</td></tr>"
        )
    return "<table><tr><th>rule</th><th>verdict</th><th>measured</th></tr>" + "".join(rows) + "</table>"


def _side_by_side(shot: ShotPaths, footage, production: list[str]) -> list[str]:
    import imageio.v3 as iio

    figures = []
    for path in sorted(shot.check_images.glob("*_error.png")):
        frame = int(path.name.split("_")[0])
        output = shot.frames / f"{frame:06d}.png"
        reference = shot.check_images / f"{frame:06d}_reference.png"
        if not output.is_file() or not reference.is_file():
            continue
        shown = min(max(frame, footage.frames.start), footage.frames.stop - 1)
        originals = [_thumbnail(footage.source(n).read(shown)) for n in production]
        tiles = [_thumbnail(iio.imread(p)[..., :3]) for p in (output, reference, path)]
        row_top = np.concatenate([_to_uint8(t) for t in originals], axis=1)
        row_bottom = np.concatenate([_to_uint8(t) for t in tiles], axis=1)
        width = max(row_top.shape[1], row_bottom.shape[1])
        grid = np.concatenate(
            [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in (row_top, row_bottom)],
            axis=0,
        )
        figures.append(
            _figure(
                "side-by-side",
                f"frame {frame}: top, the original cameras ({', '.join(production)}); bottom, the "
                "reshoot, the footage carried into the shot, and |reshoot − footage| (black: no camera saw it)",
                _png(grid),
                f"frame {frame} side by side",
            )
        )
    return figures


FILMBACK_WIDTH_MM = 36.0
"""Lenses are quoted in millimetres on a 36 mm-wide filmback, as the USD export writes them."""


def _shot_card(shot: ShotPaths, document: CamerasDocument, page_folder: Path, units: str) -> str:
    """A synthesized shot's clip, camera summary (from its shot.json, `document`) and deliverable links ("" for
    a shot not synthesized yet)."""
    if not shot.synthesis.is_file() or not shot.video.is_file():
        return ""
    record = read_json_document(shot.synthesis, "synthesis", 1)
    camera, path = document.cameras.select(0), document.paths[shot.name]
    world_from_cam = np.linalg.inv(path.cam_from_world.numpy())
    heights = world_from_cam[:, 2, 3]
    tilts = np.degrees(np.arcsin(np.clip(-world_from_cam[:, 2, 2], -1, 1)))  # optical axis below the horizon
    lens = float(camera.K[0, 0, 0]) * FILMBACK_WIDTH_MM / int(camera.width[0])
    deliverable = record.get("deliverable", {})
    frames = record["frames"]
    rows = [
        ("lens", f"{lens:.1f} mm ({int(camera.width[0])}×{int(camera.height[0])})"),
        ("height", f"{heights.min():.2f} – {heights.max():.2f} {units}"),
        ("tilt (down)", f"{tilts.min():.1f}° – {tilts.max():.1f}°"),
        ("take frames", f"{frames[0]} – {frames[-1]} ({len(frames)})"),
    ]
    if deliverable:
        rows.append(("deliverable frames", "{} – {}".format(*deliverable["numbers"])))
        rows.append(("timecode", "{} – {}".format(*deliverable["timecodes"])))
        rows.append(("colour", html.escape(deliverable["working_space"])))
    links = [(shot.video, "video")]
    if shot.exr.is_dir():
        links.append((shot.exr, "EXR frames"))
    links += [(p, label) for p, label in ((shot.timeline, "timeline (.otio)"), (shot.edl, "EDL")) if p.is_file()]
    clip = base64.b64encode(shot.video.read_bytes()).decode()
    return (
        f'<section id="clip-{html.escape(shot.name)}"><h2>shot {html.escape(shot.name)}: clip and deliverables</h2>'
        f'<figure data-figure="clip"><video controls loop muted width="{min(int(camera.width[0]), 640)}" '
        f'src="data:video/mp4;base64,{clip}"></video><figcaption>the synthesized shot</figcaption></figure>'
        "<table>"
        + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        + "</table><p>"
        + " · ".join(
            f'<a href="{html.escape(os.path.relpath(p.resolve(), page_folder))}">{label}</a>' for p, label in links
        )
        + "</p></section>"
    )


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return image if image.dtype == np.uint8 else (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_report(
    workspace: str | Path, out: str | Path | None = None, progress: ProgressFn | None = None
) -> ReportSummary:
    """Write the report page (see the module docstring); default `WS/report/index.html`.

    Raises:
        InputError: the workspace has no layout yet.
    """
    report = progress or no_progress
    root = Path(workspace)
    ws = Workspace(root)
    settings = load_workspace(root)
    layout_file = ws.layout
    if not layout_file.is_file():
        raise InputError(
            f"{root}: no layout yet ({layout_file} is missing); run `reshoot layout {root}` and "
            f"`reshoot check {root} SHOT` first."
        )
    entities = read_layout(layout_file).entities
    registered = read_cameras_json(ws.cameras)
    production = registered.names_with_role("production", default="production")
    shots = ws.shot_names()
    checked = [s for s in shots if ws.shot(s).check.is_file()]

    documents = {name: read_shot_document(root, name) for name in shots}
    centres = {}
    for name, document in documents.items():
        path = document.paths[name]
        centres[name] = np.linalg.inv(path.cam_from_world.numpy())[:, :3, 3]
    points = [registered.cameras.centers.numpy()] + [c for c in centres.values()]
    for e in entities:
        points.append(np.concatenate([f.box for f in e.frames]))
    everything = np.concatenate(points)
    bounds = (tuple(everything.min(axis=0)), tuple(everything.max(axis=0)))
    parts = [
        _figure(
            "plan",
            "top-down plan: floor, camera frusta (blue), props (brown), character paths with "
            "frame ticks, shot camera paths (red, dashed)",
            _figure_png(plan_figure(entities, registered.cameras, bounds, centres)),
            "top-down plan",
        )
    ]
    target = Path(out) if out is not None else ws.report_page
    units = "units" if settings.scale.get("source", "arbitrary") == "arbitrary" else "m"
    cards = [_shot_card(ws.shot(name), documents[name], target.parent.resolve(), units) for name in shots]
    summary_rows = []
    sections = []
    with settings.open_footage() as footage:
        for k, name in enumerate(checked):
            shot = ws.shot(name)
            check = read_check(shot.check)
            summary_rows.append(
                f'<tr><td><a href="#shot-{html.escape(name)}">{html.escape(name)}</a></td>'
                f"<td>{_verdict(check['verdict'])}</td><td>{len(check['frames'])}</td></tr>"
            )
            body = [
                f'<section id="shot-{html.escape(name)}"><h2>shot {html.escape(name)} {_verdict(check["verdict"])}</h2>',
                "<h3>entities</h3>",
                _entity_rows(check),
                "<h3>rules</h3>",
                _rule_rows(check),
                _figure(
                    "entity-error",
                    "placement error of each entity over time",
                    _figure_png(_error_plot(check)),
                    f"{name} placement error",
                ),
                _figure(
                    "series",
                    "cross-view agreement and temporal change over time",
                    _figure_png(_series_plot(check)),
                    f"{name} agreement and stability",
                ),
            ]
            body += _side_by_side(shot, footage, production)
            if check.get("ground_truth"):
                regions = check["ground_truth"]["regions"]
                body.append(
                    "<h3>ground truth</h3><table><tr><th>region</th><th>PSNR (dB)</th><th>SSIM</th>"
                    "<th>FLIP</th></tr>"
                    + "".join(
                        f"<tr><td>{r}</td><td>{v['psnr']}</td><td>{v['ssim']}</td><td>{v['flip']}</td></tr>"
                        for r, v in regions.items()
                        if v
                    )
                    + "</table>"
                )
            body.append("</section>")
            sections.append("".join(body))
            report("report", k + 1, len(checked))
    unchecked = [s for s in shots if s not in checked]
    note = (
        f"<p>Shots without a check (run <code>reshoot check {html.escape(str(root))} SHOT</code>): "
        f"{html.escape(', '.join(unchecked))}</p>"
        if unchecked
        else ""
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reshoot report: {html.escape(root.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; font-size: 13px; text-align: left; }}
.verdict {{ color: white; padding: 1px 8px; border-radius: 3px; font-weight: bold; }}
figure {{ margin: 1em 0; }} figure img {{ max-width: 100%; }} figcaption {{ font-size: 12px; color: #555; }}
</style></head><body>
<h1>reshoot continuity report: {html.escape(root.name)}</h1>
<p>{len(production)} production cameras ({html.escape(", ".join(production))}), {settings.frames} frames at
{settings.fps:g} fps. Every measurement is from the output pixels against the real footage carried into
the shot with the registered geometry (docs/checks.md).</p>
<table><tr><th>shot</th><th>verdict</th><th>frames checked</th></tr>{"".join(summary_rows)}</table>
{note}
{parts[0]}
{"".join(cards)}
{"".join(sections)}
</body></html>
"""
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, page)
    return ReportSummary(target, checked, unchecked)
