"""Camera exports: COLMAP text models and nerfstudio transforms.json, round trips and reference checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import rotation_from_quat_wxyz
from reshoot.geometry.errors import FormatError, InputError
from reshoot.geometry.exports import (
    read_colmap_model,
    read_nerfstudio_transforms,
    write_colmap_text,
    write_nerfstudio_transforms,
)

pycolmap = pytest.importorskip("pycolmap")

F64 = torch.float64
SIZES = [(640, 480), (1920, 1080), (97, 61), (3000, 4000)]
# One entry per camera: none, OpenCV without k3 (COLMAP OPENCV), with k3 (FULL_OPENCV), k1 only.
DISTORTIONS = [
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [-0.21, 0.05, 0.0012, -0.0008, 0.0],
    [0.11, -0.23, -0.0005, 0.0011, 0.07],
    [-0.05, 0.0, 0.0, 0.0, 0.0],
]


def random_cameras(distortion: bool, seed: int = 0) -> Camera:
    """Four cameras of the sizes in SIZES with random poses and intrinsics; optionally distorted."""
    g = torch.Generator().manual_seed(seed)
    v = len(SIZES)
    rot = rotation_from_quat_wxyz(torch.randn(v, 4, generator=g, dtype=F64))
    cam_from_world = torch.eye(4, dtype=F64).repeat(v, 1, 1)
    cam_from_world[:, :3, :3] = rot
    cam_from_world[:, :3, 3] = torch.randn(v, 3, generator=g, dtype=F64) * 3
    w = torch.tensor([s[0] for s in SIZES], dtype=F64)
    h = torch.tensor([s[1] for s in SIZES], dtype=F64)
    fx = w * (0.6 + torch.rand(v, generator=g, dtype=F64))
    K = torch.zeros(v, 3, 3, dtype=F64)
    K[:, 0, 0] = fx
    K[:, 1, 1] = fx * (0.95 + 0.1 * torch.rand(v, generator=g, dtype=F64))
    K[:, 0, 2] = (w - 1) / 2 + torch.randn(v, generator=g, dtype=F64) * 5
    K[:, 1, 2] = (h - 1) / 2 + torch.randn(v, generator=g, dtype=F64) * 5
    K[:, 2, 2] = 1
    dist = DISTORTIONS if distortion else None
    names = [f"cam_{i}" for i in range(v)]
    return Camera.create(names, K, cam_from_world, w.long(), h.long(), dist)


def assert_same_cameras(a: Camera, b: Camera, tol: float = 1e-9) -> None:
    assert a.names == b.names
    assert torch.equal(a.width, b.width) and torch.equal(a.height, b.height)
    assert (a.K - b.K).abs().max() < tol
    assert (a.distortion - b.distortion).abs().max() < tol
    assert (a.cam_from_world - b.cam_from_world).abs().max() < tol


def points_in_front(camera: Camera, n: int = 64, seed: int = 1) -> torch.Tensor:
    """[n, 3] world points inside the (central) view of a single camera, 1 to 5 units deep."""
    g = torch.Generator().manual_seed(seed)
    z = 1 + 4 * torch.rand(n, generator=g, dtype=F64)
    xy = (torch.rand(n, 2, generator=g, dtype=F64) - 0.5) * 0.6 * z[:, None]
    pts_cam = torch.cat([xy, z[:, None]], dim=1)
    world_from_cam = camera.world_from_cam[0]
    return pts_cam @ world_from_cam[:3, :3].T + world_from_cam[:3, 3]


# ------------------------------------------------------------------------------------------------
# COLMAP


@pytest.mark.parametrize("distortion", [False, True])
def test_colmap_round_trip(tmp_path: Path, distortion: bool) -> None:
    cameras = random_cameras(distortion, seed=int(distortion))
    write_colmap_text(tmp_path / "model", cameras)
    assert {"cameras.txt", "images.txt", "points3D.txt"} <= {p.name for p in (tmp_path / "model").iterdir()}
    assert_same_cameras(read_colmap_model(tmp_path / "model"), cameras)
    models = [c.model_name for _, c in sorted(pycolmap.Reconstruction(str(tmp_path / "model")).cameras.items())]
    assert models == (["PINHOLE", "OPENCV", "FULL_OPENCV", "OPENCV"] if distortion else ["PINHOLE"] * 4)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left behind


def test_colmap_image_names_and_points(tmp_path: Path) -> None:
    cameras = random_cameras(False)
    xyz = np.random.default_rng(0).normal(size=(10, 3))
    rgb = np.random.default_rng(1).uniform(size=(10, 3))
    write_colmap_text(tmp_path / "m", cameras, {"cam_1": "images/cam_1.jpg"}, xyz, rgb)
    rec = pycolmap.Reconstruction(str(tmp_path / "m"))
    assert sorted(im.name for im in rec.images.values()) == ["cam_0.png", "cam_2.png", "cam_3.png", "images/cam_1.jpg"]
    points = sorted(rec.points3D.values(), key=lambda p: tuple(p.xyz))
    order = np.lexsort(xyz.T[::-1])
    np.testing.assert_allclose(np.stack([p.xyz for p in points]), xyz[order], atol=1e-12)
    np.testing.assert_array_equal(np.stack([p.color for p in points]), np.round(rgb[order] * 255))
    assert read_colmap_model(tmp_path / "m").names == cameras.names  # names are the image-name stems


def test_colmap_observations_are_tracks_pycolmap_reads(tmp_path: Path) -> None:
    cameras = random_cameras(False)
    xyz = np.random.default_rng(0).normal(size=(6, 3)) * 0.3
    for point, camera in ((0, 0), (1, 0), (3, 2)):  # some in front of the cameras that see them
        xyz[point] += (cameras.centers[camera] + 2 * cameras.cam_from_world[camera, 2, :3]).numpy()
    pixels = cameras.project(torch.from_numpy(xyz)).pixels.numpy()  # [V, N, 2], OpenCV pixels
    seen = {"cam_0": [0, 1, 2, 5], "cam_2": [2, 3, 5]}
    observations = {n: [(p, *pixels[cameras.index(n), p]) for p in points] for n, points in seen.items()}
    write_colmap_text(tmp_path / "m", cameras, None, xyz, observations=observations)
    rec = pycolmap.Reconstruction(str(tmp_path / "m"))
    by_name = {im.name: im for im in rec.images.values()}
    assert len(by_name["cam_1.png"].points2D) == 0
    for name, points in seen.items():
        image = by_name[f"{name}.png"]
        assert len(image.points2D) == len(points) and all(p.has_point3D() for p in image.points2D)
        in_front = 0
        for p, k in zip(image.points2D, points):  # COLMAP's pixel centres: ours + 0.5
            np.testing.assert_allclose(p.xy, pixels[cameras.index(name), k] + 0.5, atol=1e-9)
            projected = image.project_point(rec.point3D(p.point3D_id).xyz)  # None behind the camera
            if projected is not None:
                np.testing.assert_allclose(projected, p.xy, atol=1e-6)  # the point it names projects there
                in_front += 1
        assert in_front > 0
    lengths = sorted(p.track.length() for p in rec.points3D.values())
    assert lengths == [0, 1, 1, 1, 2, 2]  # point 4 unseen; 0, 1 and 3 in one image; 2 and 5 in two
    with pytest.raises(InputError, match="point indices"):
        write_colmap_text(tmp_path / "n", cameras, None, xyz, observations={"cam_0": [(6, 1.0, 1.0)]})
    with pytest.raises(InputError, match="unknown cameras"):
        write_colmap_text(tmp_path / "n", cameras, None, xyz, observations={"nobody": []})
    assert not (tmp_path / "n").exists()


@pytest.mark.parametrize("distortion", [False, True])
def test_colmap_projection_matches_pycolmap(tmp_path: Path, distortion: bool) -> None:
    """COLMAP's own projection of the exported model equals Camera.project after the 0.5 px shift."""
    cameras = random_cameras(distortion, seed=3)
    write_colmap_text(tmp_path / "m", cameras)
    rec = pycolmap.Reconstruction(str(tmp_path / "m"))
    for i in range(len(cameras)):
        camera = cameras.select(i)
        image = rec.find_image_with_name(f"{camera.names[0]}.png")
        pts = points_in_front(camera, seed=i)
        pts_cam = np.stack([image.cam_from_world() * p for p in pts.numpy()])
        colmap_px = rec.cameras[image.camera_id].img_from_cam(pts_cam) - 0.5
        ours = camera.project(pts).pixels[0].numpy()
        np.testing.assert_allclose(ours, colmap_px, atol=1e-6, rtol=0)


