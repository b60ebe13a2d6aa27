"""The world frame of a registration (DESIGN.md §3): z up (gravity), floor at z = 0, metres when known.

Up comes from the floor: the lowest large plane of the sparse points (open3d RANSAC) whose normal
agrees with the production cameras' up vectors (cameras on set are levelled, so their image "up"
points roughly against gravity). Without such a plane, the cameras' mean up vector is used. Scale
comes from a user hint: a known distance between two camera centres, or known camera heights above
the floor; else it is arbitrary (recorded as such).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .camera import Camera
from .errors import InputError

log = logging.getLogger(__name__)

HORIZONTAL_TOLERANCE_DEG = 30.0  # a floor's normal within this of the cameras' mean up vector
ASSUMED_CAMERA_HEIGHT_M = 1.6  # only to give "arbitrary" units a familiar size; recorded as arbitrary


@dataclass(frozen=True)
class ScaleHint:
    """What the user knows about metric scale.

    Attributes:
        known_distance: (camera a, camera b, metres between their centres), or None.
        camera_heights: camera name → height of its centre above the floor in metres; the name "*"
            means every production camera stands at that height on average.
    """

    known_distance: tuple[str, str, float] | None = None
    camera_heights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WorldFrame:
    """A similarity from the SfM frame into the world frame, and how it was found.

    Attributes:
        world_from_sfm: [4, 4] float64 similarity, x_world = world_from_sfm @ x_sfm.
        scale: world units per SfM unit.
        scale_source: "known_distance", "camera_height", "calibration" or "arbitrary".
        up_source: "floor_plane" or "camera_up".
        floor_points: sparse points on the floor plane (0 without a floor).
        up_vs_cameras_deg: angle between the chosen up and the cameras' mean up vector.
    """

    world_from_sfm: np.ndarray
    scale: float
    scale_source: str
    up_source: str
    floor_points: int
    up_vs_cameras_deg: float

    def apply_to_points(self, points_sfm: np.ndarray) -> np.ndarray:
        """[N, 3] SfM points → world."""
        return points_sfm @ self.world_from_sfm[:3, :3].T + self.world_from_sfm[:3, 3]

    def apply_to_cameras(self, cameras: Camera) -> Camera:
        """The same cameras with cam_from_world expressed in the world frame (metric if scaled)."""
        import torch

        # x_world = s R (x_sfm - o). The camera keeps its orientation relative to the scene, so its new
        # rotation is R_c R^T; its centre moves with the points, and its translation follows from it
        # (in world units, so that x_cam is metric when the world is).
        rot = torch.from_numpy(self.world_from_sfm[:3, :3] / self.scale)
        cam_from_world = cameras.cam_from_world.clone().to(torch.float64)
        centres_world = self.apply_to_points(cameras.centers.numpy())
        new_rot = cam_from_world[:, :3, :3] @ rot.T
        cam_from_world[:, :3, :3] = new_rot
        cam_from_world[:, :3, 3] = -(new_rot @ torch.from_numpy(centres_world)[..., None])[..., 0]
        return Camera(cameras.names, cameras.K, cam_from_world, cameras.width, cameras.height, cameras.distortion)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def cameras_up(cameras: Camera) -> np.ndarray:
    """[3] mean image-up direction (-y camera axis) of the cameras, in their world frame, unit."""
    rot = cameras.cam_from_world[:, :3, :3].numpy()
    return _unit(-rot[:, 1, :].sum(axis=0))


def _find_floor(points: np.ndarray, centres: np.ndarray, up_hint: np.ndarray, seed: int):
    """(unit normal pointing to the cameras, offset d with n·x + d = 0, inlier mask) or None."""
    import open3d as o3d

    if len(points) < 30:
        return None
    extent = np.percentile(np.linalg.norm(points - np.median(points, axis=0), axis=1), 90)
    threshold = max(extent * 0.006, 1e-9)
    o3d.utility.random.seed(seed)
    remaining = np.arange(len(points))
    candidates = []
    for _ in range(5):
        if len(remaining) < 30:
            break
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points[remaining]))
        plane, inliers = cloud.segment_plane(threshold, 3, 2000)
        if len(inliers) < 30:
            break
        normal, offset = np.asarray(plane[:3]), float(plane[3])
        norm = np.linalg.norm(normal)
        normal, offset = normal / norm, offset / norm
        side = centres @ normal + offset
        if np.all(side > 0) or np.all(side < 0):
            if side[0] < 0:
                normal, offset = -normal, -offset
            angle = np.degrees(np.arccos(np.clip(normal @ up_hint, -1, 1)))
            if angle < HORIZONTAL_TOLERANCE_DEG:
                mask = np.zeros(len(points), bool)
                mask[remaining[inliers]] = True
                candidates.append((normal, offset, mask))
        remaining = np.delete(remaining, inliers)
    if not candidates:
        return None
    largest = max(c[2].sum() for c in candidates)
    big = [c for c in candidates if c[2].sum() >= 0.3 * largest]
    # The floor is the lowest of the large horizontal planes (table tops and box lids are higher).
    return max(big, key=lambda c: c[1])  # larger offset = farther below the cameras along the normal


def estimate_world_frame(
    production: Camera,
    points: np.ndarray,
    hint: ScaleHint | None = None,
    metric: bool = False,
    seed: int = 0,
) -> WorldFrame:
    """Find gravity, the floor and the scale.

    Args:
        production: the production cameras (V >= 1) in the SfM frame.
        points: [N, 3] sparse points in the SfM frame.
        hint: what the user knows about scale.
        metric: the SfM frame is already metric (poses came from a metric calibration).
        seed: RANSAC seed.

    Raises:
        InputError: a hint names an unknown camera, or asks for camera heights without a floor.
    """
    hint = hint or ScaleHint()
    centres = production.centers.numpy()
    up_hint = cameras_up(production)
    floor = _find_floor(points, centres, up_hint, seed)
    if floor is not None:
        up, offset, mask = floor
        up_source, floor_points = "floor_plane", int(mask.sum())
        origin = points[mask].mean(axis=0)
        origin = origin - (origin @ up + offset) * up  # onto the plane
    else:
        up, up_source, floor_points = up_hint, "camera_up", 0
        heights = points @ up
        origin = np.median(points, axis=0) + (np.percentile(heights, 2) - np.median(points, axis=0) @ up) * up
    forward = production.cam_from_world[0, 2, :3].numpy()
    y_axis = forward - (forward @ up) * up
    if np.linalg.norm(y_axis) < 1e-6:  # the first camera looks straight down
        y_axis = -production.cam_from_world[0, 1, :3].numpy()
        y_axis = y_axis - (y_axis @ up) * up
    y_axis = _unit(y_axis)
    x_axis = np.cross(y_axis, up)
    rotation = np.stack([x_axis, y_axis, up])
    heights = (centres - origin) @ up

    scale, source = 1.0, "calibration" if metric else "arbitrary"
    if hint.known_distance is not None:
        a, b, metres = hint.known_distance
        ia, ib = production.index(a), production.index(b)
        scale, source = metres / float(np.linalg.norm(centres[ia] - centres[ib])), "known_distance"
    elif hint.camera_heights:
        if floor is None:
            raise InputError("--camera-height needs the floor, and no floor plane was found in the sparse "
                             "points. Give --known-distance between two cameras instead.")
        ratios = []
        for name, metres in hint.camera_heights.items():
            measured = float(heights.mean()) if name == "*" else float(heights[production.index(name)])
            ratios.append(metres / measured)
        scale, source = float(np.mean(ratios)), "camera_height"
    elif not metric and floor is not None and heights.mean() > 0:
        scale = ASSUMED_CAMERA_HEIGHT_M / float(heights.mean())

    world_from_sfm = np.eye(4)
    world_from_sfm[:3, :3] = scale * rotation
    world_from_sfm[:3, 3] = -scale * rotation @ origin
    angle = float(np.degrees(np.arccos(np.clip(up @ up_hint, -1, 1))))
    log.info("world frame: up from %s (%d floor points, %.1f deg from the cameras' up), scale %s",
             up_source, floor_points, angle, source)
    return WorldFrame(world_from_sfm, scale, source, up_source, floor_points, angle)
