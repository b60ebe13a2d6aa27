"""The world frame of a registration (DESIGN.md §3): z up (gravity), floor at z = 0, metres when known.

Up comes from the floor: the plane of the sparse points (open3d RANSAC) farthest below the cameras
among those whose normal agrees with the up direction of the production cameras (cameras on set are
levelled: their right axes are horizontal). Without such a plane, that camera up direction is used. Scale
comes from a user hint: a known distance between two camera centres, or known camera heights above
the floor; else it is arbitrary (recorded as such).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .camera import Camera
from .errors import InputError
from .scale_hint import ScaleHint

log = logging.getLogger(__name__)

HORIZONTAL_TOLERANCE_DEG = 30.0  # a floor's normal within this of the cameras' mean up vector
ASSUMED_CAMERA_HEIGHT_M = 1.6  # only to give "arbitrary" units a familiar size; recorded as arbitrary


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


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation [3, 3] turning unit vector a onto unit vector b."""
    from scipy.spatial.transform import Rotation

    axis = np.cross(a, b)
    sin, cos = np.linalg.norm(axis), float(a @ b)
    if sin < 1e-12:
        if cos > 0:
            return np.eye(3)
        ortho = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        return Rotation.from_rotvec(np.pi * _unit(ortho)).as_matrix()
    return Rotation.from_rotvec(axis / sin * np.arctan2(sin, cos)).as_matrix()


def cameras_up(cameras: Camera) -> np.ndarray:
    """[3] unit up direction from the cameras' orientations.

    Cameras on set are levelled (no roll), so each one's x axis (image right) is horizontal however
    much it pitches: up is the direction orthogonal to all of them, the eigenvector of the smallest
    eigenvalue of sum(x x^T), signed to agree with the cameras' image-up vectors. With every camera
    facing the same way that is ill-posed, and the mean image-up vector is used instead (biased by
    the cameras' common pitch).
    """
    rot = cameras.cam_from_world[:, :3, :3].numpy()
    image_up = _unit(-rot[:, 1, :].sum(axis=0))
    rights = rot[:, 0, :]
    values, vectors = np.linalg.eigh(rights.T @ rights)
    if len(rights) < 2 or values[1] < 0.05 * len(rights):
        return image_up
    up = vectors[:, 0]
    return up if up @ image_up > 0 else -up


MIN_FLOOR_POINTS = 30


def _find_floor(points: np.ndarray, centres: np.ndarray, up_hint: np.ndarray, seed: int):
    """The floor: (unit normal pointing to the cameras, offset d with n·x + d = 0, inlier mask) or None.

    Planes are peeled off the points by RANSAC (open3d) one after another; the floor is the one
    farthest below the cameras among those that are roughly horizontal (normal within 30 degrees of
    the cameras' up), have every camera on one side and enough points. Not the largest: table tops,
    box lids and spurious planes through props can hold more points than a floor seen at a grazing
    angle. The chosen plane is refit by least squares to its inliers.
    """
    import open3d as o3d

    if len(points) < MIN_FLOOR_POINTS:
        return None
    extent = np.percentile(np.linalg.norm(points - np.median(points, axis=0), axis=1), 90)
    threshold = max(extent * 0.006, 1e-9)
    o3d.utility.random.seed(seed)
    remaining = np.arange(len(points))
    best = None
    for _ in range(8):
        if len(remaining) < MIN_FLOOR_POINTS:
            break
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points[remaining]))
        plane, inliers = cloud.segment_plane(threshold, 3, 2000)
        if len(inliers) < MIN_FLOOR_POINTS:
            break
        normal, offset = np.asarray(plane[:3]), float(plane[3])
        norm = np.linalg.norm(normal)
        normal, offset = normal / norm, offset / norm
        side = centres @ normal + offset
        if np.all(side > 0) or np.all(side < 0):
            if side[0] < 0:
                normal, offset, side = -normal, -offset, -side
            angle = np.degrees(np.arccos(np.clip(normal @ up_hint, -1, 1)))
            if angle < HORIZONTAL_TOLERANCE_DEG and (best is None or side.mean() > best[0]):
                best = (side.mean(), remaining[inliers])
        remaining = np.delete(remaining, inliers)
    if best is None:
        return None
    return _refit_plane(points, best[1], centres, threshold)


def _refit_plane(points: np.ndarray, inliers: np.ndarray, centres: np.ndarray, threshold: float):
    """Least-squares plane through the inliers (smallest principal axis), its inliers re-collected."""
    for _ in range(2):
        sample = points[inliers]
        centroid = sample.mean(axis=0)
        normal = np.linalg.svd(sample - centroid, full_matrices=False)[2][-1]
        if (centres[0] - centroid) @ normal < 0:
            normal = -normal
        offset = -float(normal @ centroid)
        inliers = np.flatnonzero(np.abs(points @ normal + offset) < threshold)
    mask = np.zeros(len(points), bool)
    mask[inliers] = True
    return normal, offset, mask


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
        InputError: no points (nothing to find the floor in), a hint names an unknown camera, or asks for
            camera heights without a floor.
    """
    if len(points) == 0:
        raise InputError(
            "no static point of the set was triangulated, so the floor (and with it the world frame) cannot "
            "be found. The cameras see too little of the same set: give a survey of the empty set (reshoot "
            "init --survey; with a calibration, `reshoot register --calibration-mode intrinsics` uses it), "
            "clean plates (--plates), or footage of more resolution or overlap."
        )
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
    if metric:
        # A calibration already has a frame someone chose: change it as little as possible (level
        # it, floor at z = 0) instead of re-orienting it.
        rotation = _rotation_between(up, np.array([0.0, 0.0, 1.0]))
        origin = (origin @ up) * up  # the calibration's origin, dropped onto the floor
    else:
        forward = production.cam_from_world[0, 2, :3].numpy()
        y_axis = forward - (forward @ up) * up
        if np.linalg.norm(y_axis) < 1e-6:  # the first camera looks straight down
            y_axis = -production.cam_from_world[0, 1, :3].numpy()
            y_axis = y_axis - (y_axis @ up) * up
        y_axis = _unit(y_axis)
        rotation = np.stack([np.cross(y_axis, up), y_axis, up])
    heights = (centres - origin) @ up

    scale, source = 1.0, "calibration" if metric else "arbitrary"
    if hint.known_distance is not None:
        a, b, metres = hint.known_distance
        ia, ib = production.index(a), production.index(b)
        scale, source = metres / float(np.linalg.norm(centres[ia] - centres[ib])), "known_distance"
    elif hint.camera_heights:
        if floor is None:
            raise InputError(
                "--camera-height needs the floor, and no floor plane was found in the sparse "
                "points. Give --known-distance between two cameras instead."
            )
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
    log.info(
        "world frame: up from %s (%d floor points, %.1f deg from the cameras' up), scale %s",
        up_source,
        floor_points,
        angle,
        source,
    )
    return WorldFrame(world_from_sfm, scale, source, up_source, floor_points, angle)
