"""Ray-traced rendering of a `FilmSet` with open3d's `RaycastingScene` (CPU).

Per camera and frame: RGB (Lambertian with a key, a fill and a sky term; anti-aliased by
supersampling), z-depth and entity ids from the pixel-centre ray.

Speed: shading in numpy is the cost, not ray casting (~15 M rays/s). The static set of each camera is
rendered once, fully supersampled. Every frame then casts one ray per pixel against the whole scene
and re-shades only pixels whose hit differs from the static render (the moving characters and what
they occlude), supersampling only the pixels on the edges of those regions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d
import open3d.core as o3c
import torch
from scipy import ndimage

from reshoot.geometry.camera import Camera

from .scene import NO_ENTITY, FilmSet, Part
from .textures import sample_bilinear

BACKGROUND = np.array([0.06, 0.06, 0.07], dtype=np.float32)  # the unlit studio beyond the set
KEY_LIGHT = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])
FILL_LIGHT = np.array([-0.6, 0.5, 0.4]) / np.linalg.norm([-0.6, 0.5, 0.4])
NO_HIT = -1


@dataclass(frozen=True)
class ViewRender:
    """One rendered view.

    Attributes:
        rgb: [H, W, 3] float32 in [0, 1].
        depth: [H, W] float32 z-depth in metres; 0 where no surface (the void beyond the set).
        entity_ids: [H, W] int32 entity id, -1 for none (set surfaces, void).
    """

    rgb: np.ndarray
    depth: np.ndarray
    entity_ids: np.ndarray


@dataclass(frozen=True)
class _Hits:
    part: np.ndarray  # [M] int64 part index, -1 for no hit
    t: np.ndarray  # [M] float32 ray parameter (z-depth: directions have unit camera z)
    normal: np.ndarray  # [M, 3] float32 world triangle normals


class _FrameScene:
    """All parts posed at one frame, in one open3d scene. Geometry id == part index."""

    def __init__(self, film_set: FilmSet, frame: int, parts: list[int]):
        self.scene = o3d.t.geometry.RaycastingScene()
        for expected, index in enumerate(parts):
            part = film_set.parts[index]
            gid = self.scene.add_triangles(o3c.Tensor(part.world_vertices(frame)), o3c.Tensor(part.triangles))
            assert gid == expected
        self.part_of_geometry = np.asarray(parts + [NO_HIT], dtype=np.int64)

    def cast(self, origin: np.ndarray, directions: np.ndarray) -> _Hits:
        """Cast rays from one origin [3] along directions [M, 3] (float32)."""
        rays = np.empty((len(directions), 6), dtype=np.float32)
        rays[:, :3] = origin
        rays[:, 3:] = directions
        out = self.scene.cast_rays(o3c.Tensor(rays))
        gid = out["geometry_ids"].numpy().astype(np.int64)
        gid[gid == o3d.t.geometry.RaycastingScene.INVALID_ID] = len(self.part_of_geometry) - 1
        return _Hits(self.part_of_geometry[gid], out["t_hit"].numpy(), out["primitive_normals"].numpy())


class SetRenderer:
    """Renders a FilmSet into its cameras, frame by frame."""

    def __init__(self, film_set: FilmSet, antialias: int):
        self.film_set = film_set
        self.antialias = antialias
        self.static_parts = [i for i, p in enumerate(film_set.parts) if p.is_static]
        self.dynamic_parts = [i for i, p in enumerate(film_set.parts) if not p.is_static]
        self.entity_of_part = np.array([p.entity for p in film_set.parts] + [NO_ENTITY], dtype=np.int32)
        self._static_scene = _FrameScene(film_set, 0, self.static_parts)
        self._static_cache: dict[int, tuple[ViewRender, np.ndarray]] = {}
        self._centre_dirs: dict[int, np.ndarray] = {}

    def frame_scene(self, frame: int) -> _FrameScene:
        """The scene at `frame`: static parts first (same geometry ids as the static scene)."""
        return _FrameScene(self.film_set, frame, self.static_parts + self.dynamic_parts)

    def render(self, camera_index: int, frame: int, scene: _FrameScene | None = None) -> ViewRender:
        """Render camera `camera_index` at scene frame `frame` (0-based; `FilmSet.frames`)."""
        scene = scene or self.frame_scene(frame)
        static, static_part = self._static_view(camera_index)
        cam = self.film_set.cameras.select(camera_index)
        h, w = static.depth.shape
        origin = cam.centers[0].numpy().astype(np.float32)
        hits = scene.cast(origin, self._directions(camera_index).reshape(-1, 3))
        part = hits.part.reshape(h, w)
        changed = part != static_part
        if not changed.any():
            return static
        edges = ndimage.binary_dilation(changed, np.ones((3, 3), bool)) & _hit_boundaries(part)
        interior = changed & ~edges

        rgb = static.rgb.copy()
        flat = interior.reshape(-1)
        rgb[interior] = self._shade(
            hits.part[flat],
            origin,
            self._directions(camera_index).reshape(-1, 3)[flat],
            hits.t[flat],
            hits.normal[flat],
            frame,
        )
        if edges.any():
            rgb[edges] = self._supersample(scene, cam, np.argwhere(edges), frame)
        depth = np.where(hits.part >= 0, hits.t, 0).astype(np.float32).reshape(h, w)
        ids = self.entity_of_part[np.where(hits.part >= 0, hits.part, -1)].reshape(h, w)
        return ViewRender(rgb, depth, ids)

    # -----------------------------------------------------------------------------------------

    def render_static(self, cam: Camera, antialias: int) -> tuple[ViewRender, np.ndarray]:
        """The static set (no characters) seen by one camera, supersampled everywhere.

        Args:
            cam: one camera (V = 1), any pose (production, ground truth or survey).
            antialias: sub-pixel rays per axis.

        Returns:
            The view, and [H, W] int64 part index of each pixel-centre ray (-1 = void).
        """
        h, w = int(cam.height[0]), int(cam.width[0])
        origin = cam.centers[0].numpy().astype(np.float32)
        hits = self._static_scene.cast(origin, _pixel_directions(cam).reshape(-1, 3))
        rgb = self._supersample(self._static_scene, cam, np.argwhere(np.ones((h, w), bool)), 0, antialias)
        depth = np.where(hits.part >= 0, hits.t, 0).astype(np.float32).reshape(h, w)
        ids = self.entity_of_part[np.where(hits.part >= 0, hits.part, -1)].reshape(h, w)
        return ViewRender(rgb.reshape(h, w, 3), depth, ids), hits.part.reshape(h, w)

    def static_view(self, camera_index: int) -> ViewRender:
        """What camera `camera_index` of the set sees of the static set (no characters): every frame's
        background, as `render` draws it."""
        return self._static_view(camera_index)[0]

    def _directions(self, camera_index: int) -> np.ndarray:
        """[H, W, 3] float32 world ray directions of the pixel centres (unit camera z), cached."""
        if camera_index not in self._centre_dirs:
            self._centre_dirs[camera_index] = _pixel_directions(self.film_set.cameras.select(camera_index))
        return self._centre_dirs[camera_index]

    def _static_view(self, camera_index: int) -> tuple[ViewRender, np.ndarray]:
        """`render_static` of a camera of the set, cached."""
        if camera_index not in self._static_cache:
            cam = self.film_set.cameras.select(camera_index)
            self._static_cache[camera_index] = self.render_static(cam, self.antialias)
        return self._static_cache[camera_index]

    def _supersample(
        self, scene: _FrameScene, cam: Camera, pixels_rc: np.ndarray, frame: int, antialias: int | None = None
    ) -> np.ndarray:
        """Mean colour of n×n sub-pixel rays per pixel (n = `antialias`, default the renderer's).

        Args:
            pixels_rc: [M, 2] (row, col) integer pixel positions.

        Returns:
            [M, 3] float32.
        """
        n = antialias or self.antialias
        offsets = (np.arange(n) + 0.5) / n - 0.5
        du, dv = np.meshgrid(offsets, offsets)
        sub = np.stack([du.ravel(), dv.ravel()], -1)  # [S, 2] in pixels
        uv = pixels_rc[:, None, ::-1].astype(np.float64) + sub[None]  # [M, S, 2] (u, v)
        dirs = cam.pixel_directions(torch.from_numpy(uv.reshape(1, -1, 2)))[0].numpy().astype(np.float32)
        origin = cam.centers[0].numpy().astype(np.float32)
        samples = len(sub)
        out = np.empty((len(pixels_rc), 3), dtype=np.float32)
        chunk = 1 << 16  # pixels per cast
        for start in range(0, len(pixels_rc), chunk):
            stop = min(start + chunk, len(pixels_rc))
            d = dirs[start * samples : stop * samples]
            hits = scene.cast(origin, d)
            colour = self._shade(hits.part, origin, d, hits.t, hits.normal, frame)
            out[start:stop] = colour.reshape(-1, samples, 3).mean(axis=1)
        return out

    def _shade(
        self, part: np.ndarray, origin: np.ndarray, dirs: np.ndarray, t: np.ndarray, normal: np.ndarray, frame: int
    ) -> np.ndarray:
        """Colour of ray hits: textured albedo times Lambertian light; the void is BACKGROUND.

        Args:
            part: [M] part index per hit, -1 for none.
            origin: [3] ray origin; dirs: [M, 3]; t: [M] hit distance along dirs.
            normal: [M, 3] world triangle normals.

        Returns:
            [M, 3] float32.
        """
        colour = np.broadcast_to(BACKGROUND, (len(part), 3)).copy()
        for index in np.unique(part[part >= 0]):
            sel = part == index
            p = self.film_set.parts[index]
            pose = p.pose(frame)
            points = origin + dirs[sel] * t[sel, None]
            local = (points - pose[:3, 3]) @ pose[:3, :3]  # world → local: R^T (x - t)
            n_world = _smooth_normal(p, local, pose, normal[sel])
            n_world *= -np.sign(np.sum(n_world * dirs[sel], axis=1, keepdims=True) + 1e-12)  # face the camera
            u, v = _texture_uv(p, local)
            albedo = sample_bilinear(p.texture, u * p.texels_per_m, v * p.texels_per_m)
            light = (
                0.32
                + 0.12 * n_world[:, 2:3]
                + 0.55 * np.clip(n_world @ KEY_LIGHT, 0, None)[:, None]
                + 0.18 * np.clip(n_world @ FILL_LIGHT, 0, None)[:, None]
            )
            colour[sel] = albedo * light
        return np.clip(colour, 0.0, 1.0).astype(np.float32)


def _pixel_directions(cam: Camera) -> np.ndarray:
    """[H, W, 3] float32 world ray directions of one camera's pixel centres (unit camera z)."""
    h, w = int(cam.height[0]), int(cam.width[0])
    vv, uu = np.mgrid[0:h, 0:w]
    pixels = np.stack([uu, vv], -1).reshape(1, -1, 2).astype(np.float64)
    return cam.pixel_directions(torch.from_numpy(pixels))[0].numpy().reshape(h, w, 3).astype(np.float32)


def _hit_boundaries(part: np.ndarray) -> np.ndarray:
    """[H, W] bool: pixels whose 3×3 neighbourhood hits more than one part (or part and void)."""
    return ndimage.maximum_filter(part, 3) != ndimage.minimum_filter(part, 3)


def _smooth_normal(part: Part, local: np.ndarray, pose: np.ndarray, triangle_normal: np.ndarray) -> np.ndarray:
    """World normals [M, 3]: analytic on curved surfaces (cylinder sides, spheres), else the triangle's."""
    if part.shape == "sphere":
        n_local = local / np.linalg.norm(local, axis=1, keepdims=True)
    elif part.shape == "cylinder":
        side = np.abs(local[:, 2]) < part.dims[1] / 2 - 1e-4
        n_local = triangle_normal @ pose[:3, :3]
        radial = local.copy()
        radial[:, 2] = 0
        radial /= np.linalg.norm(radial, axis=1, keepdims=True) + 1e-12
        n_local = np.where(side[:, None], radial, n_local)
    else:
        return triangle_normal.astype(np.float64)
    return n_local @ pose[:3, :3].T


def _texture_uv(part: Part, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texture coordinates in metres of local surface points [M, 3].

    u runs to the right and v downward as seen from outside each face, so printed glyphs read
    correctly and vertical patterns stay upright (v = distance below the top edge). Box faces start
    at their own u offset so no two faces show the same texture patch. Cylinders and spheres:
    u = arc length around the axis.
    """
    if part.shape == "box":
        half = part.dims / 2
        axis = np.argmax(np.abs(local) / half, axis=1)
        positive = local[np.arange(len(local)), axis] > 0
        up = local + half  # distance from the min side per axis
        down = half - local  # distance from the max side per axis
        u = np.select(
            [axis == 0, axis == 1],
            [np.where(positive, up[:, 1], down[:, 1]), np.where(positive, down[:, 0], up[:, 0])],
            up[:, 0],
        )
        v = np.where(axis == 2, down[:, 1], down[:, 2])
        return u + 0.61 * (axis * 2 + positive), v
    if part.shape == "cylinder":
        radius, height = part.dims
        arc = (np.arctan2(local[:, 1], local[:, 0]) + np.pi) * radius
        cap = np.abs(local[:, 2]) >= height / 2 - 1e-4
        u = np.where(cap, local[:, 0] + radius + 0.5 * (local[:, 2] > 0), arc)
        v = np.where(cap, radius - local[:, 1], height / 2 - local[:, 2])
        return u, v
    radius = part.dims[0]
    return (np.arctan2(local[:, 1], local[:, 0]) + np.pi) * radius, radius - local[:, 2]
