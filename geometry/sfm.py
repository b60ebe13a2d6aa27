"""Structure from motion with pycolmap: features, matches, incremental mapping, triangulation.

Images live under one root folder (`image_root/<name>`); images of one *group* share one camera
(intrinsics): a static production camera's clean plate, or all photos of a survey. Optional masks
(`mask_root/<name>.png`, 0 = ignore) keep features off moving pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .camera import Camera
from .colmap import cameras_from_reconstruction, colmap_camera, colmap_params_string, rigid_from_matrix
from .pycolmap_import import pycolmap

log = logging.getLogger(__name__)


def quiet_colmap(verbose: bool = False) -> None:
    """COLMAP logs every step to stderr through glog; keep only errors unless `verbose`."""
    pycolmap.logging.minloglevel = 0 if verbose else 2
    pycolmap.logging.stderrthreshold = 0 if verbose else 2


@dataclass(frozen=True)
class ImageGroup:
    """Images sharing one camera.

    Attributes:
        name: the group (a production camera's name, or "survey").
        images: image names relative to the image root.
        intrinsics: one camera (V = 1) whose K and distortion are a prior, or None to estimate.
        masked: the images have masks (`mask_root/<image name>.png`).
    """

    name: str
    images: tuple[str, ...]
    intrinsics: Camera | None = None
    masked: bool = False


@dataclass(frozen=True)
class ImageStats:
    """How one image fared.

    Attributes:
        keypoints: SIFT features found.
        verified_matches: geometrically verified matches with all other images, summed.
        registered: whether the model contains the image.
        observations: keypoints that see a triangulated 3D point.
        reprojection_error_px: mean reprojection error of those observations (NaN if none).
    """

    keypoints: int
    verified_matches: int
    registered: bool
    observations: int = 0
    reprojection_error_px: float = float("nan")


@dataclass(frozen=True)
class SfmResult:
    """A sparse model, in the SfM's own (arbitrary) frame.

    Attributes:
        cameras: one per registered image, named by image name.
        points_xyz: [N, 3] float64 3D points.
        points_rgb: [N, 3] uint8 colours.
        points_error_px: [N] mean reprojection error per point.
        stats: per image name (registered or not).
        pair_matches: verified matches per image-name pair (a, b) with a < b.
        reconstruction: the pycolmap model, for writing.
        point_ids: [N] int64, each point's id in `reconstruction` (its tracks are there).
    """

    cameras: Camera
    points_xyz: np.ndarray
    points_rgb: np.ndarray
    points_error_px: np.ndarray
    stats: dict[str, ImageStats]
    pair_matches: dict[tuple[str, str], int] = field(default_factory=dict)
    reconstruction: pycolmap.Reconstruction | None = None
    point_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def observed_in(self, images: set[str]) -> np.ndarray:
        """[N] bool: the points that one of `images` (names) observes."""
        if self.reconstruction is None or not len(self.point_ids):
            return np.zeros(len(self.point_ids), bool)
        ids = {i for i in self.reconstruction.reg_image_ids() if self.reconstruction.image(i).name in images}
        return np.array(
            [
                any(e.image_id in ids for e in self.reconstruction.point3D(int(p)).track.elements)
                for p in self.point_ids
            ],
            bool,
        )

    def observations(self, image: str, keep: np.ndarray | None = None) -> list[tuple[int, float, float]]:
        """(point index, x, y) of the points `image` observes, x, y in OpenCV pixels; with `keep` ([N]
        bool), only those points, indexed among the kept ones."""
        index = {int(p): k for k, p in enumerate(self.point_ids)}
        if keep is not None:
            renumber = np.cumsum(keep) - 1
            index = {p: int(renumber[k]) for p, k in index.items() if keep[k]}
        found = [i for i in self.reconstruction.reg_image_ids() if self.reconstruction.image(i).name == image]
        if not found:
            return []
        points2D = self.reconstruction.image(found[0]).points2D
        return [
            (index[p.point3D_id], float(p.xy[0]) - 0.5, float(p.xy[1]) - 0.5)  # COLMAP pixel centres at +0.5
            for p in points2D
            if p.has_point3D() and p.point3D_id in index
        ]


def build_database(
    database: Path,
    image_root: Path,
    groups: Sequence[ImageGroup],
    mask_root: Path | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    max_features: int = 8192,
    threads: int = -1,
    seed: int = 0,
) -> None:
    """Extract SIFT features (one camera per group) and match image pairs.

    Args:
        pairs: the image-name pairs to match; None matches every pair (the image sets here are small,
            and wide-baseline production cameras must be tried against everything).
        seed: seed of the two-view RANSAC (COLMAP's default, -1, seeds it from the clock, and the pairs
            it verifies then differ from run to run).
    """
    quiet_colmap(log.isEnabledFor(logging.DEBUG))
    pycolmap.set_random_seed(seed)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = threads
    extraction.sift.max_num_features = max_features
    for group in groups:
        reader = pycolmap.ImageReaderOptions()
        if group.masked and mask_root is not None:
            reader.mask_path = str(mask_root)
        if group.intrinsics is not None:
            reader.camera_model, reader.camera_params = colmap_params_string(group.intrinsics)
        else:
            reader.camera_model = "SIMPLE_RADIAL"
        pycolmap.extract_features(
            database,
            image_root,
            image_names=list(group.images),
            camera_mode=pycolmap.CameraMode.SINGLE,
            reader_options=reader,
            extraction_options=extraction,
            device=pycolmap.Device.cpu,
        )
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = threads
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = seed
    if pairs is None:
        pycolmap.match_exhaustive(
            database, matching_options=matching, verification_options=verification, device=pycolmap.Device.cpu
        )
        return
    pair_list = database.with_suffix(".pairs.txt")
    pair_list.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    pycolmap.match_image_pairs(
        database,
        matching_options=matching,
        pairing_options=pycolmap.ImportedPairingOptions(match_list_path=str(pair_list)),
        verification_options=verification,
        device=pycolmap.Device.cpu,
    )


def _database_tables(database: Path) -> tuple[dict[int, str], dict[str, int], dict[tuple[str, str], int]]:
    """(image id → name, keypoints per name, verified matches per name pair)."""
    db = pycolmap.Database.open(database)
    try:
        names = {image.image_id: image.name for image in db.read_all_images()}
        keypoints = {name: db.num_keypoints_for_image(i) for i, name in names.items()}
        pair_ids, inliers = db.read_two_view_geometry_num_inliers()
    finally:
        db.close()
    pairs: dict[tuple[str, str], int] = {}
    for pair_id, count in zip(pair_ids, inliers):
        a, b = (names[i] for i in pycolmap.pair_id_to_image_pair(pair_id))
        pairs[tuple(sorted((a, b)))] = int(count)
    return names, keypoints, pairs


def _result(reconstruction: pycolmap.Reconstruction | None, database: Path) -> SfmResult:
    """Collect a model and the database's statistics into an SfmResult."""
    _, keypoints, pairs = _database_tables(database)
    verified = {name: 0 for name in keypoints}
    for (a, b), count in pairs.items():
        verified[a] += count
        verified[b] += count
    registered_ids = sorted(reconstruction.reg_image_ids()) if reconstruction is not None else []
    rec_names = [reconstruction.image(i).name for i in registered_ids]
    stats = {name: ImageStats(keypoints[name], verified[name], False) for name in keypoints}
    for image_id, name in zip(registered_ids, rec_names):
        image = reconstruction.image(image_id)
        errors = [reconstruction.point3D(p.point3D_id).error for p in image.points2D if p.has_point3D()]
        stats[name] = ImageStats(
            keypoints[name], verified[name], True, len(errors), float(np.mean(errors)) if errors else float("nan")
        )
    if reconstruction is None or not registered_ids:
        empty = np.zeros((0, 3))
        return SfmResult(
            Camera.create([], np.zeros((0, 3, 3)), np.zeros((0, 4, 4)), [], []),
            empty,
            empty.astype(np.uint8),
            np.zeros(0),
            stats,
            pairs,
            reconstruction,
        )
    point_ids = list(reconstruction.points3D.keys())
    points = [reconstruction.point3D(i) for i in point_ids]
    return SfmResult(
        cameras=cameras_from_reconstruction(reconstruction, registered_ids, rec_names),
        points_xyz=np.array([p.xyz for p in points], dtype=np.float64).reshape(-1, 3),
        points_rgb=np.array([p.color for p in points], dtype=np.uint8).reshape(-1, 3),
        points_error_px=np.array([p.error for p in points], dtype=np.float64),
        stats=stats,
        pair_matches=pairs,
        reconstruction=reconstruction,
        point_ids=np.array(point_ids, np.int64),
    )


def incremental_sfm(
    database: Path, image_root: Path, work: Path, refine_intrinsics: bool = True, seed: int = 0, threads: int = 1
) -> SfmResult:
    """pycolmap's incremental mapper; keeps the model that registers the most images.

    Args:
        refine_intrinsics: refine focal lengths, principal points and distortion in bundle
            adjustment; False keeps the priors given at extraction exactly.
        threads: mapper threads. One by default: multi-threaded bundle adjustment is not repeatable
            run to run (camera heights of one take varied by up to 6 cm); with one thread two runs
            agreed to about a millimetre. -1 uses every core.
    """
    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = seed
    options.num_threads = threads
    options.ba_refine_focal_length = refine_intrinsics
    options.ba_refine_extra_params = refine_intrinsics
    options.ba_refine_principal_point = False  # COLMAP's default: poorly constrained, keep the centre
    options.mapper.abs_pose_refine_focal_length = refine_intrinsics
    options.mapper.abs_pose_refine_extra_params = refine_intrinsics
    work.mkdir(parents=True, exist_ok=True)
    models = pycolmap.incremental_mapping(database, image_root, work, options)
    best = max(models.values(), key=lambda r: r.num_reg_images(), default=None)
    return _result(best, database)


def triangulate_with_known_poses(
    database: Path, image_root: Path, work: Path, poses: Mapping[str, tuple[Camera, np.ndarray]]
) -> SfmResult:
    """Triangulate the matched features with fixed, known cameras (no pose estimation).

    Args:
        poses: image name → (its camera, V = 1, with the intrinsics used at extraction;
            its cam_from_world [4, 4]).
    """
    db = pycolmap.Database.open(database)
    try:
        images = {image.name: image for image in db.read_all_images()}
    finally:
        db.close()
    reconstruction = pycolmap.Reconstruction()
    for name, (camera, cam_from_world) in poses.items():
        image = images[name]
        if not reconstruction.exists_camera(image.camera_id):
            reconstruction.add_camera_with_trivial_rig(colmap_camera(camera, 0, camera_id=image.camera_id))
        posed = pycolmap.Image(name=name, camera_id=image.camera_id, image_id=image.image_id)
        reconstruction.add_image_with_trivial_frame(posed, rigid_from_matrix(cam_from_world))
    work.mkdir(parents=True, exist_ok=True)
    model = pycolmap.triangulate_points(
        reconstruction, database, image_root, work, clear_points=True, refine_intrinsics=False
    )
    return _result(model, database)
