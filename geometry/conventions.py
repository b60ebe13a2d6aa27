"""Conversions between reshoot's conventions (DESIGN.md §3) and other tools' conventions.

reshoot: z-up world, `cam_from_world` with OpenCV camera axes (x right, y down, z forward), OpenCV
pixel centres, wxyz Hamilton quaternions. Every conversion has a round-trip test.
"""

from __future__ import annotations

import torch

from .errors import InputError

# OpenGL / nerfstudio / Blender camera axes are x right, y up, z backward: a flip of y and z.
_FLIP_YZ = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))

FULL_FRAME_WIDTH_MM = 36.0  # the "35 mm equivalent" reference sensor width


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> torch.Tensor:
    """The camera at `eye` looking at `target` with a level horizon.

    Args:
        eye: [3] camera centre, world.
        target: [3] a point the optical axis passes through, world.
        up: [3] world up direction (image "up" is its projection); z by convention.

    Returns:
        cam_from_world: [4, 4] float64, OpenCV axes.

    Raises:
        InputError: eye equals target, or the view direction is parallel to `up` (use
            `look_down` for straight-down cameras).
    """
    eye = torch.as_tensor(eye, dtype=torch.float64)
    target = torch.as_tensor(target, dtype=torch.float64)
    up = torch.as_tensor(up, dtype=torch.float64)
    forward = target - eye
    if float(forward.norm()) < 1e-9:
        raise InputError("look_at: the camera position and its target are the same point.")
    forward = forward / forward.norm()
    right = torch.linalg.cross(forward, up)
    if float(right.norm()) < 1e-6:
        raise InputError("look_at: the view direction is parallel to up; use look_down for overhead cameras.")
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    return _cam_from_world(torch.stack([right, down, forward]), eye)


def look_down(eye, image_up=(0.0, 1.0, 0.0)) -> torch.Tensor:
    """A camera at `eye` looking straight down (-z), with `image_up` (world, horizontal) at the top.

    Args:
        eye: [3] camera centre, world.
        image_up: [3] world direction that appears toward the top of the image.

    Returns:
        cam_from_world: [4, 4] float64, OpenCV axes.
    """
    eye = torch.as_tensor(eye, dtype=torch.float64)
    up = torch.as_tensor(image_up, dtype=torch.float64)
    forward = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)
    up = up - (up @ forward) * forward
    if float(up.norm()) < 1e-9:
        raise InputError("look_down: image_up must have a horizontal component.")
    down = -up / up.norm()
    right = torch.linalg.cross(down, forward)
    return _cam_from_world(torch.stack([right, down, forward]), eye)


def _cam_from_world(rows: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
    """Rows of the rotation are the camera axes expressed in world coordinates."""
    out = torch.eye(4, dtype=torch.float64)
    out[:3, :3] = rows
    out[:3, 3] = -rows @ eye
    return out


def focal_px_from_mm(focal_mm: float, width_px: int, sensor_width_mm: float = FULL_FRAME_WIDTH_MM) -> float:
    """Focal length in pixels of a lens of `focal_mm` (35 mm equivalent by default) on `width_px` pixels."""
    return focal_mm * width_px / sensor_width_mm


def opengl_from_opencv(cam_from_world: torch.Tensor) -> torch.Tensor:
    """reshoot's cam_from_world → nerfstudio/OpenGL/Blender camera-to-world ("transform_matrix").

    Args:
        cam_from_world: [..., 4, 4] OpenCV axes.

    Returns:
        world_from_cam_gl: [..., 4, 4] with OpenGL camera axes (x right, y up, z backward).
    """
    from .camera import invert_rigid

    return invert_rigid(cam_from_world) @ _FLIP_YZ.to(cam_from_world)


def opencv_from_opengl(world_from_cam_gl: torch.Tensor) -> torch.Tensor:
    """Inverse of `opengl_from_opencv`: an OpenGL camera-to-world → reshoot's cam_from_world."""
    from .camera import invert_rigid

    return invert_rigid(world_from_cam_gl @ _FLIP_YZ.to(world_from_cam_gl))


def colmap_K_from_opencv(K: torch.Tensor) -> torch.Tensor:
    """OpenCV pixel centres ((0, 0) = centre of the top-left pixel) → COLMAP's ((0.5, 0.5)).

    Args:
        K: [..., 3, 3] pixels.
    """
    out = K.clone()
    out[..., 0, 2] += 0.5
    out[..., 1, 2] += 0.5
    return out


def opencv_K_from_colmap(K: torch.Tensor) -> torch.Tensor:
    """Inverse of `colmap_K_from_opencv`."""
    out = K.clone()
    out[..., 0, 2] -= 0.5
    out[..., 1, 2] -= 0.5
    return out


def rotation_from_quat_wxyz(quat_wxyz: torch.Tensor) -> torch.Tensor:
    """Hamilton quaternions (w, x, y, z) → rotation matrices.

    Args:
        quat_wxyz: [..., 4], need not be normalized.

    Returns:
        [..., 3, 3].
    """
    from kornia.geometry.conversions import quaternion_to_rotation_matrix

    q = quat_wxyz / quat_wxyz.norm(dim=-1, keepdim=True)
    return quaternion_to_rotation_matrix(q)


def quat_wxyz_from_rotation(rotation: torch.Tensor) -> torch.Tensor:
    """Rotation matrices → unit Hamilton quaternions (w, x, y, z) with w >= 0.

    Args:
        rotation: [..., 3, 3].

    Returns:
        [..., 4].
    """
    from kornia.geometry.conversions import rotation_matrix_to_quaternion

    q = rotation_matrix_to_quaternion(rotation.contiguous())
    return torch.where(q[..., :1] < 0, -q, q)
