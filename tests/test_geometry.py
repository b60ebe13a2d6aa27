"""The Camera type, the convention conversions, cameras.json and epipolar distances."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from reshoot.geometry.camera import Camera, invert_rigid, transform_points
from reshoot.geometry.cameras_io import CameraPath, read_cameras_json, write_cameras_json
from reshoot.geometry.conventions import (
    colmap_K_from_opencv,
    focal_px_from_mm,
    look_at,
    look_down,
    opencv_from_opengl,
    opencv_K_from_colmap,
    opengl_from_opencv,
    quat_wxyz_from_rotation,
    rotation_from_quat_wxyz,
)
from reshoot.geometry.epipolar import epipolar_distances, fundamental_matrix, undistorted_pixels
from reshoot.geometry.errors import FormatError, InputError

F64 = torch.float64


def random_rotations(n: int, seed: int = 0) -> torch.Tensor:
    """[n, 3, 3] uniformly random rotations."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=F64)
    return rotation_from_quat_wxyz(q)


def rig(distortion: bool = False) -> Camera:
    """Three cameras around the origin looking at it, 640x480; optionally with lens distortion."""
    poses = torch.stack(
        [
            look_at([4.0, 0.0, 1.5], [0.0, 0.0, 0.5]),
            look_at([0.0, -5.0, 2.0], [0.2, 0.0, 0.5]),
            look_down([0.5, 0.5, 6.0]),
        ]
    )
    K = torch.tensor([[500.0, 0.0, 319.5], [0.0, 505.0, 239.5], [0.0, 0.0, 1.0]], dtype=F64).expand(3, 3, 3)
    dist = None
    if distortion:
        dist = [[-0.30, 0.08, 0.001, -0.002, 0.0], [0.1, -0.2, 0.0, 0.0, 0.08], [0.0, 0.0, 0.0, 0.0, 0.0]]
    return Camera.create(["a", "b", "top"], K, poses, [640] * 3, [480] * 3, dist)


def points_in_view(seed: int = 0, n: int = 200) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, generator=g, dtype=F64) - 0.5) * torch.tensor([1.5, 1.5, 1.0], dtype=F64) + torch.tensor(
        [0.0, 0.0, 0.5], dtype=F64
    )


# ------------------------------------------------------------------------------------------------
# camera.py


def test_invert_rigid_and_transform_points():
    a_from_b = torch.eye(4, dtype=F64).repeat(5, 1, 1)
    a_from_b[:, :3, :3] = random_rotations(5)
    a_from_b[:, :3, 3] = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    b_from_a = invert_rigid(a_from_b)
    assert torch.allclose(b_from_a, torch.linalg.inv(a_from_b), atol=1e-12)
    assert torch.allclose(a_from_b @ b_from_a, torch.eye(4, dtype=F64).expand(5, 4, 4), atol=1e-12)
    points = torch.randn(5, 7, 3, dtype=F64)
    back = transform_points(b_from_a, transform_points(a_from_b, points))
    assert torch.allclose(back, points, atol=1e-12)


def test_project_known_values():
    cam = Camera.create(["c"], [[100.0, 0.0, 50.0], [0.0, 120.0, 40.0], [0.0, 0.0, 1.0]], torch.eye(4), [101], [81])
    proj = cam.project(torch.tensor([[0.0, 0.0, 2.0], [1.0, -1.0, 4.0]], dtype=F64))
    assert torch.allclose(proj.pixels[0], torch.tensor([[50.0, 40.0], [75.0, 10.0]], dtype=F64))
    assert torch.allclose(proj.depth[0], torch.tensor([2.0, 4.0], dtype=F64))
    # The principal point of an OpenCV K is the centre of pixel (cx, cy); the camera sits at the origin.
    assert torch.allclose(cam.centers, torch.zeros(1, 3, dtype=F64))


