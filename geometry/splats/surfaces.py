"""Splats that are surfaces: surfel initialisation, surface priors and free-space pruning.

A static set fitted by the plain 3DGS recipe from a few eye-level cameras is made of needles and
floaters: Gaussians stretched along the rays they were seen by, and Gaussians in empty space that
explain one view and spoil every other. From a new angle (above) they show as streaks and fog. Here:

- `surfel_gaussians`: Gaussians on dense stereo points, flat discs lying in the surface (normal = the
  stereo normal), so fitting starts on surfaces and never in empty space.
- Priors (losses to add to the photometric one): `plane_loss` pulls Gaussians near a known plane (the
  floor z = 0, walls) onto it and turns their normals to the plane's; `elongation_loss` penalises
  needles; `depth_normal_loss` asks the rendered normals to agree with the normals of the rendered
  depth (as 2DGS and Gaussian surfels do), which makes the surfels form one continuous surface.
- Pruning: `floating` finds Gaussians that lie in front of the surfaces the views observe (stereo
  depth); `views_seeing` counts the views that see a Gaussian at all; `explained_by_environment` finds
  Gaussians in the colour behind the splats that no view needs (a surface carried past its open edge,
  painted in the void's colour).
- Coverage: `plane_coverage_loss` asks a plane's surfels to cover the plane where they stand, seen
  square-on (`plane_camera`): views at grazing angles do not see the gaps between surfels, a view from
  above does.

A Gaussian's normal is the axis of its smallest scale (for a flat surfel, its local z).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..camera import Camera
from ..stereo import depth_normals
from .gaussians import Gaussians, select_gaussians
from .sh import rgb_to_sh_dc, sh_to_rgb


@dataclass(frozen=True)
class Plane:
    """A plane n·X = offset in the world (n unit).

    Attributes:
        normal: [3] unit normal.
        offset: signed distance of the plane from the origin along `normal`, world units.
        name: e.g. "floor", "wall_1".
        reaches_beyond_start: Gaussians that come to lie on the plane during fitting count as its own
            for pruning (a wall whose top only one camera saw has no stereo points up there to start
            from); else only those that started on it and their offspring do.
        footprint: (min [2], max [2]) world x, y box the plane's surface stands in, at any height (a
            wall ends where the room's side does: its plane's extension is empty space), or None:
            everywhere.
    """

    normal: tuple[float, float, float]
    offset: float
    name: str
    reaches_beyond_start: bool = False
    footprint: tuple[tuple[float, float], tuple[float, float]] | None = None


def rotation_to_normal(normals: torch.Tensor) -> torch.Tensor:
    """[N, 4] wxyz quaternions of rotations whose local z axis is `normals` [N, 3] (unit)."""
    from kornia.geometry.conversions import rotation_matrix_to_quaternion

    n = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    t1 = _tangents(n)
    t2 = torch.linalg.cross(n, t1)
    return rotation_matrix_to_quaternion(torch.stack([t1, t2, n], dim=-1).contiguous())


def _tangents(n: torch.Tensor) -> torch.Tensor:
    """[N, 3] unit vectors perpendicular to the unit vectors `n` [N, 3] (x or, for n near x, y crossed with n)."""
    helper = torch.where(
        (n[:, :1].abs() < 0.9),
        torch.tensor([[1.0, 0.0, 0.0]], dtype=n.dtype),
        torch.tensor([[0.0, 1.0, 0.0]], dtype=n.dtype),
    )
    t = torch.linalg.cross(helper, n)
    return t / t.norm(dim=-1, keepdim=True)


def surfel_gaussians(
    points: torch.Tensor,
    colors: torch.Tensor,
    normals: torch.Tensor,
    spacing: float,
    thickness: float,
    sh_degree: int,
    opacity: float = 0.5,
) -> Gaussians:
    """Flat Gaussians on surface points: discs of standard deviation `spacing` in the surface and
    `thickness` across it.

    Args:
        points: [N, 3] world; colors: [N, 3] in [0, 1]; normals: [N, 3] unit, world.
        spacing: in-surface standard deviation (about the points' spacing), world units.
        thickness: standard deviation along the normal, world units.
    """
    n = len(points)
    sh = torch.zeros(n, (sh_degree + 1) ** 2, 3)
    sh[:, 0] = rgb_to_sh_dc(colors.float())
    scales = torch.tensor([math.log(spacing), math.log(spacing), math.log(thickness)]).repeat(n, 1)
    return Gaussians(
        points.float(),
        rotation_to_normal(normals.float()),
        scales,
        torch.full((n,), math.log(opacity / (1 - opacity))),
        sh,
    )


def gaussian_normals(g: Gaussians) -> torch.Tensor:
    """[N, 3] world unit normals: the rotation's axis of the smallest scale (sign arbitrary)."""
    axis = g.log_scales.detach().argmin(dim=-1)
    return g.rotations.gather(2, axis[:, None, None].expand(-1, 3, 1))[..., 0]


def points_on_plane(
    points: torch.Tensor, normals: torch.Tensor, plane: Plane, distance: float, min_cosine: float
) -> torch.Tensor:
    """[N] bool: points [N, 3] within `distance` of the plane and inside its footprint, their normals
    [N, 3] (unit) within acos(min_cosine) of the plane's, either way round."""
    n = torch.tensor(plane.normal, dtype=points.dtype)
    on = ((points @ n - plane.offset).abs() < distance) & ((normals.to(points.dtype) @ n).abs() > min_cosine)
    if plane.footprint is not None:
        lo, hi = (torch.tensor(b, dtype=points.dtype) for b in plane.footprint)
        on &= ((points[:, :2] >= lo) & (points[:, :2] <= hi)).all(-1)
    return on


def on_planes(g: Gaussians, planes: Sequence[Plane], distance: float, min_cosine: float = 0.8) -> torch.Tensor:
    """[N] int64: for each Gaussian, the index of the first plane it lies on (`points_on_plane` of its
    centre and its normal), -1 for none."""
    owner = torch.full((len(g),), -1, dtype=torch.int64)
    if not planes or len(g) == 0:
        return owner
    with torch.no_grad():
        normals = gaussian_normals(g)
        for i, plane in enumerate(planes):
            owner[points_on_plane(g.means, normals, plane, distance, min_cosine) & (owner < 0)] = i
    return owner


def plane_loss(
    g: Gaussians, planes: Sequence[Plane], distance: float, min_cosine: float = 0.8, owner: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over all Gaussians of the pull of the planes on those near them.

    A Gaussian belongs to a plane (`on_planes`) within `distance` of it with its normal within
    acos(min_cosine) of the plane's; it pays (d / distance)^2 for its offset d, 1 - |cos| for its
    normal's angle and 1 - opacity for its transparency: a set's planes are solid. (Seen at a grazing
    angle, many half-transparent layers add up to an opaque pixel; seen from above, one such layer
    lets the background through.)

    Args:
        g: the splats; planes: the scene's planes; distance: reach of a plane, world units.
        owner: [N] each Gaussian's plane (index, -1 for none), when decided before (`on_planes` at the
            start of fitting, kept by a Gaussian's offspring): a surfel that tilts away from its plane,
            as views at grazing angles would have it (it then covers more of their pixels), stays its
            plane's and is turned back.

    Returns:
        Scalar loss (0 without planes or Gaussians near them).
    """
    owner = on_planes(g, planes, distance, min_cosine) if owner is None else owner
    if not bool((owner >= 0).any()):
        return g.means.sum() * 0
    normals = gaussian_normals(g)
    plane_normals = torch.tensor([p.normal for p in planes], dtype=g.means.dtype)
    offsets = torch.tensor([p.offset for p in planes], dtype=g.means.dtype)
    members = torch.nonzero(owner >= 0).flatten()
    n = plane_normals[owner[members]]
    offset = (g.means[members] * n).sum(-1) - offsets[owner[members]]
    cosine = (normals[members] * n).sum(-1).abs()
    return ((offset / distance) ** 2 + (1 - cosine) + (1 - g.opacities[members])).sum() / len(g)


def elongation_loss(g: Gaussians, max_ratio: float) -> torch.Tensor:
    """Mean over Gaussians of how far (in log) their largest scale exceeds `max_ratio` times the
    second largest: 0 for discs and blobs, growing for needles."""
    top = g.log_scales.topk(2, dim=-1).values
    return torch.relu(top[:, 0] - top[:, 1] - math.log(max_ratio)).mean()


def facing_normals(g: Gaussians, cameras: Camera) -> torch.Tensor:
    """[C, N, 3] Gaussian normals turned towards each camera (the features a normal render composites)."""
    normals = gaussian_normals(g)
    towards = cameras.centers.to(g.means)[:, None, :] - g.means[None]
    sign = torch.where((towards * normals[None]).sum(-1, keepdim=True) < 0, -1.0, 1.0)
    return normals[None] * sign


def depth_normal_loss(
    rendered_normals: torch.Tensor, depth: torch.Tensor, alpha: torch.Tensor, cameras: Camera, min_alpha: float = 0.5
) -> torch.Tensor:
    """Mean of 1 - cos between rendered normals and the normals of the rendered depth, where covered.

    Args:
        rendered_normals: [C, H, W, 3] alpha-composited Gaussian normals (`facing_normals` as features).
        depth: [C, H, W] rendered z-depth; alpha: [C, H, W] coverage.
    """
    from_depth = depth_normals(depth, cameras)
    weight = ((alpha.detach() > min_alpha) & (from_depth.detach().norm(dim=-1) > 0.5)).to(depth.dtype)
    unit = rendered_normals / rendered_normals.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return ((1 - (unit * from_depth).sum(-1)) * weight).sum() / weight.sum().clamp_min(1.0)


@torch.no_grad()
def floating(
    means: torch.Tensor, cameras: Camera, depths: Sequence[torch.Tensor], tolerance: float, min_votes: int
) -> torch.Tensor:
    """[N] bool: points in the free space of the views: in front of the surface observed there in at
    least `min_votes` views, and in more views than they lie on it.

    Args:
        means: [N, 3] world; cameras: V pinhole cameras; depths: V x [H, W] observed z-depth (0 = unknown),
            each at its camera's size.
        tolerance: relative depth margin: in front means nearer than (1 - tolerance) x the observed
            depth, on it means within tolerance x the observed depth.
    """
    hits = cameras.pixel_hits(means)
    in_front = torch.zeros(len(means), dtype=torch.int64)
    on_surface = torch.zeros(len(means), dtype=torch.int64)
    for v in range(len(cameras)):
        observed = depths[v][hits.rows[v], hits.cols[v]].to(hits.depth.dtype)
        known = hits.inside[v] & (observed > 0)
        in_front += (known & (hits.depth[v] < observed * (1 - tolerance))).long()
        on_surface += (known & ((hits.depth[v] - observed).abs() <= observed * tolerance)).long()
    return (in_front >= min_votes) & (in_front > on_surface)


@torch.no_grad()
def views_seeing(means: torch.Tensor, cameras: Camera, depths: torch.Tensor, tolerance: float) -> torch.Tensor:
    """[N] views in which each point is inside the image and not hidden behind the rendered surface.

    Args:
        depths: [V, H, W] rendered z-depth of the scene (0 where empty: nothing hides the point there).
        tolerance: relative depth margin behind the surface that still counts as on it.
    """
    hits = cameras.pixel_hits(means)
    count = torch.zeros(len(means), dtype=torch.int64)
    for v in range(len(cameras)):
        surface = depths[v][hits.rows[v], hits.cols[v]].to(hits.depth.dtype)
        hidden = (surface > 0) & (hits.depth[v] > surface * (1 + tolerance))
        count += (hits.inside[v] & ~hidden).long()
    return count


@torch.no_grad()
def explained_by_environment(
    gaussians: Gaussians,
    cameras: Sequence[Camera],
    images: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor | None],
    environment: torch.Tensor,
    tolerance: float,
    backend: str = "auto",
) -> torch.Tensor:
    """[N] bool: Gaussians the environment colour explains: their colour is the environment's, and no
    view's image is nearer the render with them than without them.

    A Gaussian whose base colour (SH degree 0) is within `tolerance` of `environment` in every channel
    is a candidate. The scene, and the scene without the candidates, are rendered into each view over
    the environment; without them a view shows there what lies behind them (the environment itself
    where nothing does, the surface in front where they are hidden). A candidate is kept when, in some
    view, the image at its pixel (where the mask counts) is nearer the render with the candidates than
    without them by more than `tolerance` (largest channel difference): a dark line on a brighter
    floor. Fitting paints the void beyond a surface's open edge with such Gaussians (a floor carried
    past its edge by stereo and by its coverage loss): every view renders the void there with or without
    them, and from a new angle they are a surface over the void.

    Args:
        gaussians: the scene; cameras: pinhole cameras (V = 1 each).
        images: per camera [H, W, 3] in [0, 1] at its size; masks: per camera [H, W] (1 where the pixel
            counts) or None.
        environment: [3] the colour behind the splats in [0, 1].
        tolerance: colour units.
    """
    from .render import rasterize

    environment = environment.to(gaussians.sh.dtype)
    base = sh_to_rgb(gaussians.sh, gaussians.means, degree=0).clamp(0, 1)  # degree 0: any direction
    candidate = (base - environment).abs().amax(-1) <= tolerance
    if not bool(candidate.any()):
        return candidate
    others = select_gaussians(gaussians, ~candidate)
    needed = torch.zeros(len(gaussians), dtype=torch.bool)
    for camera, image, mask in zip(cameras, images, masks, strict=True):
        renders = [
            rasterize(g, camera, sh_degree=0, background=environment, backend=backend).rgb[0]
            for g in (gaussians, others)
        ]
        hits = camera.pixel_hits(gaussians.means)
        rows, cols = hits.rows[0], hits.cols[0]
        seen = image[rows, cols]
        error_with, error_without = ((seen - r[rows, cols]).abs().amax(-1) for r in renders)
        counts = hits.inside[0] if mask is None else hits.inside[0] & (mask[rows, cols] > 0.5)
        needed |= counts & (error_without - error_with > tolerance)
    return candidate & ~needed


def nearest_distance(points: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """[N] distance from each point [N, 3] to its nearest reference point [M, 3] (inf when M = 0)."""
    if len(reference) == 0:
        return torch.full((len(points),), math.inf)
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(reference.double().numpy()).query(points.double().numpy(), k=1)
    return torch.from_numpy(distance).float()


def plane_basis(plane: Plane) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin [3], first axis [3], second axis [3]) of a plane's own 2D coordinates: the origin is the
    plane's point nearest the world origin, the axes unit and in the plane. For a plane facing up (the
    floor) they are world x and y; otherwise the first is horizontal (along a wall) and the second
    points as far up as the plane allows."""
    n = np.asarray(plane.normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    first = np.array([1.0, 0.0, 0.0]) if abs(n[2]) > 0.9 else np.cross([0.0, 0.0, 1.0], n)
    first = first - np.dot(first, n) * n
    first /= np.linalg.norm(first)
    second = np.cross(n, first)
    return n * plane.offset, first, second


def plane_fill(
    observed: torch.Tensor, colors: torch.Tensor, plane: Plane, spacing: float, neighbours: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on `plane` where the observed points on it leave gaps inside their outline.

    A set's floor continues under and behind what stands on it, a wall behind what stood before it,
    even where no camera saw them; a hole in either shows as a dark pit (from above, or where the
    actors stood in front of the wall in most frames). In the plane's own coordinates (`plane_basis`),
    each empty cell of the `spacing` grid inside the convex hull of the observed points gets a point,
    coloured by the mean of its `neighbours` nearest observed ones.

    Args:
        observed: [M, 3] world points on the plane; colors: [M, 3] their colours.
        plane: the plane they lie on; spacing: grid cell edge, world units.

    Returns:
        (points [K, 3] on the plane, colors [K, 3]).
    """
    if len(observed) < 3:
        return torch.zeros(0, 3), torch.zeros(0, 3)
    from scipy.spatial import ConvexHull, Delaunay, QhullError, cKDTree

    origin, first, second = plane_basis(plane)
    flat = (observed.double().numpy() - origin) @ np.stack([first, second], axis=1)
    try:
        hull = ConvexHull(flat)
    except QhullError:  # all on one line: no inside to fill
        return torch.zeros(0, 3), torch.zeros(0, 3)
    lo, hi = flat[hull.vertices].min(0), flat[hull.vertices].max(0)
    us = np.arange(lo[0] + spacing / 2, hi[0], spacing)
    vs = np.arange(lo[1] + spacing / 2, hi[1], spacing)
    grid = np.stack(np.meshgrid(us, vs, indexing="ij"), -1).reshape(-1, 2)
    grid = grid[Delaunay(flat[hull.vertices]).find_simplex(grid) >= 0]
    tree = cKDTree(flat)
    empty = grid[tree.query(grid, k=1)[0] > spacing]
    if len(empty) == 0:
        return torch.zeros(0, 3), torch.zeros(0, 3)
    _, nearest = tree.query(empty, k=min(neighbours, len(flat)))
    fill = colors.double().numpy()[np.atleast_2d(nearest.reshape(len(empty), -1))].mean(1)
    points = origin + empty[:, :1] * first + empty[:, 1:] * second
    return torch.from_numpy(points).float(), torch.from_numpy(fill).float()


@torch.no_grad()
def alpha_in_front(
    gaussians: Gaussians,
    camera: Camera,
    depth: torch.Tensor,
    tolerance: float = 0.05,
    empty_is_free: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """[H, W] coverage of what lies in front of a camera's true first surface: floaters.

    The Gaussians whose centre is nearer than (1 - tolerance) x the true depth at the pixel the centre
    projects to are rendered alone; their alpha is what would cover the true surface. (A Gaussian is
    judged by its centre: the rasterizer cannot cut each pixel's blend at a depth of its own.)

    Args:
        gaussians: the scene; camera: one pinhole camera (V = 1).
        depth: [H, W] the true first surface's z-depth at the camera's size; 0 where there is none.
        empty_is_free: a Gaussian projecting where the depth is 0 counts as in front (the depth says
            nothing is there, as a synthetic take's truth does), or not (the depth is unknown there, as
            stereo's is).
    """
    from .render import rasterize

    hits = camera.pixel_hits(gaussians.means)
    true = depth[hits.rows[0], hits.cols[0]].to(hits.depth.dtype)
    front = hits.inside[0] & (((true <= 0) & empty_is_free) | ((true > 0) & (hits.depth[0] < true * (1 - tolerance))))
    if not bool(front.any()):
        return torch.zeros(depth.shape)
    return rasterize(select_gaussians(gaussians, front), camera, backend=backend).alpha[0]


def plane_axes(plane: Plane, front: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two in-plane unit axes u, v and the unit normal towards the `front` side (sign of n·X - offset
    where the cameras are): [3] each, with u x v = -normal (so that a camera with x = u, y = v looks
    at the plane from the front)."""
    n = torch.tensor(plane.normal, dtype=torch.float64)
    n = n / n.norm() * (1.0 if front >= 0 else -1.0)
    u = _tangents(n[None])[0]
    return u, torch.linalg.cross(u, n), n


def plane_camera(
    plane: Plane, front: float, centre: torch.Tensor, pixel: float, size: int, distance: float = 1.0
) -> Camera:
    """A square pinhole camera looking square-on at `plane` from its `front` side.

    Args:
        centre: [3] the plane point at the image centre (world).
        pixel: world units one pixel spans on the plane; size: image edge in pixels.
        distance: of the camera from the plane, world units.

    Returns:
        One camera (V = 1) whose pixel (x, y) sees the plane point centre + ((x - c) u + (y - c) v) pixel,
        c = (size - 1) / 2, with u, v from `plane_axes`.
    """
    u, v, n = plane_axes(plane, front)
    rotation = torch.stack([u, v, -n])  # rows: the camera's x, y, z axes in the world
    normal = torch.tensor(plane.normal, dtype=torch.float64)
    centre = centre.to(torch.float64)
    on_plane = centre - (centre @ normal - plane.offset) * normal
    position = on_plane + distance * n
    cam_from_world = torch.eye(4, dtype=torch.float64)
    cam_from_world[:3, :3] = rotation
    cam_from_world[:3, 3] = -rotation @ position
    focal, c = distance / pixel, (size - 1) / 2
    K = torch.tensor([[focal, 0.0, c], [0.0, focal, c], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return Camera.create(["plane"], K[None], cam_from_world[None], [size], [size])


def plane_coverage_loss(
    members: Gaussians,
    plane: Plane,
    front: float,
    centre: torch.Tensor,
    pixel: float,
    size: int,
    cell: float,
    backend: str = "auto",
) -> torch.Tensor:
    """Mean (1 - alpha) of a plane's own Gaussians seen square-on, over the window's pixels inside the
    area they stand on.

    The area is the interior of the `cell` grid (in the plane's u, v) the members' centres occupy: a
    pixel counts when its cell and that cell's four neighbours hold a member, so holes between surfels
    count and the plane's outline is not pushed outwards.

    Args:
        members: the Gaussians of this plane (alone: nothing else is rendered).
        plane, front: the plane and the side it is seen from (see `plane_axes`).
        centre, pixel, size: the window (see `plane_camera`).
        cell: grid edge, world units (about the starting surfels' spacing).

    Returns:
        Scalar loss (0 where the window holds none of the area).
    """
    from .render import rasterize

    u, v, _ = plane_axes(plane, front)
    axes = torch.stack([u, v], 1)
    c = (size - 1) / 2
    steps = (torch.arange(size, dtype=torch.float64) - c) * pixel
    origin = centre.double() @ axes
    grid_u = torch.floor((origin[0] + steps) / cell).long()  # [size] each pixel column's cell
    grid_v = torch.floor((origin[1] + steps) / cell).long()  # [size] each pixel row's cell
    corner = torch.stack([grid_u[0], grid_v[0]]) - 1
    extent = torch.stack([grid_u[-1], grid_v[-1]]) - corner + 2  # the window's cells and a ring around them
    cells = torch.floor((members.means.detach().double() @ axes) / cell).long() - corner
    cells = cells[((cells >= 0) & (cells < extent)).all(-1)]
    occupied = torch.zeros(int(extent[1]), int(extent[0]), dtype=torch.bool)  # [v, u]
    occupied[cells[:, 1], cells[:, 0]] = True
    interior = (
        occupied[1:-1, 1:-1] & occupied[:-2, 1:-1] & occupied[2:, 1:-1] & occupied[1:-1, :-2] & occupied[1:-1, 2:]
    )
    required = interior[(grid_v - grid_v[0])[:, None], (grid_u - grid_u[0])[None, :]].float()  # [y, x]
    if not bool(required.any()):
        return members.means.sum() * 0
    camera = plane_camera(plane, front, centre, pixel, size).to(members.means.dtype)
    alpha = rasterize(members, camera, sh_degree=0, backend=backend).alpha[0]
    return ((1 - alpha) * required).sum() / required.sum()
