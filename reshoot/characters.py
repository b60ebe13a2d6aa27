"""Characters in a take: found in each frame's visual hull, placed under their heads, tracked over time.

A library shared by the stages that need characters (`reshoot layout`, `reshoot reconstruct`).

- **Detection** (`detect_characters`): the hull's floor footprint splits into blobs; blobs that stand
  on the floor and are tall enough are candidates, and a blob holding the predicted positions of two
  tracked characters (people touching as they cross) is split between them. With few cameras a hull
  has ghosts where silhouettes of different people intersect, so candidates are accepted greedily by
  how many foreground pixels they explain that no accepted one does yet (a ghost explains none of its
  own). Each foreground pixel goes to the nearest character whose hull covers it. Where a character
  stands comes from its head: in each view the middle of the head's outline gives a line on the floor
  towards its vertical axis, and the lines meet there (weighted, outliers dropped); else from its hull.
- **Tracking** (`CharacterTracker`): detections are linked online into tracks by the Hungarian method
  on the distance to each track's robust straight-line prediction plus colour-histogram distance.
  Finished tracks have broken tracks stitched, misplaced detections moved onto their neighbours' line
  and brief gaps filled (marked `interpolated`); short-lived tracks are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from reshoot.geometry.camera import Camera, PixelHits
from reshoot.geometry.carving import VisualHull
from reshoot.stage_options import CharacterOptions
from reshoot.workspace import Workspace

HISTOGRAM_BINS = 4  # per RGB channel
PREDICTION_WINDOW = 8  # detections a track's predicted position is fitted to
BORDER_MARGIN_PX = 4  # a silhouette this close to the image border may be cut by it
HEAD_HEIGHT_M = 0.18  # the top of a standing body this tall is its head (a head is about 0.23 m)
MIN_HEAD_ROWS = 4  # head rows with clean outlines a view needs to place a character
MAX_BODY_GAP_M = 0.2  # a wider gap within a row separates the head from something else
HULL_GATE_M = 0.15  # a body's axis passes this close to its hull's voxels
OUTLIER_FLOOR_M = 0.02  # head lines missing their meeting point by less than this are never dropped
ONE_LINE_MOVE_M = 0.3  # a lone head line moves the hull's position across it by at most this
OUTLIER_WINDOW = 6  # frames either side that judge a track's detection
OUTLIER_MIN_M = 0.08  # a detection this close to its neighbours' line is never an outlier
STITCH_M = 1.0  # a track that ends this close to where another starts (within max_gap frames) is joined to it


@dataclass(frozen=True)
class Detection:
    """One character candidate in one frame.

    Attributes:
        frame: take frame.
        floor: [2] x, y of the footprint's centre (metres).
        box_min, box_max: [3] the hull blob's box (metres).
        histogram: [bins^3] colour histogram of its pixels in the cameras, summing to 1.
        cameras: names of the cameras where it shows as foreground.
        confidence: share of the cameras that see it as foreground, 0 to 1.
        interpolated: not detected in this frame: placed on the track's line through a brief gap.
        voxels: [M, 3] centres of its hull voxels (metres), or None.
    """

    frame: int
    floor: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray
    histogram: np.ndarray
    cameras: tuple[str, ...]
    confidence: float
    interpolated: bool = False
    voxels: np.ndarray | None = None

    def moved(self, floor: np.ndarray, **changes) -> Detection:
        """This detection placed at `floor` [2], its box (and voxels) shifted with it, other fields as
        `changes` say."""
        shift = np.append(floor - self.floor, 0.0)
        voxels = None if self.voxels is None else self.voxels + shift
        return replace(
            self, floor=floor, box_min=self.box_min + shift, box_max=self.box_max + shift, voxels=voxels, **changes
        )


@dataclass
class _Track:
    detections: dict[int, Detection] = field(default_factory=dict)

    def predict(self, frame: int) -> np.ndarray:
        """[2] floor x, y expected at `frame`: a straight, constant-speed line through the last
        PREDICTION_WINDOW detections, fitted robustly (Theil-Sen: the median of the pairwise velocities, then
        the median offset), so that one misplaced detection does not throw the prediction off."""
        frames = sorted(self.detections)[-PREDICTION_WINDOW:]
        offset, velocity = _theil_sen(
            np.array(frames, dtype=np.float64), np.stack([self.detections[f].floor for f in frames])
        )
        return offset + velocity * frame

    def histogram(self) -> np.ndarray:
        recent = [self.detections[f].histogram for f in sorted(self.detections)[-5:]]
        return np.mean(recent, axis=0)


class CharacterTracker:
    """Links per-frame detections into tracks online: Hungarian assignment on the distance to each
    track's predicted floor position plus colour-histogram distance; a track survives `max_gap` unseen
    frames. Its predictions also tell `detect_characters` when one hull blob holds several people."""

    def __init__(self, options: CharacterOptions):
        self.options = options
        self.active: list[_Track] = []
        self.finished: list[_Track] = []

    def expected(self, frame: int, min_detections: int = 3) -> list[np.ndarray]:
        """Predicted floor positions [2] at `frame` of the established tracks still alive."""
        return [
            t.predict(frame)
            for t in self.active
            if len(t.detections) >= min_detections and frame - max(t.detections) <= self.options.max_gap + 1
        ]

    def update(self, frame: int, detections: list[Detection]) -> None:
        """Assign the detections of `frame` (frames must come in increasing order)."""
        from scipy.optimize import linear_sum_assignment

        if not detections:
            return
        still = []
        for t in self.active:
            (still if frame - max(t.detections) <= self.options.max_gap + 1 else self.finished).append(t)
        self.active = still
        cost = np.full((len(self.active), len(detections)), 1e6)
        for i, t in enumerate(self.active):
            predicted, histogram = t.predict(frame), t.histogram()
            for j, d in enumerate(detections):
                distance = float(np.linalg.norm(predicted - d.floor))
                if distance <= self.options.gate:
                    cost[i, j] = distance + self.options.appearance_weight * _hellinger(histogram, d.histogram)
        matched = set()
        if len(self.active):
            for i, j in zip(*linear_sum_assignment(cost)):
                if cost[i, j] < 1e6:
                    self.active[i].detections[frame] = detections[j]
                    matched.add(j)
        self.active += [_Track({frame: d}) for j, d in enumerate(detections) if j not in matched]

    def tracks(self, frame_count: int) -> list[_Track]:
        """The finished tracks (`_stitched`, then `_outliers_replaced` and `_gaps_filled`) seen in at least
        `min_track_share` of the frames, in order of first appearance."""
        keep = [
            _Track(_gaps_filled(_outliers_replaced(t.detections), self.options.max_gap))
            for t in _stitched(self.finished + self.active, self.options)
            if len(t.detections) >= self.options.min_track_share * frame_count
        ]
        return sorted(keep, key=lambda t: (min(t.detections), float(t.detections[min(t.detections)].floor[0])))


def _hellinger(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance (0 to 1) between two normalized histograms."""
    return math.sqrt(max(0.0, 1.0 - float(np.sqrt(a * b).sum())))