@pytest.mark.parametrize("distortion", [False, True])
def test_project_unproject_round_trip(distortion):
    cams = rig(distortion)
    points = points_in_view()
    proj = cams.project(points)
    assert bool((proj.depth > 0).all())
    inside = (proj.pixels >= 0).all(-1) & (proj.pixels[..., 0] < 640) & (proj.pixels[..., 1] < 480)
    assert inside.float().mean() > 0.9  # the test points are in view
    back = cams.unproject(proj.pixels, proj.depth)
    assert torch.allclose(back, points.expand(3, -1, -1), atol=1e-7)
    # pixel_directions are world rays with camera-frame z = 1.
    dirs = cams.pixel_directions(proj.pixels)
    z = (dirs @ cams.cam_from_world[:, :3, :3].transpose(-1, -2))[..., 2]
    assert torch.allclose(z, torch.ones_like(z), atol=1e-12)


def test_distortion_moves_pixels_as_opencv_does():
    cams = rig(distortion=True).select("a")
    plain = Camera.create(cams.names, cams.K, cams.cam_from_world, cams.width, cams.height)
    points = points_in_view()
    ideal = plain.project(points).pixels[0]
    distorted = cams.project(points).pixels[0]
    # OpenCV's model by hand: barrel k1 < 0 pulls points toward the principal point.
    fx, fy, cx, cy = 500.0, 505.0, 319.5, 239.5
    x, y = (ideal[:, 0] - cx) / fx, (ideal[:, 1] - cy) / fy
    k1, k2, p1, p2, k3 = cams.distortion[0].tolist()
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    assert torch.allclose(distorted, torch.stack([fx * xd + cx, fy * yd + cy], -1), atol=1e-9)
    assert torch.allclose(undistorted_pixels(cams, distorted), ideal, atol=1e-7)


def test_camera_create_validates():
    K = torch.eye(3, dtype=F64)
    with pytest.raises(InputError, match="rotation"):
        Camera.create(["a"], K, torch.diag(torch.tensor([1.0, 1.0, -1.0, 1.0])), [10], [10])
    with pytest.raises(InputError, match="unique"):
        Camera.create(["a", "a"], K.expand(2, 3, 3), torch.eye(4).expand(2, 4, 4), [10, 10], [10, 10])
    with pytest.raises(InputError, match="positive"):
        Camera.create(["a"], K, torch.eye(4), [0], [10])
    with pytest.raises(InputError, match="5-coefficient"):
        Camera.create(["a"], K, torch.eye(4), [10], [10], [[0.1, 0, 0, 0, 0, 0.2]])
    padded = Camera.create(["a"], K, torch.eye(4), [10], [10], [[0.1, 0.2]])
    assert padded.distortion.tolist() == [[0.1, 0.2, 0.0, 0.0, 0.0]]


def test_select_cat_index():
    cams = rig()
    sub = cams.select(["top", 0])
    assert sub.names == ("top", "a")
    assert torch.equal(sub.cam_from_world[1], cams.cam_from_world[0])
    both = Camera.cat([cams.select("a"), cams.select(["b", "top"])])
    assert both.names == cams.names and torch.equal(both.K, cams.K)
    with pytest.raises(InputError, match="'zz'"):
        cams.index("zz")
    assert cams.to(dtype=torch.float32).K.dtype == torch.float32


# ------------------------------------------------------------------------------------------------
# conventions.py


def test_look_at_axes():
    eye, target = torch.tensor([0.0, -5.0, 1.0], dtype=F64), torch.tensor([0.0, 0.0, 1.0], dtype=F64)
    cam_from_world = look_at(eye, target)
    rot = cam_from_world[:3, :3]
    assert torch.allclose(rot @ rot.T, torch.eye(3, dtype=F64), atol=1e-12)
    assert torch.linalg.det(rot).item() == pytest.approx(1.0)
    to_cam = lambda p: transform_points(cam_from_world, torch.as_tensor(p, dtype=F64)[None])[0]  # noqa: E731
    assert torch.allclose(to_cam(eye), torch.zeros(3, dtype=F64), atol=1e-12)
    assert torch.allclose(to_cam(target), torch.tensor([0.0, 0.0, 5.0], dtype=F64), atol=1e-12)  # +z forward
    assert to_cam([1.0, 0.0, 1.0])[0] > 0  # world +x is to the right (camera +x) seen from -y
    assert to_cam([0.0, 0.0, 2.0])[1] < 0  # world up (z) is image up (camera -y)
    with pytest.raises(InputError, match="parallel"):
        look_at([0.0, 0.0, 5.0], [0.0, 0.0, 0.0])
    with pytest.raises(InputError, match="same point"):
        look_at([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])