def test_colmap_reads_other_models(tmp_path: Path) -> None:
    """SIMPLE_RADIAL (COLMAP's default model) is read as OpenCV k1; principal point shifted back."""
    rec = pycolmap.Reconstruction()
    cam = pycolmap.Camera.create_from_model_name(1, "SIMPLE_RADIAL", 700.0, 800, 600)
    cam.params = [700.0, 400.0, 300.0, -0.04]
    rec.add_camera_with_trivial_rig(cam)
    image = pycolmap.Image(name="images/x.png", camera_id=1, image_id=1)
    rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d(np.eye(4)[:3]))
    (tmp_path / "m").mkdir()
    rec.write_text(str(tmp_path / "m"))
    got = read_colmap_model(tmp_path / "m")
    assert got.names == ("x",)
    assert got.K[0].tolist() == [[700.0, 0.0, 399.5], [0.0, 700.0, 299.5], [0.0, 0.0, 1.0]]
    assert got.distortion[0].tolist() == [-0.04, 0.0, 0.0, 0.0, 0.0]


def test_colmap_bad_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty.*no COLMAP model here"):
        read_colmap_model(tmp_path / "empty")
    write_colmap_text(tmp_path / "m", random_cameras(False))
    (tmp_path / "m" / "cameras.txt").write_text("1 PINHOLE 640 garbage\n")
    with pytest.raises(InputError, match=str(tmp_path / "m")):
        read_colmap_model(tmp_path / "m")

    rec = pycolmap.Reconstruction()
    rec.add_camera_with_trivial_rig(pycolmap.Camera.create_from_model_name(1, "OPENCV_FISHEYE", 500.0, 64, 48))
    rec.add_image_with_trivial_frame(pycolmap.Image(name="f.png", camera_id=1, image_id=1), pycolmap.Rigid3d())
    (tmp_path / "fisheye").mkdir()
    rec.write_text(str(tmp_path / "fisheye"))
    with pytest.raises(FormatError, match=r"fisheye.*cameras\.txt.*OPENCV_FISHEYE"):
        read_colmap_model(tmp_path / "fisheye")


