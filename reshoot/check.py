"""`reshoot check WS SHOT`: is the shot's output consistent with the footage and the layout?

Reads the output frames `shots/SHOT/frames/NNNNNN.png` (from `reshoot synthesize`, or any renderer that
writes them), the footage, the registration, the reconstruction's geometry and `layout.json`; writes
```
shots/SHOT/check.json              reshoot/check: thresholds, every metric, per-frame series, verdicts
shots/SHOT/check/NNNNNN_reference.png   for a few sample frames: the footage carried into the shot
shots/SHOT/check/NNNNNN_error.png       |output − reference| as a heat map (black where no camera saw)
```
both written beside their place and renamed in. Metrics (docs/checks.md):
- placement: each entity found in the output by correspondence with the footage (`placement.py`);
  error in pixels and metres, share of frames within tolerance, frames where it is missing;
- cross-view agreement: output vs footage where a production camera saw the surface;
- temporal stability: warped frame-to-frame change on the static set;
- continuity: 180° line between each pair of characters, screen direction of moving characters,
  missing or moved props;
- ground truth, when `truth` is given: PSNR, SSIM, FLIP over all pixels, covered / uncovered and per
  entity, and entity mask IoU.
Verdicts: pass / warn / fail per entity and per rule, and the worst of them for the shot.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reshoot.consistency import (
    CrossViewAgreement,
    cross_view_agreement,
    established_sign,
    locate_entities,
    screen_x,
    static_change,
)
from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, read_json_document, write_json_document
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.validation import check_number
from reshoot.layout_io import read_layout
from reshoot.placement import smoothed
from reshoot.render import load_splat_scene
from reshoot.reprojection import ShotFrameReference, shot_frame_reference
from reshoot.scene import scene_facts
from reshoot.shot_io import existing_shot, read_shot_document
from reshoot.workspace import Workspace, load_workspace

KIND = "check"
VERSION = 1
VERDICTS = ("pass", "warn", "fail")
SAMPLE_FRAMES = 4


@dataclass(frozen=True)
class CheckThresholds:
    """What passes. Every field can be set with `reshoot check --threshold NAME=VALUE`.

    Attributes:
        found_score: an entity is found in a frame when its template correlates at least this much (NCC).
        placement_tolerance_px: a frame's placement is within tolerance at this error or less (pixels).
        placement_warn_px, placement_fail_px: median placement error above which an entity warns / fails.
        within_tolerance_warn: share of found frames within tolerance below which an entity warns.
        missing_warn_share, missing_fail_share: share of measured frames where an entity is not found
            above which it warns / fails.
        agreement_error: a pixel agrees with the footage when |output − reference| is below this (0-1).
        agreement_warn, agreement_fail: share of seen pixels agreeing below which the shot warns / fails.
        stability_warn, stability_fail: mean warped frame-to-frame change on the static set (0-1 colour)
            above which the shot warns / fails.
        mirror_margin: a frame is mirrored when the mirrored templates correlate better by this much on average.
        flip_fail_share: share of decidable frames breaking a continuity rule above which it fails
            (any broken frame warns).
        min_separation_px: two characters closer than this on screen have no left-right order that frame.
        min_motion_px: screen motion over `direction_span` frames below this has no direction.
        direction_span: frames over which screen direction is measured.
    """

    found_score: float = 0.5
    placement_tolerance_px: float = 8.0
    placement_warn_px: float = 5.0
    placement_fail_px: float = 12.0
    within_tolerance_warn: float = 0.9
    missing_warn_share: float = 0.1
    missing_fail_share: float = 0.5
    agreement_error: float = 0.1
    agreement_warn: float = 0.6
    agreement_fail: float = 0.4
    stability_warn: float = 0.015
    stability_fail: float = 0.03
    mirror_margin: float = 0.1
    flip_fail_share: float = 0.5
    min_separation_px: float = 8.0
    min_motion_px: float = 4.0
    direction_span: int = 4

    def with_overrides(self, overrides: list[str]) -> CheckThresholds:
        """A copy with `NAME=VALUE` overrides applied.

        Raises:
            InputError: an unknown name, or a value that is not a finite number of at least 0 (1 for counts).
        """
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes = {}
        for item in overrides:
            name, _, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if name not in fields or not value:
                raise InputError(f"threshold {item!r}: give NAME=VALUE with NAME one of {', '.join(fields)}.")
            try:
                changes[name] = int(value) if fields[name].type in (int, "int") else float(value)
            except ValueError:
                raise InputError(f"threshold {item!r}: {value!r} is not a number.") from None
            check_number(changes[name], f"threshold {item!r}", 1 if fields[name].type in (int, "int") else 0)
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class CheckSummary:
    """What `check_shot` wrote: check.json, the shot's verdict, the names of failing / warning items."""

    path: Path
    verdict: str
    problems: list[str]
    document: dict