def test_look_down_axes():
    cam_from_world = look_down([1.0, 2.0, 10.0], image_up=[0.0, 1.0, 0.0])
    assert torch.linalg.det(cam_from_world[:3, :3]).item() == pytest.approx(1.0)
    to_cam = lambda p: transform_points(cam_from_world, torch.as_tensor(p, dtype=F64)[None])[0]  # noqa: E731
    assert torch.allclose(to_cam([1.0, 2.0, 0.0]), torch.tensor([0.0, 0.0, 10.0], dtype=F64), atol=1e-12)
    assert to_cam([1.0, 3.0, 0.0])[1] < 0  # image_up (+y) is toward the top of the image
    assert to_cam([2.0, 2.0, 0.0])[0] > 0  # then +x is to the right (right-handed, seen from above)
    with pytest.raises(InputError):
        look_down([0.0, 0.0, 1.0], image_up=[0.0, 0.0, 1.0])


def test_opengl_opencv_round_trip():
    cams = rig()
    world_from_cam_gl = opengl_from_opencv(cams.cam_from_world)
    assert torch.allclose(opencv_from_opengl(world_from_cam_gl), cams.cam_from_world, atol=1e-12)
    # OpenGL cameras look down their -z axis and sit at the camera centre.
    forward_world = cams.cam_from_world[:, 2, :3]  # OpenCV +z axis in world coordinates
    assert torch.allclose(world_from_cam_gl[:, :3, 2], -forward_world, atol=1e-12)
    assert torch.allclose(world_from_cam_gl[:, :3, 1], -cams.cam_from_world[:, 1, :3], atol=1e-12)  # y up
    assert torch.allclose(world_from_cam_gl[:, :3, 3], cams.centers, atol=1e-12)


def test_colmap_K_round_trip():
    K = rig().K
    colmap = colmap_K_from_opencv(K)
    assert torch.allclose(colmap[:, :2, 2], K[:, :2, 2] + 0.5)
    assert torch.equal(colmap[:, :2, :2], K[:, :2, :2])
    assert torch.allclose(opencv_K_from_colmap(colmap), K)
    assert torch.equal(K[0, 0, 2], torch.tensor(319.5, dtype=F64))  # the input is not modified


def test_focal_px_from_mm():
    assert focal_px_from_mm(50.0, 1920) == pytest.approx(50.0 * 1920 / 36.0)
    assert focal_px_from_mm(18.0, 1000, sensor_width_mm=24.0) == pytest.approx(750.0)