def test_colmap_refusals_leave_nothing(tmp_path: Path) -> None:
    cameras = random_cameras(False)
    skewed = Camera.create(
        cameras.names,
        cameras.K.clone().index_put_(
            (torch.tensor([1]), torch.tensor([0]), torch.tensor([1])), torch.tensor([2.0], dtype=F64)
        ),
        cameras.cam_from_world,
        cameras.width,
        cameras.height,
    )
    with pytest.raises(InputError, match="cam_1.*skew"):
        write_colmap_text(tmp_path / "a", skewed)
    with pytest.raises(InputError, match="spaces"):
        write_colmap_text(tmp_path / "a", cameras, {"cam_0": "my image.png"})
    with pytest.raises(InputError, match="nope"):
        write_colmap_text(tmp_path / "a", cameras, {"nope": "x.png"})
    with pytest.raises(InputError, match="points_xyz"):
        write_colmap_text(tmp_path / "a", cameras, points_xyz=np.zeros((3, 2)))
    assert list(tmp_path.iterdir()) == []
    write_colmap_text(tmp_path / "a", cameras)
    with pytest.raises(InputError, match="not empty"):
        write_colmap_text(tmp_path / "a", cameras.select([0]))
    write_colmap_text(tmp_path / "a", cameras.select([0]), overwrite=True)
    assert read_colmap_model(tmp_path / "a").names == ("cam_0",)