def _stitched(tracks: list[_Track], options: CharacterOptions) -> list[_Track]:
    """Tracks with the broken ones joined: where one track ends and another starts within `max_gap`
    frames and STITCH_M metres of it (a character whose detections jumped past the tracker's gate), they
    are joined; the pair with the shortest gap first, then the lowest distance plus appearance cost."""
    tracks = [_Track(dict(t.detections)) for t in tracks]
    while True:
        best = None
        for i, a in enumerate(tracks):
            end = max(a.detections)
            for j, b in enumerate(tracks):
                start = min(b.detections)
                if i == j or not 0 < start - end <= options.max_gap + 1:
                    continue
                distance = float(np.linalg.norm(b.detections[start].floor - a.detections[end].floor))
                cost = (
                    start - end,
                    distance + options.appearance_weight * _hellinger(a.histogram(), b.detections[start].histogram),
                )
                if distance <= STITCH_M and (best is None or cost < best[0]):
                    best = (cost, i, j)
        if best is None:
            return tracks
        _, i, j = best
        tracks[i].detections.update(tracks[j].detections)
        del tracks[j]


def _theil_sen(times: np.ndarray, floors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust straight line through floor positions [N, 2] at times [N]: (offset [2], velocity [2]) with
    floor(t) = offset + velocity * t; the median of the pairwise velocities, then the median offset."""
    if len(times) < 2:
        return floors[0], np.zeros(2)
    first, second = np.triu_indices(len(times), k=1)
    velocity = np.median((floors[second] - floors[first]) / (times[second] - times[first])[:, None], axis=0)
    return np.median(floors - velocity * times[:, None], axis=0), velocity


def _gaps_filled(detections: dict[int, Detection], max_gap: int) -> dict[int, Detection]:
    """A track's detections with the frames of each gap of up to `max_gap` frames (a brief occlusion)
    filled: placed on the straight line (`_theil_sen`) through the detections within OUTLIER_WINDOW frames,
    box and colours from the nearest detection, no cameras, a quarter of its confidence, `interpolated`."""
    frames = np.array(sorted(detections), dtype=np.float64)
    floors = np.stack([detections[int(f)].floor for f in frames])
    out = dict(detections)
    for before, after in zip(frames[:-1], frames[1:]):
        if after - before <= 1 or after - before > max_gap + 1:
            continue
        for frame in range(int(before) + 1, int(after)):
            near = np.abs(frames - frame) <= OUTLIER_WINDOW
            offset, velocity = _theil_sen(frames[near], floors[near])
            closest = detections[int(frames[np.argmin(np.abs(frames - frame))])]
            out[frame] = closest.moved(
                offset + velocity * frame, frame=frame, cameras=(), confidence=closest.confidence / 4, interpolated=True
            )
    return out


def _outliers_replaced(detections: dict[int, Detection]) -> dict[int, Detection]:
    """A track's detections with the misplaced ones moved onto their neighbours' line.

    A detection is misplaced where it lies more than OUTLIER_MIN_M and 4 robust standard deviations from
    the straight line (`_theil_sen`) through the detections within OUTLIER_WINDOW frames of it (at least
    4 of them): a ghost or another character taken for this one (mostly while characters cross). Its
    position and box move onto the line and its confidence halves; every other detection is kept as
    measured."""
    frames = np.array(sorted(detections), dtype=np.float64)
    floors = np.stack([detections[int(f)].floor for f in frames])
    out = dict(detections)
    for i, frame in enumerate(frames):
        near = (np.abs(frames - frame) <= OUTLIER_WINDOW) & (frames != frame)
        if near.sum() < 4:
            continue
        offset, velocity = _theil_sen(frames[near], floors[near])
        spread = 1.4826 * np.median(np.linalg.norm(floors[near] - offset - velocity * frames[near, None], axis=1))
        expected = offset + velocity * frame
        if np.linalg.norm(floors[i] - expected) > max(OUTLIER_MIN_M, 4 * spread):
            d = detections[int(frame)]
            out[int(frame)] = d.moved(expected, confidence=d.confidence / 2)
    return out


def detect_characters(
    frame: int,
    hull: VisualHull,
    cameras: Camera,
    foreground: torch.Tensor,
    images: list[torch.Tensor],
    options: CharacterOptions,
    expected: list[np.ndarray] = (),
    occluder_depth: torch.Tensor | None = None,
) -> list[Detection]:
    """Character candidates of one frame from its visual hull, ghosts removed.

    Args:
        hull: the frame's hull; cameras: the V cameras of `foreground` [V, H, W] and `images` V × [H, W, 3].
        expected: floor positions [2] where tracked characters should be; a blob that holds two or more
            of them (people touching as they cross) is split between them.
        occluder_depth: [V, H, W] z-depth of the static set in the cameras, or None.
    """
    from scipy.ndimage import label

    if len(hull.centres) == 0:
        return []
    centres = hull.centres.double().numpy()
    cells = np.floor(centres[:, :2] / hull.voxel_size).astype(np.int64)
    origin = cells.min(0)
    grid = np.zeros(tuple(cells.max(0) - origin + 1), bool)
    grid[tuple((cells - origin).T)] = True
    labels, count = label(grid, structure=np.ones((3, 3), bool))
    blob_of_voxel = labels[tuple((cells - origin).T)]
    half = hull.voxel_size / 2
    candidates = []
    for blob in range(1, count + 1):
        for voxels in _split_blob(centres[blob_of_voxel == blob], expected, hull.voxel_size, options.min_height):
            lo, hi = voxels.min(0) - half, voxels.max(0) + half
            if hi[2] < options.min_height or lo[2] > options.max_floor_gap or hi[2] - lo[2] < options.min_extent:
                continue
            candidates.append((voxels, lo, hi))
    hits = [cameras.pixel_hits(torch.from_numpy(v)) for v, _, _ in candidates]
    covered = [_footprint(h, foreground) for h in hits]
    explained = torch.zeros_like(foreground)
    accepted = []
    for index in sorted(range(len(candidates)), key=lambda i: -int(covered[i].sum())):
        own = covered[index]
        fresh = own & ~explained
        if int(own.sum()) == 0 or int(fresh.sum()) < options.min_explained * int(own.sum()):
            continue
        own_per_view, fresh_per_view = own.flatten(1).sum(1), fresh.flatten(1).sum(1)
        explaining = (own_per_view > 0) & (fresh_per_view >= options.min_explained * own_per_view)
        if int(explaining.sum()) < options.min_explaining_views:
            continue
        explained |= own
        accepted.append(index)
    owner = _foreground_owner([hits[i] for i in accepted], cameras, foreground, hull.voxel_size)
    detections = []
    for k, index in enumerate(accepted):
        voxels, lo, hi = candidates[index]
        hull_floor = _floor_point(voxels, options.min_height)
        floor = _silhouette_floor(
            owner, k, foreground, voxels, hits[index].depth.median(1).values, cameras, occluder_depth, hull_floor
        )
        seen = [cameras.names[v] for v in range(len(cameras)) if int(covered[index][v].sum()) > 0]
        detections.append(
            Detection(
                frame,
                floor,
                lo,
                hi,
                _histogram(covered[index], images),
                tuple(seen),
                len(seen) / len(cameras),
                voxels=voxels,
            )
        )
    return detections


def _foreground_owner(
    characters: list[PixelHits], cameras: Camera, foreground: torch.Tensor, voxel_size: float
) -> torch.Tensor:
    """[V, H, W] int64: which character (index into `characters`, each its hull voxels' pixels in the
    cameras) each foreground pixel shows: the nearest one whose voxels cover it (each voxel drawn as a
    square of its projected size); -1 for background and for foreground no character covers."""
    if not characters:
        return torch.full(foreground.shape, -1, dtype=torch.int64)
    depth = torch.full((len(characters), *foreground.shape), math.inf)
    for k, hits in enumerate(characters):
        for v in range(len(cameras)):
            inside = hits.inside[v]
            if not bool(inside.any()):
                continue
            index = hits.rows[v][inside] * foreground.shape[2] + hits.cols[v][inside]
            near = float(hits.depth[v][inside].quantile(0.1))
            reach = min(15, math.ceil(0.5 * voxel_size * float(cameras.K[v, 0, 0]) / near))
            drawn = depth[k, v].view(-1).scatter_reduce(0, index, hits.depth[v][inside].float(), "amin")
            depth[k, v] = -torch.nn.functional.max_pool2d(
                -drawn.view(1, *foreground.shape[1:]), 2 * reach + 1, 1, reach
            )[0]
    nearest, owner = depth.min(0)
    return torch.where(foreground & torch.isfinite(nearest), owner, -1)


def _silhouette_floor(
    owner: torch.Tensor,
    index: int,
    foreground: torch.Tensor,
    voxels: np.ndarray,
    distance: torch.Tensor,
    cameras: Camera,
    occluder_depth: torch.Tensor | None,
    hull_floor: np.ndarray,
) -> np.ndarray:
    """[2] where a character stands: where the lines towards its head (`_axis_azimuth`) from the
    cameras meet on the floor plane.

    Each view's line has an uncertainty (metres across it) from how much its head rows disagree. Lines
    passing more than HULL_GATE_M from every voxel of the hull are not used, nor is a meeting point that
    far from them; the rest are intersected by weighted least squares, dropping the worst line while
    one misses by more than 3 of its standard deviations and OUTLIER_FLOOR_M. With one line the hull's
    position is moved onto it (when that moves it by at most ONE_LINE_MOVE_M); with none, or lines from
    about one direction, the hull's position is kept.

    Args:
        owner: [V, H, W] `_foreground_owner`; index: this character's index in it.
        foreground: [V, H, W] bool.
        voxels: [N, 3] its hull voxels; distance: [V] their median z-depth in each camera (metres).
        occluder_depth: [V, H, W] z-depth of the set, or None.
        hull_floor: [2] its position from the hull (the fallback).
    """
    lines = []  # (unit normal n [2], offset n · c, standard deviation in metres) per view
    footprint = voxels[:, :2]
    for v in range(len(cameras)):
        pixels_per_metre = float(cameras.K[v, 0, 0]) / float(distance[v])
        silhouette = _silhouette(owner[v], index, foreground[v], pixels_per_metre)
        found = _axis_azimuth(
            silhouette,
            foreground[v],
            cameras.select(v),
            pixels_per_metre,
            None if occluder_depth is None else _in_front(occluder_depth[v], float(distance[v])),
        )
        if found is None:
            continue
        azimuth, spread = found
        centre = cameras.centers[v, :2].double().numpy()
        normal = np.array([-math.sin(azimuth), math.cos(azimuth)])
        if np.abs((footprint - centre) @ normal).min() <= HULL_GATE_M:
            lines.append((normal, float(normal @ centre), spread * float(np.linalg.norm(hull_floor - centre))))
    while len(lines) >= 2:
        normals = np.stack([n for n, _, _ in lines])
        offsets = np.array([o for _, o, _ in lines])
        weights = np.array([1.0 / s**2 for _, _, s in lines])
        normal_matrix = (normals * weights[:, None]).T @ normals
        unit_matrix = normals.T @ normals
        if np.linalg.eigvalsh(unit_matrix)[0] < math.sin(math.radians(15)) ** 2:
            break  # about parallel: the point along them is not determined
        point = np.linalg.solve(normal_matrix, (normals * weights[:, None]).T @ offsets)
        residuals = np.abs(normals @ point - offsets)
        scaled = residuals * np.sqrt(weights)
        worst = int(np.argmax(scaled))
        if scaled[worst] <= 3.0 or residuals[worst] <= OUTLIER_FLOOR_M:
            if np.linalg.norm(footprint - point, axis=1).min() <= HULL_GATE_M:
                return point
            break  # the lines meet away from this hull: they belong to other characters
        del lines[worst]
    if len(lines) == 1:
        normal, offset, _ = lines[0]
        miss = normal @ hull_floor - offset
        if abs(miss) <= ONE_LINE_MOVE_M:
            return hull_floor - miss * normal
    return hull_floor


def _in_front(set_depth: torch.Tensor, distance: float, margin: float = 0.1) -> torch.Tensor:
    """[H, W] bool: where the set (z-depth [H, W], 0 where nothing is: the void beyond the set) stands
    more than `margin` in front of a character at z-depth `distance`."""
    return (set_depth > 0) & (set_depth < distance - margin)


def _silhouette(
    owner: torch.Tensor, index: int, foreground: torch.Tensor, pixels_per_metre: float, reach_m: float = 0.3
) -> torch.Tensor:
    """[H, W] bool: one character's silhouette in one view: the connected foreground region holding most
    of the pixels `owner` [H, W] gives it, not counting pixels of other characters, within `reach_m`
    of its own columns. Foreground no hull covers (the carving trims thin parts such as hair) joins the
    character it touches."""
    from scipy.ndimage import label

    own = owner == index
    if not bool((own & foreground).any()):
        return torch.zeros_like(own)
    columns = torch.nonzero(own.any(0)).flatten()
    reach = round(reach_m * pixels_per_metre)
    window = torch.zeros_like(own)
    window[:, max(int(columns[0]) - reach, 0) : int(columns[-1]) + reach + 1] = True
    candidate = foreground & ((owner == index) | (owner < 0)) & window
    regions, _ = label(candidate.numpy())
    regions = torch.from_numpy(regions)
    held = regions[own & candidate]
    if len(held) == 0:  # its pixels all lie outside the window's foreground regions
        return torch.zeros_like(own)
    return regions == int(torch.bincount(held).argmax())


def _axis_azimuth(
    silhouette: torch.Tensor,
    foreground: torch.Tensor,
    camera: Camera,
    pixels_per_metre: float,
    set_in_front: torch.Tensor | None,
) -> tuple[float, float] | None:
    """Azimuth (radians, world x towards y) of a character's vertical axis seen by one camera, from its
    head: the median over the head's rows of the middle of the silhouette's edge azimuths.

    The head is the part of a body that stays on its axis (swinging arms and legs, seen obliquely, move
    the middle of a row off it; see docs/benchmarks.md#layout). The head's rows are the silhouette's top
    HEAD_HEIGHT_M. They count only where the top is a real outline (background above it, away from the image border)
    and each row's two edges are too: one run of the character's pixels (gaps up to MAX_BODY_GAP_M),
    next to background, away from the border and not where the set stands in front of the character.
    Returns the azimuth and its standard error (radians; from the spread of the rows, at least a quarter
    pixel), or None with fewer than MIN_HEAD_ROWS such rows.

    Args:
        silhouette: [H, W] bool, the character's (`_silhouette`); foreground: [H, W] bool.
        set_in_front: [H, W] bool where the set is nearer than the character, or None.
        pixels_per_metre: image scale at the character's distance.
    """
    width = silhouette.shape[1]
    rows = torch.nonzero(silhouette.any(1)).flatten()
    if len(rows) < MIN_HEAD_ROWS or int(rows[0]) < BORDER_MARGIN_PX:
        return None
    occluding = foreground if set_in_front is None else foreground | set_in_front
    top = int(rows[0])
    if bool((occluding[max(top - 2, 0) : top] & silhouette[top]).any()):
        return None  # something stands in front of the top of the head
    rows = rows[rows < top + HEAD_HEIGHT_M * pixels_per_metre]
    columns = torch.arange(width)
    left = torch.where(silhouette[rows], columns, width).amin(1)
    right = torch.where(silhouette[rows], columns, -1).amax(1)
    gap = max(1, round(MAX_BODY_GAP_M * pixels_per_metre))
    closed = (
        -torch.nn.functional.max_pool1d(  # closing: gaps up to `gap` pixels filled
            -torch.nn.functional.max_pool1d(silhouette[rows].float()[:, None], 2 * gap + 1, 1, gap), 2 * gap + 1, 1, gap
        )[:, 0]
        > 0
    )
    runs = (closed[:, 1:] & ~closed[:, :-1]).sum(1) + closed[:, 0].long()
    clean = (runs == 1) & (left >= BORDER_MARGIN_PX) & (right < width - BORDER_MARGIN_PX)
    for edge, step in ((left, -1), (right, 1)):
        for offset in (1, 2):
            clean &= ~occluding[rows, (edge + step * offset).clamp(0, width - 1)]
    if int(clean.sum()) < MIN_HEAD_ROWS:
        return None
    rows, left, right = rows[clean], left[clean], right[clean]
    pixels = torch.stack([torch.cat([left - 0.5, right + 0.5]), torch.cat([rows, rows]).double()], -1)
    directions = camera.pixel_directions(pixels[None].double())[0]
    angles = torch.atan2(directions[:, 1], directions[:, 0]).double()
    left_angle, right_angle = angles[: len(rows)], angles[len(rows) :]
    middle = left_angle + _wrapped(right_angle - left_angle) / 2
    offsets = _wrapped(middle - middle[0])
    centre = offsets.median()
    spread = 1.2533 * 1.4826 * float((offsets - centre).abs().median()) / math.sqrt(len(rows))
    quantization = 0.25 / float(camera.K[0, 0, 0])  # radians: edges are found to about half a pixel
    return float(middle[0] + centre), math.hypot(spread, quantization)


def _wrapped(angles: torch.Tensor) -> torch.Tensor:
    """Angles (radians) wrapped into [-pi, pi)."""
    return torch.remainder(angles + math.pi, 2 * math.pi) - math.pi


def _split_blob(
    voxels: np.ndarray, expected: list[np.ndarray], voxel_size: float, min_height: float
) -> list[np.ndarray]:
    """The voxels [N, 3] of one hull blob, split between the expected character positions [2] that fall
    on it (within two voxels of one of its voxels), by k-means on the floor plane started there; the
    whole blob when fewer than two do."""
    flat = voxels[:, :2]
    on_blob = [p for p in expected if float(np.min(np.linalg.norm(flat - p, axis=1))) <= 2 * voxel_size]
    if len(on_blob) < 2:
        return [voxels]
    centres = np.stack(on_blob)
    for _ in range(10):
        owner = np.argmin(np.linalg.norm(flat[:, None] - centres[None], axis=2), axis=1)
        moved = np.stack(
            [
                _floor_point(voxels[owner == k], min_height) if np.any(owner == k) else centres[k]
                for k in range(len(centres))
            ]
        )
        if np.allclose(moved, centres):
            break
        centres = moved
    return [voxels[owner == k] for k in range(len(centres)) if np.any(owner == k)]


def _floor_point(voxels: np.ndarray, min_height: float) -> np.ndarray:
    """[2] where a character stands: the median x, y of its upper body (voxels above `min_height`), which
    swinging legs and hull fragments at the floor pull around far less than the whole blob's."""
    upper = voxels[voxels[:, 2] >= min_height]
    return np.median(upper if len(upper) else voxels, axis=0)[:2]


def _footprint(hits: PixelHits, foreground: torch.Tensor) -> torch.Tensor:
    """[V, H, W] bool: foreground pixels some voxels project onto (`hits`: each voxel's pixel and its 8
    neighbours)."""
    marks = torch.zeros(foreground.shape, dtype=torch.float32)
    for v in range(foreground.shape[0]):
        inside = hits.inside[v]
        marks[v, hits.rows[v][inside], hits.cols[v][inside]] = 1.0
    grown = torch.nn.functional.max_pool2d(marks[:, None], 3, 1, 1)[:, 0] > 0
    return grown & foreground


def _histogram(pixels: torch.Tensor, images: list[torch.Tensor]) -> np.ndarray:
    """Normalized RGB histogram (HISTOGRAM_BINS per channel) of the pixels [V, H, W] of images."""
    colours = torch.cat([image[mask] for image, mask in zip(images, pixels)]).numpy()
    bins = np.clip((colours * HISTOGRAM_BINS).astype(np.int64), 0, HISTOGRAM_BINS - 1)
    index = (bins[:, 0] * HISTOGRAM_BINS + bins[:, 1]) * HISTOGRAM_BINS + bins[:, 2]
    histogram = np.bincount(index, minlength=HISTOGRAM_BINS**3).astype(np.float64)
    return histogram / max(histogram.sum(), 1.0)


def track_characters(detections: list[list[Detection]], options: CharacterOptions, frame_count: int) -> list[_Track]:
    """Tracks from every frame's detections at once (see `CharacterTracker`)."""
    tracker = CharacterTracker(options)
    for frame_detections in detections:
        if frame_detections:
            tracker.update(frame_detections[0].frame, frame_detections)
    return tracker.tracks(frame_count)


CEILING_MARGIN = 1.3  # the carving box reaches this factor above the highest camera


def carving_bounds(ws: Workspace, cameras: Camera) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The box actors can be in: over the set's footprint (the sparse points' 2nd-98th percentiles joined
    with the cameras' positions, which surround or face the action), from the floor (or the lowest
    points, should the floor estimate sit above some of them) to a bit above the highest camera or
    point."""
    import open3d as o3d

    points = np.asarray(o3d.io.read_point_cloud(str(ws.points)).points)
    centres = cameras.centers.numpy()
    lo = np.minimum(np.percentile(points, 2, axis=0), centres.min(0))
    hi = np.maximum(np.percentile(points, 98, axis=0), centres.max(0))
    bottom = min(-0.05, float(lo[2]))
    top = max(float(centres[:, 2].max()) * CEILING_MARGIN, float(hi[2]), 0.5)
    return (float(lo[0]), float(lo[1]), bottom), (float(hi[0]), float(hi[1]), top)


def floor_found(ws: Workspace) -> bool:
    """Whether registration put z = 0 on a floor it found (rather than guessing up from the cameras)."""
    from reshoot.geometry.files import read_json_document

    report = ws.registration_report
    if not report.is_file():
        return True
    return int(read_json_document(report, "registration-report", 1).get("world_frame", {}).get("floor_points", 1)) > 0


@dataclass(frozen=True)
class CharacterSearch:
    """Where and how to look for characters in a registered workspace.

    Attributes:
        options: the options, with the floor tests off where registration found no floor.
        bounds: (min [3], max [3]) the box to carve (`carving_bounds`, taller without a floor).
        warnings: what the user should know (no floor found).
    """

    options: CharacterOptions
    bounds: tuple[tuple[float, ...], tuple[float, ...]]
    warnings: list[str]


def character_search(ws: Workspace, cameras: Camera, options: CharacterOptions) -> CharacterSearch:
    """The carving box and the options to find characters with, given what registration found."""
    bounds = carving_bounds(ws, cameras)
    if floor_found(ws):
        return CharacterSearch(options, bounds, [])
    low = min(bounds[0][2], float(cameras.centers[:, 2].min()) - 1.5)  # a body reaching below the cameras
    high = max(bounds[1][2], float(cameras.centers[:, 2].max()) + 1.0)  # or above them
    return CharacterSearch(
        replace(options, min_height=-math.inf, max_floor_gap=math.inf),
        ((bounds[0][0], bounds[0][1], low), (bounds[1][0], bounds[1][1], high)),
        [
            "registration found no floor (see registration/report.json): heights are not above a "
            "floor, so characters are found by size alone and floor positions are only x, y."
        ],
    )
