"""The one camera type of reshoot (DESIGN.md §3).

A `Camera` is a batch of V pinhole cameras with optional OpenCV lens distortion:
`cam_from_world: [V, 4, 4]` (OpenCV axes: x right, y down, z forward; exactly gsplat's `viewmats`),
`K: [V, 3, 3]` in pixels with OpenCV pixel centres ((0, 0) is the centre of the top-left pixel),
image size per camera, distortion `[V, 5]` as OpenCV's k1 k2 p1 p2 k3 (all zero means none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import InputError

DISTORTION_SIZE = 5  # OpenCV k1 k2 p1 p2 k3


def invert_rigid(a_from_b: torch.Tensor) -> torch.Tensor:
    """Invert rigid transforms without a general matrix inverse.

    Args:
        a_from_b: [..., 4, 4] rotation + translation.

    Returns:
        b_from_a: [..., 4, 4].
    """
    rot_t = a_from_b[..., :3, :3].transpose(-1, -2)
    out = torch.zeros_like(a_from_b)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ a_from_b[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1
    return out


def transform_points(a_from_b: torch.Tensor, points_b: torch.Tensor) -> torch.Tensor:
    """Apply rigid/affine transforms to points.

    Args:
        a_from_b: [..., 4, 4].
        points_b: [..., N, 3] in frame b.

    Returns:
        [..., N, 3] in frame a.
    """
    return points_b @ a_from_b[..., :3, :3].transpose(-1, -2) + a_from_b[..., None, :3, 3]


@dataclass(frozen=True)
class Projection:
    """Points projected into cameras.

    Attributes:
        pixels: [V, N, 2] pixel coordinates (OpenCV centres), lens distortion applied.
        depth: [V, N] z-depth in the camera (world units); <= 0 means behind the camera.
    """

    pixels: torch.Tensor
    depth: torch.Tensor


@dataclass(frozen=True)
class PixelHits:
    """The pixel each point lands on in each camera.

    Attributes:
        rows, cols: [V, N] int64 nearest pixel (row y, column x), clamped into the image so that they
            can index it directly; meaningful only where `inside`.
        inside: [V, N] bool, in front of the camera and within its image.
        depth: [V, N] the points' z-depth in each camera (world units).
    """

    rows: torch.Tensor
    cols: torch.Tensor
    inside: torch.Tensor
    depth: torch.Tensor


@dataclass(frozen=True, eq=False)
class Camera:
    """A batch of V cameras.

    Attributes:
        names: V camera names, unique.
        K: [V, 3, 3] intrinsics in pixels, OpenCV pixel centres.
        cam_from_world: [V, 4, 4] world → camera (OpenCV axes).
        width: [V] int64 image width in pixels.
        height: [V] int64 image height in pixels.
        distortion: [V, 5] OpenCV k1 k2 p1 p2 k3; all zero means an ideal pinhole.
    """

    names: tuple[str, ...]
    K: torch.Tensor
    cam_from_world: torch.Tensor
    width: torch.Tensor
    height: torch.Tensor
    distortion: torch.Tensor

    def __post_init__(self) -> None:
        v = len(self.names)
        assert self.K.shape == (v, 3, 3), f"K must be [V, 3, 3], got {tuple(self.K.shape)}"
        assert self.cam_from_world.shape == (v, 4, 4), "cam_from_world must be [V, 4, 4]"
        assert self.width.shape == (v,) and self.height.shape == (v,), "width/height must be [V]"
        assert self.distortion.shape == (v, DISTORTION_SIZE), "distortion must be [V, 5]"
        assert len(set(self.names)) == v, f"camera names must be unique: {self.names}"

    @staticmethod
    def create(
        names: Sequence[str],
        K,
        cam_from_world,
        width: Sequence[int] | torch.Tensor,
        height: Sequence[int] | torch.Tensor,
        distortion=None,
        dtype: torch.dtype = torch.float64,
    ) -> Camera:
        """Build a Camera from array-likes, validating shapes and values.

        Args:
            names: V names.
            K: [V, 3, 3] pixels.
            cam_from_world: [V, 4, 4].
            width, height: V image sizes in pixels.
            distortion: [V, k] with k <= 5 OpenCV coefficients (padded with zeros), or None.
            dtype: float dtype of the stored tensors (float64 keeps calibration precision).

        Raises:
            InputError: shapes disagree, a size is not positive, or a rotation is not a rotation.
        """
        names = tuple(str(n) for n in names)
        v = len(names)
        K = torch.as_tensor(K, dtype=dtype).reshape(v, 3, 3)
        cam_from_world = torch.as_tensor(cam_from_world, dtype=dtype).reshape(v, 4, 4)
        width = torch.as_tensor(width, dtype=torch.int64).reshape(v)
        height = torch.as_tensor(height, dtype=torch.int64).reshape(v)
        dist = torch.zeros(v, DISTORTION_SIZE, dtype=dtype)
        if distortion is not None:
            given = torch.as_tensor(distortion, dtype=dtype).reshape(v, -1)
            if given.shape[1] > DISTORTION_SIZE and bool((given[:, DISTORTION_SIZE:] != 0).any()):
                raise InputError(
                    f"cameras {names}: only OpenCV's 5-coefficient distortion (k1 k2 p1 p2 k3) is "
                    f"supported, got {given.shape[1]} non-zero coefficients."
                )
            k = min(given.shape[1], DISTORTION_SIZE)
            dist[:, :k] = given[:, :k]
        if len(set(names)) != v:
            raise InputError(f"camera names must be unique, got {list(names)}.")
        if bool((width <= 0).any() or (height <= 0).any()):
            raise InputError(f"cameras {list(names)}: image sizes must be positive.")
        rot = cam_from_world[:, :3, :3]
        eye = torch.eye(3, dtype=dtype).expand_as(rot)
        bad = ((rot @ rot.transpose(-1, -2) - eye).abs().amax(dim=(-1, -2)) > 1e-4) | (torch.linalg.det(rot) < 0)
        if bool(bad.any()):
            which = [n for n, b in zip(names, bad.tolist()) if b]
            raise InputError(f"cameras {which}: cam_from_world's 3x3 part is not a rotation matrix.")
        return Camera(names, K, cam_from_world, width, height, dist)

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Position of the camera called `name`."""
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"no camera named {name!r}; the cameras are {list(self.names)}.") from None

    def select(self, which: int | str | Sequence[int | str]) -> Camera:
        """A sub-batch by position(s) or name(s), in the order given."""
        items = [which] if isinstance(which, (int, str)) else list(which)
        idx = [self.index(i) if isinstance(i, str) else int(i) for i in items]
        t = torch.as_tensor(idx, dtype=torch.long)
        return Camera(
            tuple(self.names[i] for i in idx),
            self.K[t],
            self.cam_from_world[t],
            self.width[t],
            self.height[t],
            self.distortion[t],
        )

    def renamed(self, names: Sequence[str]) -> Camera:
        """The same cameras under new names (same order)."""
        assert len(names) == len(self), "one name per camera"
        return Camera(tuple(names), self.K, self.cam_from_world, self.width, self.height, self.distortion)

    @staticmethod
    def cat(cameras: Sequence[Camera]) -> Camera:
        """Concatenate batches (names must stay unique)."""
        return Camera.create(
            [n for c in cameras for n in c.names],
            torch.cat([c.K for c in cameras]),
            torch.cat([c.cam_from_world for c in cameras]),
            torch.cat([c.width for c in cameras]),
            torch.cat([c.height for c in cameras]),
            torch.cat([c.distortion for c in cameras]),
            dtype=cameras[0].K.dtype,
        )

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> Camera:
        """Cast the float tensors to `dtype` and move everything to `device`."""

        def f(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype)

        return Camera(
            self.names,
            f(self.K),
            f(self.cam_from_world),
            self.width.to(device),
            self.height.to(device),
            f(self.distortion),
        )

    def scaled(self, factor: int) -> Camera:
        """The same cameras for images downsampled by an integer `factor` (sizes floored).

        Pixel centres stay pixel centres: a new pixel covers `factor` x `factor` old ones, so
        c' = (c + 0.5) / factor - 0.5.
        """
        K = self.K.clone()
        K[:, :2, :2] /= factor
        K[:, :2, 2] = (self.K[:, :2, 2] + 0.5) / factor - 0.5
        return Camera(self.names, K, self.cam_from_world, self.width // factor, self.height // factor, self.distortion)

    def cropped(self, left: int, top: int, width: int, height: int) -> Camera:
        """The same cameras seeing only the window of `width` x `height` pixels whose top-left pixel is
        (left, top): the principal point shifts with the window."""
        K = self.K.clone()
        K[:, 0, 2] -= left
        K[:, 1, 2] -= top
        v = len(self)
        return Camera(
            self.names,
            K,
            self.cam_from_world,
            torch.full((v,), int(width)),
            torch.full((v,), int(height)),
            self.distortion,
        )

    def with_pose(self, cam_from_world: torch.Tensor) -> Camera:
        """Camera 0 of these cameras placed at `cam_from_world` ([4, 4], OpenCV axes), in K's dtype."""
        return Camera(
            self.names[:1],
            self.K[:1],
            cam_from_world[None].to(self.K.dtype),
            self.width[:1],
            self.height[:1],
            self.distortion[:1],
        )

    def pinhole(self) -> Camera:
        """The same cameras without lens distortion (what `undistort_image` resamples into)."""
        return Camera(
            self.names, self.K, self.cam_from_world, self.width, self.height, torch.zeros_like(self.distortion)
        )

    @property
    def world_from_cam(self) -> torch.Tensor:
        """[V, 4, 4] camera → world."""
        return invert_rigid(self.cam_from_world)

    @property
    def centers(self) -> torch.Tensor:
        """[V, 3] camera centres in world coordinates."""
        return self.world_from_cam[:, :3, 3]

    @property
    def has_distortion(self) -> torch.Tensor:
        """[V] bool, True where any distortion coefficient is non-zero."""
        return (self.distortion != 0).any(dim=-1)

    def project(self, points_world: torch.Tensor) -> Projection:
        """Project world points into every camera (lens distortion applied).

        Args:
            points_world: [N, 3] (the same points for all cameras) or [V, N, 3], world units.

        Returns:
            Projection with pixels [V, N, 2] and z-depth [V, N]. Points behind a camera get
            meaningless pixels; test `depth > 0`.
        """
        pts = points_world.to(self.K.dtype)
        if pts.dim() == 2:
            pts = pts.expand(len(self), -1, -1)
        pts_cam = transform_points(self.cam_from_world, pts)
        depth = pts_cam[..., 2]
        safe = torch.where(depth.abs() < 1e-12, torch.full_like(depth, 1e-12), depth)
        normalized = pts_cam[..., :2] / safe[..., None]
        pixels = normalized @ self.K[:, :2, :2].transpose(-1, -2) + self.K[:, None, :2, 2]
        if bool(self.has_distortion.any()):
            pixels = self.distort_pixels(pixels)
        return Projection(pixels, depth)

    def pixel_hits(self, points_world: torch.Tensor) -> PixelHits:
        """The nearest pixel of every point in every camera (see `project`).

        Args:
            points_world: [N, 3] or [V, N, 3], world units.
        """
        projection = self.project(points_world)
        cols = projection.pixels[..., 0].round().long()
        rows = projection.pixels[..., 1].round().long()
        width, height = self.width[:, None], self.height[:, None]
        inside = (projection.depth > 0) & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        return PixelHits(
            torch.minimum(rows.clamp_min(0), height - 1),
            torch.minimum(cols.clamp_min(0), width - 1),
            inside,
            projection.depth,
        )

    def pixel_directions(self, pixels: torch.Tensor) -> torch.Tensor:
        """Viewing rays of pixels, in world coordinates, scaled to unit z-depth.

        A point at z-depth d along the ray of a pixel is `centers[v] + d * directions[v, n]`.

        Args:
            pixels: [V, N, 2] pixel coordinates (OpenCV centres) in the distorted image.

        Returns:
            [V, N, 3] world directions whose camera-frame z component is 1.
        """
        pixels = pixels.to(self.K.dtype)
        if bool(self.has_distortion.any()):
            pixels = self.undistort_pixels(pixels)
        fx, fy = self.K[:, None, 0, 0], self.K[:, None, 1, 1]
        cx, cy = self.K[:, None, 0, 2], self.K[:, None, 1, 2]
        skew = self.K[:, None, 0, 1]
        y = (pixels[..., 1] - cy) / fy
        x = (pixels[..., 0] - cx - skew * y) / fx
        dirs_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
        return dirs_cam @ self.cam_from_world[:, :3, :3]  # R^T applied to row vectors

    def unproject(self, pixels: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Lift pixels with z-depth to world points.

        Args:
            pixels: [V, N, 2] pixel coordinates.
            depth: [V, N] z-depth.

        Returns:
            [V, N, 3] world points.
        """
        return self.centers[:, None, :] + depth[..., None].to(self.K.dtype) * self.pixel_directions(pixels)

    def distort_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """[V, N, 2] pinhole pixels (same K) → where the lens puts them. kornia implements OpenCV's
        distortion model; cameras without distortion pass through."""
        from kornia.geometry.calibration import distort_points

        return distort_points(pixels, self.K, self.distortion)

    def undistort_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """[V, N, 2] pixels of the distorted image → the pinhole pixels (same K) of their rays."""
        from kornia.geometry.calibration import undistort_points

        # More fixed-point iterations than kornia's default 5: strong wide-angle distortion
        # (k1 ≈ -0.33 on the caliscope webcams) needs them to converge at the image corners.
        return undistort_points(pixels, self.K, self.distortion, num_iters=20)


def undistort_image(image: torch.Tensor, camera: Camera) -> torch.Tensor:
    """Resample an image of a distorted camera into `camera.pinhole()` (same K), bilinearly.

    Args:
        image: [H, W, C] float image of camera 0 of `camera`.

    Returns:
        [H, W, C]; pixels whose source falls outside the image are 0. Returned as is without distortion.
    """
    if not bool(camera.has_distortion[0]):
        return image
    from kornia.geometry.calibration import undistort_image as kornia_undistort

    chw = image.permute(2, 0, 1)[None].to(camera.K.dtype)
    out = kornia_undistort(chw, camera.K[:1], camera.distortion[:1])
    return out[0].permute(1, 2, 0).to(image.dtype)