def test_quaternion_wxyz():
    identity = quat_wxyz_from_rotation(torch.eye(3, dtype=F64))
    assert torch.allclose(identity, torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=F64))
    assert torch.allclose(rotation_from_quat_wxyz(torch.tensor([1.0, 0, 0, 0], dtype=F64)), torch.eye(3, dtype=F64))
    # Hamilton, wxyz: (cos 45°, 0, 0, sin 45°) turns x toward y by 90° about z.
    half = math.sqrt(0.5)
    rz = rotation_from_quat_wxyz(torch.tensor([half, 0.0, 0.0, half], dtype=F64))
    assert torch.allclose(rz, torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=F64), atol=1e-12)
    # Composition matches the Hamilton product: q1 * q2 <-> R1 @ R2.
    q1, q2 = torch.tensor([0.9, 0.1, -0.3, 0.2], dtype=F64), torch.tensor([0.5, 0.5, 0.1, -0.4], dtype=F64)
    q1, q2 = q1 / q1.norm(), q2 / q2.norm()
    w1, v1, w2, v2 = q1[0], q1[1:], q2[0], q2[1:]
    product = torch.cat([(w1 * w2 - v1 @ v2)[None], w1 * v2 + w2 * v1 + torch.linalg.cross(v1, v2)])
    assert torch.allclose(
        rotation_from_quat_wxyz(product), rotation_from_quat_wxyz(q1) @ rotation_from_quat_wxyz(q2), atol=1e-12
    )
    # Round trips, w >= 0.
    rotations = random_rotations(50, seed=3)
    quats = quat_wxyz_from_rotation(rotations)
    assert bool((quats[:, 0] >= 0).all())
    assert torch.allclose(quats.norm(dim=-1), torch.ones(50, dtype=F64))
    assert torch.allclose(rotation_from_quat_wxyz(quats), rotations, atol=1e-10)
    unnormalized = quats * 3.0
    assert torch.allclose(quat_wxyz_from_rotation(rotation_from_quat_wxyz(unnormalized)), quats, atol=1e-10)


# ------------------------------------------------------------------------------------------------
# cameras_io.py


def test_cameras_json_round_trip(tmp_path):
    cams = rig(distortion=True)
    path = CameraPath(
        torch.tensor([0, 1, 5]), torch.stack([look_at([4.0, float(i), 1.5], [0.0, 0.0, 0.5]) for i in range(3)])
    )
    write_cameras_json(
        tmp_path / "cameras.json",
        cams,
        paths={"b": path},
        attributes={"a": {"role": "A-cam"}},
        extra={"scale_source": "arbitrary"},
    )
    doc = read_cameras_json(tmp_path / "cameras.json")
    assert doc.cameras.names == cams.names
    for field in ("K", "cam_from_world", "distortion", "width", "height"):
        assert torch.equal(getattr(doc.cameras, field), getattr(cams, field)), field
    assert doc.cameras.K.dtype == F64
    assert torch.equal(doc.paths["b"].frames, path.frames)
    assert torch.equal(doc.paths["b"].cam_from_world, path.cam_from_world)
    assert doc.attributes["a"] == {"role": "A-cam"}
    assert doc.extra == {"scale_source": "arbitrary"}
    raw = json.loads((tmp_path / "cameras.json").read_text())
    assert raw["format"] == "reshoot/cameras" and raw["version"] == 1
    assert raw["cameras"][2]["distortion"] == []  # an ideal lens is written as no coefficients