# ------------------------------------------------------------------------------------------------
# nerfstudio


def image_paths_for(cameras: Camera) -> dict[str, str]:
    return {n: f"images/{n}.png" for n in cameras.names}


@pytest.mark.parametrize("distortion", [False, True])
def test_nerfstudio_round_trip(tmp_path: Path, distortion: bool) -> None:
    cameras = random_cameras(distortion, seed=5 + int(distortion))
    paths = image_paths_for(cameras)
    write_nerfstudio_transforms(tmp_path / "transforms.json", cameras, paths)
    got, got_paths = read_nerfstudio_transforms(tmp_path / "transforms.json")
    assert_same_cameras(got, cameras)
    assert got_paths == paths
    assert [p.name for p in tmp_path.iterdir()] == ["transforms.json"]


def test_nerfstudio_file_layout(tmp_path: Path) -> None:
    """The keys nerfstudio's dataparser reads, with its pixel centres and OpenGL camera-to-world."""
    cameras = random_cameras(True)
    write_nerfstudio_transforms(tmp_path / "t.json", cameras, image_paths_for(cameras))
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["camera_model"] == "OPENCV" and "applied_transform" not in doc
    frame = doc["frames"][1]
    assert frame["file_path"] == "images/cam_1.png"
    assert frame["cx"] == pytest.approx(float(cameras.K[1, 0, 2]) + 0.5, abs=1e-12)
    assert frame["cy"] == pytest.approx(float(cameras.K[1, 1, 2]) + 0.5, abs=1e-12)
    assert (frame["w"], frame["h"]) == (1920, 1080)
    assert [frame[k] for k in ("k1", "k2", "p1", "p2", "k3")] == DISTORTIONS[1]
    c2w = np.array(frame["transform_matrix"])
    np.testing.assert_allclose(c2w[:3, 3], cameras.centers[1].numpy(), atol=1e-12)
    # OpenGL: the camera looks down its -z axis, which is reshoot's +z (forward) axis.
    np.testing.assert_allclose(-c2w[:3, 2], cameras.cam_from_world[1, 2, :3].numpy(), atol=1e-12)


def test_nerfstudio_rays_match_pixel_directions(tmp_path: Path) -> None:
    """Rays built as nerfstudio builds them (Cameras.generate_rays) equal Camera.pixel_directions."""
    cameras = random_cameras(False, seed=7)
    write_nerfstudio_transforms(tmp_path / "t.json", cameras, image_paths_for(cameras))
    doc = json.loads((tmp_path / "t.json").read_text())
    for v, frame in enumerate(doc["frames"]):
        c2w = np.array(frame["transform_matrix"])
        w, h = frame["w"], frame["h"]
        rows, cols = np.meshgrid(np.linspace(0, h - 1, 7).round(), np.linspace(0, w - 1, 9).round(), indexing="ij")
        i, j = rows.ravel(), cols.ravel()
        # nerfstudio: image_coords = (i, j) + 0.5 (pixel_offset), then ((x - cx)/fx, -(y - cy)/fy, -1).
        x, y = j + 0.5, i + 0.5
        dirs_gl = np.stack([(x - frame["cx"]) / frame["fl_x"], -(y - frame["cy"]) / frame["fl_y"], -np.ones_like(x)], 1)
        ns_dirs = dirs_gl @ c2w[:3, :3].T
        ns_dirs /= np.linalg.norm(ns_dirs, axis=1, keepdims=True)
        camera = cameras.select(v)
        ours = camera.pixel_directions(torch.from_numpy(np.stack([j, i], 1))[None])[0]
        ours = (ours / ours.norm(dim=-1, keepdim=True)).numpy()
        np.testing.assert_allclose(ours, ns_dirs, atol=1e-9, rtol=0)
        np.testing.assert_allclose(camera.centers[0].numpy(), c2w[:3, 3], atol=1e-9)


