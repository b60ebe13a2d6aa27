"""What the unified model reads: one window of target frames with their conditioning, plus source views.

Everything geometric enters as Plücker ray maps in a normalized rig frame: the world translated to the
mean of the source camera centres and divided by their mean distance from it, so that sets of any size
(and real takes whose scale is arbitrary) look alike to the model; gravity (z up) is kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reshoot.geometry.camera import Camera
from reshoot.geometry.errors import InputError


@dataclass(frozen=True)
class RigFrame:
    """The normalized frame of one window: x_norm = (x_world - centre) / scale.

    Attributes:
        centre: [3] world metres.
        scale: world metres per normalized unit (> 0).
    """

    centre: torch.Tensor
    scale: float


@dataclass(frozen=True)
class ShotWindow:
    """A batch of windows, video as [B, T, C, H, W] (DESIGN.md §3).

    Attributes:
        render_rgb: [B, T, 3, H, W] the reconstruction rendered into the target cameras, [0, 1].
        render_depth: [B, T, 1, H, W] z-depth in rig units (metres / RigFrame.scale); 0 where nothing rendered.
        render_alpha: [B, T, 1, H, W] coverage in [0, 1].
        entity_ids: [B, T, H, W] int64 layout entity ids, -1 for none.
        target_rays: [B, T, 6, H, W] Plücker rays (unit direction, moment) of the target cameras, rig frame.
        target_time: [B, T] take frame minus the window's mean frame.
        source_rgb: [B, V, 3, h, w] real frames of the production cameras, [0, 1].
        source_rays: [B, V, 6, h, w] their Plücker rays, rig frame.
        source_time: [B, V] their take frame minus the window's mean frame.
    """

    render_rgb: torch.Tensor
    render_depth: torch.Tensor
    render_alpha: torch.Tensor
    entity_ids: torch.Tensor
    target_rays: torch.Tensor
    target_time: torch.Tensor
    source_rgb: torch.Tensor
    source_rays: torch.Tensor
    source_time: torch.Tensor

    def to(self, device: torch.device | str) -> ShotWindow:
        return ShotWindow(**{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)})


def stack_windows(windows: list[ShotWindow]) -> ShotWindow:
    """Concatenate windows of equal shapes along the batch dimension."""
    return ShotWindow(
        **{f.name: torch.cat([getattr(w, f.name) for w in windows]) for f in dataclasses.fields(ShotWindow)}
    )


def rig_frame(source_cameras: Camera) -> RigFrame:
    """The normalized frame of a set of source cameras (see the module docstring)."""
    centres = source_cameras.centers.to(torch.float64)
    centre = centres.mean(dim=0)
    scale = float((centres - centre).norm(dim=-1).mean())
    if not scale > 1e-6:
        scale = 1.0  # one camera, or all at one spot: keep world units
    return RigFrame(centre.to(torch.float32), scale)


def plucker_rays(cameras: Camera, frame: RigFrame) -> torch.Tensor:
    """Plücker ray maps of every pixel of each camera, in the rig frame.

    Args:
        cameras: V cameras of one image size (distortion is honoured).
        frame: the rig frame.

    Returns:
        [V, 6, H, W] float32: unit direction d (3) then moment o × d (3), o the camera centre.
    """
    width, height = int(cameras.width[0]), int(cameras.height[0])
    if bool((cameras.width != width).any() or (cameras.height != height).any()):
        raise InputError("plucker_rays: the cameras must share one image size.")
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    pixels = torch.stack([cols, rows], dim=-1).reshape(1, -1, 2).expand(len(cameras), -1, -1)
    cams = cameras.to(torch.float64)
    directions = torch.nn.functional.normalize(cams.pixel_directions(pixels), dim=-1)  # [V, N, 3]
    origins = (cams.centers - frame.centre.to(torch.float64)) / frame.scale  # [V, 3]
    moments = torch.cross(origins[:, None, :].expand_as(directions), directions, dim=-1)
    rays = torch.cat([directions, moments], dim=-1).to(torch.float32)
    return rays.reshape(len(cameras), height, width, 6).permute(0, 3, 1, 2).contiguous()


def resized_camera(cameras: Camera, width: int, height: int) -> Camera:
    """The same cameras seen at another image size (K scaled about OpenCV pixel centres)."""
    sx = width / cameras.width.to(torch.float64)
    sy = height / cameras.height.to(torch.float64)
    K = cameras.K.to(torch.float64).clone()
    K[:, 0, :] *= sx[:, None]
    K[:, 1, :] *= sy[:, None]
    K[:, 0, 2] += 0.5 * sx - 0.5
    K[:, 1, 2] += 0.5 * sy - 0.5
    n = len(cameras)
    return dataclasses.replace(
        cameras,
        K=K.to(cameras.K.dtype),
        width=torch.full((n,), width, dtype=cameras.width.dtype),
        height=torch.full((n,), height, dtype=cameras.height.dtype),
    )


def posed_frames(camera: Camera, cam_from_world: torch.Tensor | None = None, count: int | None = None) -> Camera:
    """T copies of camera 0 of `camera` (one per target frame), named `<name>/<k>`, with the poses given
    ([T, 4, 4]) or its own pose `count` times."""
    one = camera.select(0)
    t = len(cam_from_world) if cam_from_world is not None else int(count)
    poses = (
        cam_from_world.to(one.cam_from_world.dtype)
        if cam_from_world is not None
        else one.cam_from_world.expand(t, 4, 4).clone()
    )
    return dataclasses.replace(
        one,
        names=tuple(f"{one.names[0]}/{k}" for k in range(t)),
        cam_from_world=poses,
        K=one.K.expand(t, 3, 3).clone(),
        width=one.width.expand(t).clone(),
        height=one.height.expand(t).clone(),
        distortion=one.distortion.expand(t, -1).clone(),
    )


def area_resized(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Channel-last images [N, H, W, C] averaged over areas to size (w, h): [N, h, w, C] float."""
    w, h = size
    return F.interpolate(images.float().permute(0, 3, 1, 2), size=(h, w), mode="area").permute(0, 2, 3, 1)