def _camera_entry(**changes):
    entry = {
        "name": "a",
        "width": 64,
        "height": 48,
        "K": [[50, 0, 31.5], [0, 50, 23.5], [0, 0, 1]],
        "distortion": [],
        "cam_from_world": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize(
    "doc, error, words",
    [
        ({"format": "reshoot/layout", "version": 1, "cameras": []}, FormatError, ["reshoot/cameras"]),
        ({"format": "reshoot/cameras", "version": 7, "cameras": [_camera_entry()]}, FormatError, ["version 7"]),
        ({"format": "reshoot/cameras", "version": 1, "cameras": []}, FormatError, ["non-empty"]),
        ({"format": "reshoot/cameras", "version": 1, "cameras": [_camera_entry(K=None)]}, FormatError, ["'a'", "K"]),
        (
            {"format": "reshoot/cameras", "version": 1, "cameras": [_camera_entry(K=[[1, 2], [3, 4]])]},
            FormatError,
            ["'a'", "3x3"],
        ),
        (
            {"format": "reshoot/cameras", "version": 1, "cameras": [_camera_entry(width=64.5)]},
            FormatError,
            ["'a'", "width"],
        ),
        (
            {"format": "reshoot/cameras", "version": 1, "cameras": [_camera_entry(distortion=[0.1] * 6)]},
            FormatError,
            ["'a'", "distortion"],
        ),
        (
            {"format": "reshoot/cameras", "version": 1, "cameras": [_camera_entry(frames=[])]},
            FormatError,
            ["'a'", "frames"],
        ),
        (
            {
                "format": "reshoot/cameras",
                "version": 1,
                "cameras": [_camera_entry(cam_from_world=[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])],
            },
            InputError,
            ["rotation"],
        ),
        (
            {"format": "reshoot/cameras", "version": 1, "cameras": [_camera_entry(frames=[1, 2])]},
            FormatError,
            ["'a'", "frames"],
        ),
        (
            {"format": "reshoot/cameras", "version": 1, "cameras": [_camera_entry(), _camera_entry()]},
            FormatError,
            ["unique"],
        ),
        ([1, 2, 3], FormatError, ["reshoot/cameras"]),
    ],
)
def test_cameras_json_bad_documents(tmp_path, doc, error, words):
    path = tmp_path / "cameras.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(error) as info:
        read_cameras_json(path)
    assert str(path) in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_cameras_json_unreadable(tmp_path):
    with pytest.raises(InputError, match="missing.json"):
        read_cameras_json(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(InputError, match="broken.json.*not valid JSON"):
        read_cameras_json(tmp_path / "broken.json")


def test_failed_write_leaves_the_old_file(tmp_path):
    cams = rig()
    write_cameras_json(tmp_path / "cameras.json", cams)
    before = (tmp_path / "cameras.json").read_text()
    with pytest.raises(TypeError):
        write_cameras_json(tmp_path / "cameras.json", cams, extra={"bad": object()})
    assert (tmp_path / "cameras.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cameras.json"]


# ------------------------------------------------------------------------------------------------
# epipolar.py


def test_epipolar_distances_of_exact_and_shifted_matches():
    cams = rig(distortion=True)
    points = points_in_view(seed=5)
    pixels = cams.project(points).pixels
    a, b = cams.select("a"), cams.select("b")
    exact = epipolar_distances(a, b, pixels[0], pixels[1])
    assert exact.shape == (len(points),) and exact.max().item() < 1e-6
    # Swapping the views gives the same (symmetric) distances.
    assert torch.allclose(epipolar_distances(b, a, pixels[1], pixels[0]), exact, atol=1e-9)
    # Moving a point along the normal of its epipolar line by 3 px in the undistorted image of b:
    # 3 px in b, about 3 px (scaled by the line geometry) back in a; their mean is reported.
    ideal_b = undistorted_pixels(b, pixels[1])
    F = fundamental_matrix(a, b)
    xa = torch.cat([undistorted_pixels(a, pixels[0]), torch.ones(len(points), 1, dtype=F64)], 1)
    lines = xa @ F.T
    normal = lines[:, :2] / lines[:, :2].norm(dim=1, keepdim=True)
    moved_ideal = ideal_b + 3.0 * normal
    plain_b = Camera.create(b.names, b.K, b.cam_from_world, b.width, b.height)
    d = epipolar_distances(a, plain_b, pixels[0], moved_ideal)
    lines_a = torch.cat([moved_ideal, torch.ones(len(points), 1, dtype=F64)], 1) @ F
    residual = (xa * lines_a).sum(1).abs()
    expected = 0.5 * (3.0 + residual / lines_a[:, :2].norm(dim=1))
    assert torch.allclose(d, expected, atol=1e-6)
    with pytest.raises(ValueError, match="one camera"):
        epipolar_distances(cams, b, pixels[0], pixels[1])


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    from reshoot.geometry.files import atomic_directory, write_text_atomic

    umask = os.umask(0)
    os.umask(umask)
    write_text_atomic(tmp_path / "out.txt", "x")
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    with atomic_directory(tmp_path / "stage") as tmp:
        (tmp / "a.txt").write_text("a")
    assert (tmp_path / "stage").stat().st_mode & 0o777 == 0o777 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "stage"]