def test_nerfstudio_reads_shared_intrinsics(tmp_path: Path) -> None:
    """Top-level intrinsics apply to every frame; `distortion_params` is k1 k2 k3 k4 p1 p2."""
    c2w = np.eye(4)
    c2w[:3, 3] = [1.0, 2.0, 3.0]
    doc = {
        "camera_model": "OPENCV",
        "fl_x": 500.0,
        "fl_y": 510.0,
        "cx": 320.0,
        "cy": 240.0,
        "w": 640,
        "h": 480,
        "distortion_params": [0.1, 0.01, 0.001, 0.0, 0.002, 0.003],
        "applied_transform": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]],
        "frames": [
            {"file_path": "images/frame_00001.png", "transform_matrix": c2w[:3].tolist()},
            {"file_path": "images/frame_00002.png", "transform_matrix": c2w.tolist(), "fl_x": 1.0},
        ],
    }
    (tmp_path / "transforms.json").write_text(json.dumps(doc))
    cameras, paths = read_nerfstudio_transforms(tmp_path / "transforms.json")
    assert cameras.names == ("frame_00001", "frame_00002")
    assert paths["frame_00002"] == "images/frame_00002.png"
    assert cameras.K[1].tolist() == [[500.0, 0.0, 319.5], [0.0, 510.0, 239.5], [0.0, 0.0, 1.0]]
    assert cameras.distortion[0].tolist() == [0.1, 0.01, 0.002, 0.003, 0.001]
    # OpenGL identity camera-to-world = OpenCV camera flipped in y and z.
    assert cameras.cam_from_world[0, :3, :3].tolist() == [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]
    np.testing.assert_allclose(cameras.centers[0].numpy(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "content, error, message",
    [
        ("{not json", InputError, "not valid JSON"),
        ('{"frames": []}', FormatError, "frames"),
        ('{"camera_model": "OPENCV_FISHEYE", "frames": [{"file_path": "a.png"}]}', FormatError, "OPENCV_FISHEYE"),
        ('{"frames": [{"file_path": "a.png", "fl_y": 1, "cx": 1, "cy": 1, "w": 4, "h": 4}]}', FormatError, "fl_x"),
        (
            '{"fl_x": 1, "fl_y": 1, "cx": 1, "cy": 1, "w": 4.5, "h": 4, "frames": [{"file_path": "a.png"}]}',
            FormatError,
            '"w" must be an integer',
        ),
        (
            '{"fl_x": 1, "fl_y": 1, "cx": 1, "cy": 1, "w": 4, "h": 4, "frames": [{"file_path": "a.png", '
            '"transform_matrix": [[1, 0], [0, 1]]}]}',
            FormatError,
            "transform_matrix",
        ),
        (
            '{"fl_x": 1, "fl_y": 1, "cx": 1, "cy": 1, "w": 4, "h": 4, "frames": [{"file_path": "a.png", '
            '"transform_matrix": [[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]}]}',
            FormatError,
            "not a rotation",
        ),
        (
            '{"fl_x": 1, "fl_y": 1, "cx": 1, "cy": 1, "w": 4, "h": 4, "k1": 0, "k4": 0.1, '
            '"frames": [{"file_path": "a.png", "transform_matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]}]}',
            FormatError,
            "k4",
        ),
    ],
)
def test_nerfstudio_bad_input(tmp_path: Path, content: str, error: type, message: str) -> None:
    path = tmp_path / "transforms.json"
    path.write_text(content)
    with pytest.raises(error, match=message) as info:
        read_nerfstudio_transforms(path)
    assert str(path) in str(info.value)


def test_nerfstudio_missing_file_and_refusals(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_nerfstudio_transforms(tmp_path / "transforms.json")
    cameras = random_cameras(False)
    with pytest.raises(InputError, match=r"missing \['cam_3'\]"):
        write_nerfstudio_transforms(tmp_path / "t.json", cameras, {n: "x.png" for n in cameras.names[:3]})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# Nuke .chan and USD


def _moving_path(T: int = 7, seed: int = 1) -> tuple[list[int], torch.Tensor]:
    """A camera circling and rising, with one straight-down pose (ZXY's gimbal lock) in the middle."""
    from reshoot.geometry.conventions import look_at, look_down

    poses = [
        look_at([4 * np.cos(a), 4 * np.sin(a), 1 + 0.3 * i], [0, 0, 1]) for i, a in enumerate(np.linspace(0, 2, T))
    ]
    poses[T // 2] = look_down([0.3, -0.2, 7.0], image_up=[np.cos(seed), np.sin(seed), 0])
    return list(range(100, 100 + T)), torch.stack(poses)


def test_nuke_chan_round_trips_poses_to_1e6_and_gives_the_vertical_field_of_view(tmp_path: Path):
    from reshoot.geometry.exports import read_nuke_chan, write_nuke_chan

    frames, poses = _moving_path()
    K = torch.tensor([[700.0, 0, 319.5], [0, 700.0, 179.5], [0, 0, 1]], dtype=F64)
    write_nuke_chan(tmp_path / "shot.chan", frames, poses, K, 360)
    read_frames, read_poses, vfov = read_nuke_chan(tmp_path / "shot.chan")
    assert read_frames == frames
    assert (read_poses - poses).abs().max() < 1e-6
    assert vfov == pytest.approx(np.degrees(2 * np.arctan(180 / 700)), abs=1e-8)
    # Nuke's world is y-up: a camera 1.3 m above our floor has translate.y = 1.3.
    first = [float(v) for v in (tmp_path / "shot.chan").read_text().splitlines()[0].split()]
    centre = torch.linalg.inv(poses[0])[:3, 3]
    assert first[1:4] == pytest.approx([float(centre[0]), float(centre[2]), -float(centre[1])], abs=1e-9)
    (tmp_path / "bad.chan").write_text("1 2 3\n")
    with pytest.raises(InputError, match="frame tx ty tz rx ry rz"):
        read_nuke_chan(tmp_path / "bad.chan")


def test_usd_camera_round_trips_and_projects_like_pxr(tmp_path: Path):
    from pxr import Gf, Usd, UsdGeom

    from reshoot.geometry.cameras_io import CameraPath
    from reshoot.geometry.exports import read_usd_cameras, write_usd_cameras

    frames, poses = _moving_path()
    K = torch.tensor(
        [[[640.0, 0, 300.2], [0, 652.0, 190.7], [0, 0, 1]], [[500.0, 0, 319.5], [0, 500, 239.5], [0, 0, 1]]], dtype=F64
    )
    cameras = Camera.create(["shot", "witness"], K, poses[:2], [640, 640], [360, 480])
    write_usd_cameras(tmp_path / "cams.usda", cameras, {"shot": CameraPath(torch.tensor(frames), poses)}, fps=25)
    read, moving = read_usd_cameras(tmp_path / "cams.usda")
    assert list(read.names) == ["shot", "witness"]
    assert moving["shot"][0] == frames and (moving["shot"][1] - poses).abs().max() < 1e-6
    assert "witness" not in moving and (read.cam_from_world[1] - poses[1]).abs().max() < 1e-6
    assert (read.K - K).abs().max() < 1e-3  # USD lens attributes are float32

    # Reference: pxr's own camera model projects world points where our K and pose do.
    stage = Usd.Stage.Open(str(tmp_path / "cams.usda"))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.z
    usd_camera = UsdGeom.Camera(stage.GetPrimAtPath("/cameras/shot"))
    points = torch.tensor([[0.3, -0.2, 1.1], [-0.5, 0.4, 0.2], [0.1, 0.1, 1.8]], dtype=F64)
    for i in (0, 3, 6):
        gf = usd_camera.GetCamera(Usd.TimeCode(frames[i]))
        frustum = gf.frustum
        to_ndc = frustum.ComputeViewMatrix() * frustum.ComputeProjectionMatrix()
        ours = Camera.create(["c"], K[:1], poses[i : i + 1], [640], [360]).project(points.to(F64))
        for p, uv in zip(points.tolist(), ours.pixels[0].tolist()):
            ndc = to_ndc.Transform(Gf.Vec3d(*p))
            u = (ndc[0] + 1) / 2 * 640 - 0.5
            v = (1 - ndc[1]) / 2 * 360 - 0.5
            assert (u, v) == pytest.approx(tuple(uv), abs=2e-3)
            # The convention alone (our projection of the lens as stored, float32 attributes and all): 1e-6 px.
            stored = Camera.create(["c"], read.K[:1], poses[i : i + 1], [640], [360]).project(points.to(F64))
            assert (u, v) == pytest.approx(tuple(stored.pixels[0, points.tolist().index(p)].tolist()), abs=1e-6)


def test_usd_stage_validates_and_its_lens_reads_in_millimetres(tmp_path: Path):
    """An independent reader's view: pxr's validators, the lens in millimetres as USD's "Lens Measurement
    Units" define it (tenths of a scene unit), and a clipping range that holds the scene."""
    from pxr import Sdf, Usd, UsdGeom, UsdValidation

    from reshoot.geometry.exports import write_usd_cameras

    frames, poses = _moving_path()
    K = torch.tensor([[[700.0, 0, 319.5], [0, 700.0, 179.5], [0, 0, 1]]], dtype=F64)
    cameras = Camera.create(["shot"], K, poses[:1], [640], [360])
    centre = torch.linalg.inv(poses[0])[:3, 3].numpy()
    forward = poses[0, 2, :3].numpy()
    points = centre + np.outer([2.0, 3.0, 9.0], forward)  # 2, 3 and 9 m in front of the first pose
    write_usd_cameras(tmp_path / "cams.usda", cameras, fps=24, points=points)
    stage = Usd.Stage.Open(str(tmp_path / "cams.usda"))
    validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
    errors = UsdValidation.ValidationContext(validators).Validate(stage)
    assert [e.GetMessage() for e in errors if e.GetType() == UsdValidation.ValidationErrorType.Error] == []
    assert stage.GetDefaultPrim().GetPath() == Sdf.Path("/cameras")
    camera = UsdGeom.Camera(stage.GetPrimAtPath("/cameras/shot"))
    tenth_of_unit_mm = UsdGeom.GetStageMetersPerUnit(stage) * 1000 / 10
    assert camera.GetFocalLengthAttr().Get() * tenth_of_unit_mm == pytest.approx(700 * 36 / 640, rel=1e-6)
    assert camera.GetHorizontalApertureAttr().Get() * tenth_of_unit_mm == pytest.approx(36.0, rel=1e-6)
    near, far = camera.GetClippingRangeAttr().Get()
    assert near == pytest.approx(0.2, rel=0.05) and far == pytest.approx(18.0, rel=1e-4)
    # Referencing the file without a prim path works (it needs the defaultPrim).
    shot = Usd.Stage.CreateInMemory()
    shot.DefinePrim("/rig").GetReferences().AddReference(str(tmp_path / "cams.usda"))
    assert UsdGeom.Camera(shot.GetPrimAtPath("/rig/shot"))


def test_chan_refuses_what_it_cannot_carry_unless_forced():
    from reshoot.export import _chan_warnings
    from reshoot.geometry.exports import chan_limitations

    _, poses = _moving_path()
    K = torch.tensor(
        [
            [[600.0, 0, 319.5], [0, 600.0, 179.5], [0, 0, 1]],  # centred, square: a .chan holds it
            [[600.0, 0, 347.0], [0, 600.0, 179.5], [0, 0, 1]],  # principal point 27.5 px right
            [[600.0, 0, 319.5], [0, 612.0, 179.5], [0, 0, 1]],  # pixels 2 % taller than wide
            [[600.0, 0, 319.5], [0, 600.0, 179.5], [0, 0, 1]],
        ],
        dtype=F64,
    )
    distortion = torch.zeros(4, 5, dtype=F64)
    distortion[3, 0] = -0.05  # barrel: the corners move by several pixels
    cameras = Camera.create(["plain", "shifted", "tall", "barrel"], K, poses[:4], [640] * 4, [360] * 4, distortion)
    found = chan_limitations(cameras)
    assert set(found) == {"shifted", "tall", "barrel"}
    assert set(found["shifted"]) == {"principal_point"} and "+27.5" in found["shifted"]["principal_point"]
    assert set(found["tall"]) == {"pixel_aspect"} and set(found["barrel"]) == {"distortion"}
    with pytest.raises(InputError, match="shifted.chan: its principal point") as refused:
        _chan_warnings(cameras, force=False)
    assert "tall.chan" in str(refused.value) and "barrel" not in str(refused.value) and "--force" in str(refused.value)
    forced = _chan_warnings(cameras, force=True)
    assert [w.split(".chan")[0] for w in forced] == ["shifted", "tall", "barrel"]
    assert _chan_warnings(cameras.select(["plain", "barrel"]), force=False) == [forced[2]]  # distortion: a warning


def _bilinear(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample [H, W, C] at [N, 2] pixel positions (x, y), bilinearly (what Nuke's STMap filter does)."""
    x0, y0 = np.floor(xy[:, 0]).astype(int), np.floor(xy[:, 1]).astype(int)
    fx, fy = (xy[:, 0] - x0)[:, None], (xy[:, 1] - y0)[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


class TestStmap:
    def test_distort_then_undistort_through_the_maps_returns_the_point(self, tmp_path: Path):
        import OpenEXR

        from reshoot.geometry.stmap import st_to_pixels, write_stmaps

        K = torch.tensor([[[420.0, 0, 163.0], [0, 418.0, 88.5], [0, 0, 1]]] * 2, dtype=F64)
        distortion = torch.tensor([[-0.28, 0.09, 0.001, -0.0005, 0.0], [0.0] * 5], dtype=F64)
        poses = torch.eye(4, dtype=F64).repeat(2, 1, 1)
        cameras = Camera.create(["lens", "pinhole"], K, poses, [320, 320], [180, 180], distortion)
        written = write_stmaps(tmp_path, cameras)
        assert sorted(p.name for p in written) == ["lens_distort.exr", "lens_undistort.exr"]
        maps = {}
        for kind in ("undistort", "distort"):  # read by OpenEXR itself: R, G float32, B zero
            with OpenEXR.File(str(tmp_path / f"lens_{kind}.exr")) as exr:
                rgb = np.array(exr.channels()["RGB"].pixels)
            assert rgb.dtype == np.float32 and rgb.shape == (180, 320, 3) and not rgb[..., 2].any()
            maps[kind] = rgb[..., :2].astype(np.float64)
        # Nuke's convention: the pinhole image's pixel (x, y) is at s = (x + 0.5) / W, t = 1 - (y + 0.5) / H.
        camera = cameras.select(["lens"])
        rng = np.random.default_rng(0)
        points = np.stack([rng.uniform(40, 280, 200), rng.uniform(30, 150, 200)], -1)  # in the pinhole image
        on_plate = camera.distort_pixels(torch.from_numpy(points)[None])[0].numpy()  # where the lens puts them
        # distort map: the plate's pixel samples the pinhole image where its ray lands without the lens
        back = st_to_pixels(_bilinear(maps["distort"], on_plate), 320, 180)
        assert np.abs(back - points).max() < 0.05
        # undistort map: the pinhole pixel samples the plate where the lens put it
        forward = st_to_pixels(_bilinear(maps["undistort"], points), 320, 180)
        assert np.abs(forward - on_plate).max() < 0.05
        assert np.abs(on_plate - points).max() > 2  # the lens moves points by pixels: the test could fail

    def test_reader_refuses_what_is_not_a_map(self, tmp_path: Path):
        from reshoot.conditioning import write_exr
        from reshoot.geometry.stmap import read_stmap

        write_exr(tmp_path / "depth.exr", "Z", np.zeros((4, 6), np.float32))
        with pytest.raises(FormatError, match="needs R and G"):
            read_stmap(tmp_path / "depth.exr")
        with pytest.raises(InputError, match="does not exist"):
            read_stmap(tmp_path / "none.exr")