def worst(verdicts) -> str:
    """The worst of pass / warn / fail ("pass" for none)."""
    return max(verdicts, key=VERDICTS.index, default="pass")


def graded(value: float | None, warn: float, fail: float, higher_is_worse: bool = True) -> str:
    """pass / warn / fail of a measurement against its warn and fail thresholds ("pass" for None)."""
    if value is None:
        return "pass"
    if not higher_is_worse:
        value, warn, fail = -value, -warn, -fail
    return "fail" if value > fail else "warn" if value > warn else "pass"


def _read_frame(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    image = iio.imread(path)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return image[..., :3].astype(np.float32) / scale


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _median(values) -> float | None:
    finite = _finite(values)
    return round(float(np.median(finite)), 4) if finite else None


def _round(value, digits: int = 4):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(float(value), digits)


def check_shot(
    workspace: str | Path,
    name: str,
    thresholds: CheckThresholds | None = None,
    truth: str | Path | None = None,
    frames: tuple[int, int] | None = None,
    backend: str = "auto",
    progress: ProgressFn | None = None,
) -> CheckSummary:
    """Check shot `name`'s output frames and write `shots/NAME/check.json` (see the module docstring).

    Args:
        workspace: the workspace.
        name: the shot.
        thresholds: what passes (defaults documented on CheckThresholds).
        truth: a folder of true frames of the shot (`NNNNNN.png`, same size), optionally with
            `entity/NNNNNN.png` (16-bit entity id + 1, 0 = none; any labelling), for ground-truth scores.
        frames: (A, B) to check take frames A to B-1 only; default every frame of the shot.
        backend: rasterizer backend for the geometry renders.

    Raises:
        InputError: the shot, its frames, the layout or the reconstruction is missing, or a frame has the
            wrong size.
    """
    started = time.perf_counter()
    report = progress or no_progress
    limits = thresholds or CheckThresholds()
    root = Path(workspace)
    existing_shot(root, name)
    shot = Workspace(root).shot(name)
    document = read_shot_document(root, name)
    path = document.paths[name]
    camera = document.cameras.select(0).pinhole()
    shot_frames = [int(f) for f in path.frames]
    chosen = [i for i, f in enumerate(shot_frames) if frames is None or frames[0] <= f < frames[1]]
    if not chosen:
        raise InputError(
            f"shot {name!r} has no frames in {frames[0]}:{frames[1]} (it has {shot_frames[0]} to {shot_frames[-1]})."
        )
    outputs = [shot.frames / f"{shot_frames[i]:06d}.png" for i in chosen]
    missing = [p.name for p in outputs if not p.is_file()]
    if missing:
        raise InputError(
            f"shot {name!r}: {len(missing)} output frames are missing from {shot.frames} "
            f"(first {missing[0]}); run `reshoot synthesize {root} {name}` first."
        )
    truth_folder = Path(truth) if truth is not None else None
    if truth_folder is not None and not truth_folder.is_dir():
        raise InputError(f"--truth {truth_folder}: not a folder of true frames (NNNNNN.png).")

    facts = scene_facts(root)
    scene = load_splat_scene(root)
    settings = load_workspace(root)
    registered = read_cameras_json(Workspace(root).cameras)
    production = registered.names_with_role("production", default="production")
    sources = registered.cameras.select(production)
    entities = sorted(facts.entities.values(), key=lambda e: e.entity_id)
    characters = [e for e in entities if e.kind == "character"]
    character_ids = {e.entity_id for e in characters}
    width, height = int(camera.width[0]), int(camera.height[0])
    focal = float(camera.K[0, 0, 0])
    layout_frames = _layout_frames(root)

    per_frame = []
    previous = None
    samples = set(np.linspace(0, len(chosen) - 1, min(SAMPLE_FRAMES, len(chosen))).round().astype(int).tolist())
    sample_images = {}
    truth_rows = []
    with settings.open_footage() as footage:
        for k, i in enumerate(chosen):
            frame = shot_frames[i]
            output = _read_frame(outputs[k])
            if output.shape[:2] != (height, width):
                raise InputError(
                    f"{outputs[k]}: {output.shape[1]}×{output.shape[0]} pixels, the shot is "
                    f"{width}×{height}; the frames do not belong to this shot."
                )
            index = frame - facts.first_frame
            shown = min(max(frame, footage.frames.start), footage.frames.stop - 1)
            images = [footage.source(n).read(shown) for n in production]
            shot_camera = camera.with_pose(path.cam_from_world[i])
            reference = shot_frame_reference(scene.at(frame), shot_camera, sources, images, entities, index, backend)
            agreement = cross_view_agreement(output, reference, production, limits.agreement_error)
            located = locate_entities(
                smoothed(output), smoothed(reference.colour, reference.seen), reference, [e.entity_id for e in entities]
            )
            change = None
            if previous is not None and previous[0] == frame - 1:
                change = static_change(previous[1], previous[2], previous[3], output, reference, character_ids)
            positions = {e.entity_id: e.box_at(index).mean(axis=0) for e in entities}
            per_frame.append(
                _FrameResult(
                    frame,
                    agreement,
                    located,
                    change,
                    positions,
                    {e.entity_id: frame in layout_frames.get(e.entity_id, {frame}) for e in entities},
                )
            )
            if k in samples:
                sample_images[frame] = (reference.colour, agreement.error_map)
            if truth_folder is not None:
                truth_rows.append(_truth_row(truth_folder, frame, output, reference, located, limits))
            previous = (frame, output, reference, shot_camera)
            report("checking", k + 1, len(chosen))

    body = _assemble(name, document, per_frame, entities, limits, sources, production, focal, character_ids)
    if truth_folder is not None:
        body["ground_truth"] = _truth_summary(truth_folder, truth_rows, entities)
    body["seconds"] = round(time.perf_counter() - started, 2)
    with atomic_directory(shot.check_images, overwrite=True) as tmp:
        _write_samples(tmp, sample_images)
    write_json_document(shot.check, KIND, VERSION, body)
    problems = [f"{item['name']}: {item['verdict']}" for item in body["entities"] if item["verdict"] != "pass"]
    problems += [
        f"{rule}: {body[rule]['verdict']}"
        for rule in ("cross_view", "temporal", "continuity")
        if body[rule]["verdict"] != "pass"
    ]
    return CheckSummary(shot.check, body["verdict"], problems, body)


@dataclass(frozen=True)
class _FrameResult:
    frame: int
    agreement: CrossViewAgreement
    located: dict
    change: tuple[float, int] | None
    positions: dict[int, np.ndarray]
    in_layout: dict[int, bool]


def _layout_frames(root: Path) -> dict[int, set[int]]:
    """Entity id → the take frames where the layout found it, not interpolated (props: every frame)."""
    return {
        e.entity_id: frames
        for e in read_layout(Workspace(root).layout).entities
        if (frames := e.observed_frames()) is not None
    }


def _observed(located, mirrored: bool, limits: CheckThresholds) -> float | None:
    """Screen x where the entity was found (mirror-corrected to the frame as shown), or None."""
    direct, flipped = located
    hit = flipped if mirrored else direct
    if not hit.measured or hit.score < limits.found_score:
        return None
    return hit.expected_px[0] + hit.offset_px[0]


def _assemble(name, document, per_frame, entities, limits, sources, production, focal, character_ids) -> dict:
    frames = [r.frame for r in per_frame]
    mirrored = []
    for r in per_frame:
        margins = [
            flip.score - direct.score
            for direct, flip in r.located.values()
            if direct.measured and max(direct.score, flip.score) >= limits.found_score
        ]
        mirrored.append(bool(margins) and float(np.mean(margins)) > limits.mirror_margin)

    entity_items = [_entity_item(e, per_frame, limits, focal) for e in entities]
    cross_view = _cross_view_item(per_frame, limits, production)
    temporal = _temporal_item(per_frame, limits)
    continuity = _continuity_item(per_frame, entities, character_ids, mirrored, limits, sources)
    verdict = worst(
        [e["verdict"] for e in entity_items] + [cross_view["verdict"], temporal["verdict"], continuity["verdict"]]
    )
    shot = document.extra.get("shot", {})
    return {
        "shot": name,
        "revision": shot.get("revision"),
        "frames": frames,
        "thresholds": dataclasses.asdict(limits),
        "verdict": verdict,
        "mirrored_frames": [f for f, m in zip(frames, mirrored) if m],
        "entities": entity_items,
        "cross_view": cross_view,
        "temporal": temporal,
        "continuity": continuity,
        "ground_truth": None,
    }


def _entity_item(entity, per_frame, limits: CheckThresholds, focal: float) -> dict:
    rows = []
    for r in per_frame:
        direct, _ = r.located[entity.entity_id]
        found = direct.measured and direct.score >= limits.found_score
        rows.append(
            {
                "frame": r.frame,
                "measured": direct.measured,
                "found": found,
                "template_pixels": direct.pixels,
                "score": _round(direct.score, 3),
                "placement_error_px": _round(direct.error_px, 2) if found else None,
                "placement_error_m": _round(direct.error_m(focal), 4) if found else None,
                "offset_px": [_round(direct.offset_px[0], 2), _round(direct.offset_px[1], 2)] if found else None,
                "expected_px": [_round(direct.expected_px[0], 1), _round(direct.expected_px[1], 1)]
                if direct.pixels
                else None,
            }
        )
    measured = [row for row in rows if row["measured"]]
    found = [row for row in measured if row["found"]]
    errors = [row["placement_error_px"] for row in found]
    within = sum(e <= limits.placement_tolerance_px for e in errors)
    missing_share = (len(measured) - len(found)) / len(measured) if measured else None
    median_px = _median(errors)
    reasons = []
    if not measured:
        reasons.append("no camera saw it where the shot sees it: not measured")
    missing_verdict = graded(missing_share, limits.missing_warn_share, limits.missing_fail_share)
    if missing_verdict != "pass":
        reasons.append(f"not found in {len(measured) - len(found)} of {len(measured)} frames")
    placement_verdict = graded(median_px, limits.placement_warn_px, limits.placement_fail_px)
    if placement_verdict != "pass":
        limit = limits.placement_fail_px if placement_verdict == "fail" else limits.placement_warn_px
        reasons.append(f"median placement error {median_px:.1f} px > {limit}")
    tolerance_verdict = "pass"
    if found and within / len(found) < limits.within_tolerance_warn:
        tolerance_verdict = "warn"
        reasons.append(f"within {limits.placement_tolerance_px} px in {within} of {len(found)} frames")
    verdict = worst([missing_verdict, placement_verdict, tolerance_verdict])
    return {
        "id": entity.entity_id,
        "name": entity.name,
        "kind": entity.kind,
        "verdict": verdict,
        "reasons": reasons,
        "placement_error_px": median_px,
        "placement_error_m": _median(row["placement_error_m"] for row in found),
        "within_tolerance_share": _round(within / len(found), 3) if found else None,
        "frames_measured": len(measured),
        "frames_found": len(found),
        "missing_frames": [row["frame"] for row in measured if not row["found"]],
        "frames": rows,
    }


def _cross_view_item(per_frame, limits: CheckThresholds, production: list[str]) -> dict:
    agreements = [r.agreement for r in per_frame]
    weights = np.array([a.seen_share for a in agreements])
    values = np.array([a.agreement if math.isfinite(a.agreement) else 0.0 for a in agreements])
    errors = np.array([a.mean_error if math.isfinite(a.mean_error) else 0.0 for a in agreements])
    total = weights.sum()
    agreement = float((values * weights).sum() / total) if total > 0 else None
    mean_error = float((errors * weights).sum() / total) if total > 0 else None
    per_camera = {}
    for name in production:
        pairs = [a.per_camera[name] for a in agreements if name in a.per_camera]
        count = sum(p[0] for p in pairs)
        if count:
            per_camera[name] = {"pixels": count, "mean_error": round(sum(p[0] * p[1] for p in pairs) / count, 4)}
    verdict = (
        "warn"
        if agreement is None
        else graded(agreement, limits.agreement_warn, limits.agreement_fail, higher_is_worse=False)
    )
    return {
        "verdict": verdict,
        "agreement": _round(agreement, 4),
        "mean_error": _round(mean_error, 4),
        "seen_share": _round(float(weights.mean()), 4),
        "per_camera": per_camera,
        "series": {
            "frame": [r.frame for r in per_frame],
            "agreement": [_round(a.agreement) for a in agreements],
            "mean_error": [_round(a.mean_error) for a in agreements],
            "seen_share": [_round(a.seen_share) for a in agreements],
        },
    }


def _temporal_item(per_frame, limits: CheckThresholds) -> dict:
    pairs = [(r.frame, r.change) for r in per_frame if r.change is not None and math.isfinite(r.change[0])]
    changes = [c[0] for _, c in pairs]
    mean = float(np.mean(changes)) if changes else None
    return {
        "verdict": graded(mean, limits.stability_warn, limits.stability_fail),
        "mean_change": _round(mean, 5),
        "max_change": _round(max(changes), 5) if changes else None,
        "series": {
            "frame": [f for f, _ in pairs],
            "change": [_round(c[0], 5) for _, c in pairs],
            "pixels": [c[1] for _, c in pairs],
        },
    }


def _rule_verdict(flipped: int, decidable: int, limits: CheckThresholds) -> str:
    if decidable and flipped / decidable > limits.flip_fail_share:
        return "fail"
    return "warn" if flipped else "pass"


def _continuity_item(per_frame, entities, character_ids, mirrored, limits: CheckThresholds, sources) -> dict:
    by_id = {e.entity_id: e for e in entities}
    characters = sorted(character_ids)
    frames = [r.frame for r in per_frame]

    def observed_x(k: int, entity_id: int) -> float | None:
        return _observed(per_frame[k].located[entity_id], mirrored[k], limits)

    axis = []
    for a_index, a in enumerate(characters):
        for b in characters[a_index + 1 :]:
            flipped, decidable = [], 0
            for k, r in enumerate(per_frame):
                if not (r.in_layout[a] and r.in_layout[b]):
                    continue
                points = np.stack([r.positions[a], r.positions[b]])
                in_sources = screen_x(sources, points)
                established = established_sign(in_sources[:, 1] - in_sources[:, 0])
                xa, xb = observed_x(k, a), observed_x(k, b)
                if established == 0 or xa is None or xb is None or abs(xb - xa) < limits.min_separation_px:
                    continue
                decidable += 1
                if np.sign(xb - xa) != established:
                    flipped.append(r.frame)
            axis.append(
                {
                    "pair": [by_id[a].name, by_id[b].name],
                    "decidable_frames": decidable,
                    "flipped_frames": flipped,
                    "verdict": _rule_verdict(len(flipped), decidable, limits),
                }
            )

    direction = []
    span = max(1, limits.direction_span)
    for c in characters:
        flipped, decidable = [], 0
        for k in range(len(per_frame) - span):
            r0, r1 = per_frame[k], per_frame[k + span]
            if r1.frame - r0.frame != span or not (r0.in_layout[c] and r1.in_layout[c]):
                continue
            x0, x1 = observed_x(k, c), observed_x(k + span, c)
            if x0 is None or x1 is None or abs(x1 - x0) < limits.min_motion_px:
                continue
            in_sources = screen_x(sources, np.stack([r0.positions[c], r1.positions[c]]))
            established = established_sign(in_sources[:, 1] - in_sources[:, 0])
            if established == 0:
                continue
            decidable += 1
            if np.sign(x1 - x0) != established:
                flipped.append(r1.frame)
        direction.append(
            {
                "entity": by_id[c].name,
                "decidable_frames": decidable,
                "flipped_frames": flipped,
                "verdict": _rule_verdict(len(flipped), decidable, limits),
            }
        )

    props = []
    for e in entities:
        if e.kind != "prop":
            continue
        missing, moved, measured = [], [], 0
        for r in per_frame:
            direct, _ = r.located[e.entity_id]
            if not direct.measured:
                continue
            measured += 1
            if direct.score < limits.found_score:
                missing.append(r.frame)
            elif direct.error_px > limits.placement_fail_px:
                moved.append(r.frame)
        verdict = worst(
            graded(len(bad) / measured if measured else None, limits.missing_warn_share, limits.missing_fail_share)
            for bad in (missing, moved)
        )
        props.append(
            {
                "entity": e.name,
                "frames_measured": measured,
                "missing_frames": missing,
                "moved_frames": moved,
                "verdict": verdict,
            }
        )

    verdict = worst([item["verdict"] for item in axis + direction + props])
    return {"verdict": verdict, "axis_of_action": axis, "screen_direction": direction, "props": props, "frames": frames}


def _write_samples(folder: Path, samples: dict) -> None:
    import imageio.v3 as iio
    import matplotlib

    colormap = matplotlib.colormaps["inferno"]
    for frame, (reference, error) in samples.items():
        iio.imwrite(folder / f"{frame:06d}_reference.png", (reference.clip(0, 1) * 255 + 0.5).astype(np.uint8))
        heat = colormap(np.nan_to_num(error / 0.3, nan=0.0).clip(0, 1))[..., :3]
        heat[~np.isfinite(error)] = 0
        iio.imwrite(folder / f"{frame:06d}_error.png", (heat * 255 + 0.5).astype(np.uint8))


def _truth_row(
    folder: Path, frame: int, output: np.ndarray, reference: ShotFrameReference, located, limits: CheckThresholds
) -> dict:
    """Ground-truth scores of one frame (PSNR, SSIM, FLIP by region; entity masks for IoU)."""
    import imageio.v3 as iio

    from reshoot.image_metrics import flip_map, ssim_map

    path = folder / f"{frame:06d}.png"
    if not path.is_file():
        raise InputError(f"--truth {folder}: no true frame {path.name}; give a folder with one PNG per shot frame.")
    truth = _read_frame(path)
    if truth.shape != output.shape:
        raise InputError(f"{path}: {truth.shape[1]}×{truth.shape[0]}, the shot is {output.shape[1]}×{output.shape[0]}.")
    ssim = ssim_map(output, truth)
    flip = flip_map(output, truth)
    squared = ((output - truth) ** 2).mean(axis=-1)
    regions = {"all": np.ones(output.shape[:2], bool), "covered": reference.surface, "uncovered": ~reference.surface}
    entity_path = folder / "entity" / f"{frame:06d}.png"
    true_ids = iio.imread(entity_path).astype(np.int32) - 1 if entity_path.is_file() else None
    predicted = {}
    for entity_id, (direct, _) in located.items():
        mask = reference.entity == entity_id
        if direct.measured and direct.score >= limits.found_score:
            dx, dy = (int(round(v)) for v in direct.offset_px)
            mask = np.roll(mask, (dy, dx), axis=(0, 1))
        predicted[entity_id] = mask
    return {
        "frame": frame,
        "squared": squared,
        "ssim": ssim,
        "flip": flip,
        "regions": regions,
        "true_ids": true_ids,
        "predicted": predicted,
    }


def _truth_summary(folder: Path, rows: list[dict], entities) -> dict:
    """PSNR / SSIM / FLIP per region and per entity, and entity mask IoU, over the checked frames."""
    from scipy.optimize import linear_sum_assignment

    def region_scores(masks: list[np.ndarray]) -> dict | None:
        total = sum(int(m.sum()) for m in masks)
        if total == 0:
            return None
        squared = sum(float(r["squared"][m].sum()) for r, m in zip(rows, masks)) / total
        ssim = sum(float(r["ssim"][m].sum()) for r, m in zip(rows, masks)) / total
        flip = sum(float(r["flip"][m].sum()) for r, m in zip(rows, masks)) / total
        return {
            "pixels": total,
            "psnr": round(10 * math.log10(1 / max(squared, 1e-12)), 3),
            "ssim": round(ssim, 4),
            "flip": round(flip, 4),
        }

    out = {
        "truth": str(folder),
        "frames": [r["frame"] for r in rows],
        "regions": {
            name: region_scores([r["regions"][name] for r in rows]) for name in ("all", "covered", "uncovered")
        },
        "entities": [],
    }
    if all(r["true_ids"] is not None for r in rows):
        true_labels = sorted({int(v) for r in rows for v in np.unique(r["true_ids"]) if v >= 0})
        ids = [e.entity_id for e in entities]
        overlap = np.zeros((len(ids), len(true_labels)))
        for r in rows:
            for i, entity_id in enumerate(ids):
                for j, label in enumerate(true_labels):
                    overlap[i, j] += np.logical_and(r["predicted"][entity_id], r["true_ids"] == label).sum()
        matched = dict(zip(*linear_sum_assignment(-overlap))) if overlap.size else {}
        for i, e in enumerate(entities):
            j = matched.get(i)
            if j is None or overlap[i, j] == 0:
                out["entities"].append({"name": e.name, "true_label": None, "iou": None})
                continue
            truth_masks = [r["true_ids"] == true_labels[j] for r in rows]
            inter = sum(np.logical_and(r["predicted"][e.entity_id], m).sum() for r, m in zip(rows, truth_masks))
            union = sum(np.logical_or(r["predicted"][e.entity_id], m).sum() for r, m in zip(rows, truth_masks))
            item = {
                "name": e.name,
                "true_label": true_labels[j],
                "iou": round(float(inter / union), 4) if union else None,
            }
            item.update(region_scores(truth_masks) or {})
            out["entities"].append(item)
    return out


def read_check(path: str | Path) -> dict:
    """A check.json as `check_shot` wrote it (its one reader).

    Raises:
        InputError / FormatError: missing, damaged or of a newer version.
    """
    return read_json_document(path, KIND, VERSION)


def check_verdict_exit_code(verdict: str) -> int:
    """The process exit status for a shot verdict: 0 for pass and warn, 1 for fail."""
    return 1 if verdict == "fail" else 0