def source_size(
    target_width: int, target_height: int, source_width: int, source_height: int, source_scale: float
) -> tuple[int, int]:
    """Size (w, h) of source frames in the model: source_scale² of the target's pixel count, source aspect."""
    factor = source_scale * ((target_width * target_height) / (source_width * source_height)) ** 0.5
    return max(1, round(source_width * factor)), max(1, round(source_height * factor))


def make_window(
    target_cameras: Camera,
    render_rgb: torch.Tensor,
    render_depth: torch.Tensor,
    render_alpha: torch.Tensor,
    entity_ids: torch.Tensor,
    target_frames: torch.Tensor,
    source_cameras: Camera,
    source_rgb: torch.Tensor,
    source_frames: torch.Tensor,
    source_scale: float,
) -> ShotWindow:
    """One window (B = 1) from images in the module-boundary convention (channel-last).

    Args:
        target_cameras: T pinhole cameras, one per target frame, all of the render's size.
        render_rgb: [T, H, W, 3] in [0, 1].
        render_depth: [T, H, W] z-depth, world metres (0 where nothing rendered).
        render_alpha: [T, H, W] coverage in [0, 1].
        entity_ids: [T, H, W] int, -1 for none.
        target_frames: [T] take frame numbers.
        source_cameras: V production cameras (their own sizes, distortion allowed), one image size.
        source_rgb: [V, h0, w0, 3] their frames, [0, 1], at any size that shows the cameras' whole field of view
            (they are resized here).
        source_frames: [V] take frame numbers of those frames.
        source_scale: the model config's source_scale.
    """
    t, height, width, _ = render_rgb.shape
    if (
        len(target_cameras) != t
        or render_depth.shape != (t, height, width)
        or render_alpha.shape != (t, height, width)
        or entity_ids.shape != (t, height, width)
        or target_frames.shape != (t,)
    ):
        raise InputError("make_window: the target cameras and render passes disagree in frames or size.")
    if source_rgb.shape[0] != len(source_cameras) or source_frames.shape != (len(source_cameras),):
        raise InputError("make_window: one source frame and one frame number per source camera are needed.")
    frame = rig_frame(source_cameras)
    sw, sh = source_size(width, height, int(source_cameras.width[0]), int(source_cameras.height[0]), source_scale)
    small_sources = resized_camera(source_cameras, sw, sh)
    sources = area_resized(source_rgb, (sw, sh)).permute(0, 3, 1, 2)
    centre = target_frames.double().mean()
    return ShotWindow(
        render_rgb=render_rgb.permute(0, 3, 1, 2).float()[None],
        render_depth=(render_depth.float() / frame.scale)[None, :, None],
        render_alpha=render_alpha.float()[None, :, None],
        entity_ids=entity_ids.long()[None],
        target_rays=plucker_rays(target_cameras, frame)[None],
        target_time=(target_frames.double() - centre).float()[None],
        source_rgb=sources[None],
        source_rays=plucker_rays(small_sources, frame)[None],
        source_time=(source_frames.double() - centre).float()[None],
    )
