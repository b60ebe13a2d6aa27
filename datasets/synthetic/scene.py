"""A procedural film set from one seed: floor, walls, props, walking characters and the cameras.

World frame (DESIGN.md §3): z up, floor at z = 0, metres. Everything is built from triangle meshes
made by open3d, each a `Part` with a texture and a pose per frame; the renderer casts rays against
them. Entity ids: characters 0..C-1, then props C..C+P-1; set surfaces (floor, walls) are -1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import focal_px_from_mm, look_at, look_down

from .config import PRODUCTION_LAYOUT, SynthConfig
from .textures import PATTERNS, skin_texture, surface_texture

WALL_HEIGHT = 3.0
NO_ENTITY = -1


@dataclass
class Part:
    """One rigid, textured mesh.

    Attributes:
        name: e.g. "floor", "character_1/leg_left".
        shape: "box" | "cylinder" | "sphere"; decides texture mapping and smooth normals.
        dims: box [sx, sy, sz] full size; cylinder [radius, height]; sphere [radius]. Metres.
        vertices: [Nv, 3] float32, local frame (shape centred at the origin; cylinder axis = z).
        triangles: [Nt, 3] uint32.
        texture: [H, W, 3] float32 albedo in [0, 1].
        texels_per_m: texture resolution.
        entity: entity id, or -1 for the set itself.
        poses: [1, 4, 4] (static) or [T, 4, 4] (per frame) world_from_local, float64.
    """

    name: str
    shape: str
    dims: np.ndarray
    vertices: np.ndarray
    triangles: np.ndarray
    texture: np.ndarray
    texels_per_m: float
    entity: int
    poses: np.ndarray

    @property
    def is_static(self) -> bool:
        return self.poses.shape[0] == 1

    def pose(self, frame: int) -> np.ndarray:
        """world_from_local [4, 4] at a scene frame (0-based; the take frame when there are no offsets)."""
        return self.poses[0 if self.is_static else frame]

    def world_vertices(self, frame: int) -> np.ndarray:
        """[Nv, 3] float32 vertices in the world at `frame`."""
        pose = self.pose(frame)
        return (self.vertices @ pose[:3, :3].T + pose[:3, 3]).astype(np.float32)


@dataclass(frozen=True)
class Entity:
    """A character or prop of the set (ground truth)."""

    id: int
    name: str
    kind: str  # "character" | "prop"
    part_indices: tuple[int, ...]


@dataclass
class FilmSet:
    """The whole scene of a synthetic take.

    Attributes:
        floor_size: (x, y) extent of the floor in metres, centred at the origin.
        parts: all meshes; static ones first.
        entities: characters then props, ids as in the masks.
        cameras: production cameras first, then the ground-truth-only ones.
        roles: camera name → "production" | "ground_truth".
        frames: frames of action (`SynthConfig.scene_frames`: the early cameras' pre-roll, then the
            take); poses are indexed by scene frame.
        survey: cameras of the survey photos of the empty set (None without a survey).
        walls: which walls stand ("back", "left", "right").
    """

    floor_size: tuple[float, float]
    parts: list[Part]
    entities: list[Entity]
    cameras: Camera
    roles: dict[str, str]
    frames: int
    survey: Camera | None = None
    walls: list[str] = field(default_factory=list)

    def entity_box(self, entity: Entity, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """World axis-aligned box (min [3], max [3]) of an entity's geometry at `frame`."""
        verts = np.concatenate([self.parts[i].world_vertices(frame) for i in entity.part_indices])
        return verts.min(axis=0).astype(np.float64), verts.max(axis=0).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Meshes (open3d makes them; we keep plain arrays)


def _mesh_arrays(mesh: o3d.geometry.TriangleMesh) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.triangles, dtype=np.uint32)


def _box_mesh(size) -> tuple[np.ndarray, np.ndarray]:
    sx, sy, sz = (float(s) for s in size)
    mesh = o3d.geometry.TriangleMesh.create_box(sx, sy, sz)
    mesh.translate((-sx / 2, -sy / 2, -sz / 2))
    return _mesh_arrays(mesh)


def _cylinder_mesh(radius: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    return _mesh_arrays(o3d.geometry.TriangleMesh.create_cylinder(radius, height, resolution=32, split=1))


def _sphere_mesh(radius: float) -> tuple[np.ndarray, np.ndarray]:
    return _mesh_arrays(o3d.geometry.TriangleMesh.create_sphere(radius, resolution=14))


def _translation(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    return m


def _rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
    return m


def _box_part(name, size, texture, tpm, entity, poses) -> Part:
    v, t = _box_mesh(size)
    return Part(name, "box", np.asarray(size, float), v, t, texture, tpm, entity, np.asarray(poses))


def _cylinder_part(name, radius, height, texture, tpm, entity, poses) -> Part:
    v, t = _cylinder_mesh(radius, height)
    return Part(name, "cylinder", np.array([radius, height]), v, t, texture, tpm, entity, np.asarray(poses))


def _box_texture(rng, size, tpm, pattern=None, glyphs=6.0, saturation=0.55) -> np.ndarray:
    dims = sorted(float(s) for s in size)
    return surface_texture(rng, dims[2] + dims[1] + 0.5, max(dims[2], 0.5), tpm, pattern, glyphs, saturation)


def _cylinder_texture(rng, radius, height, tpm, pattern=None, glyphs=6.0) -> np.ndarray:
    return surface_texture(rng, 2 * np.pi * radius, max(height, 2 * radius), tpm, pattern, glyphs)


# ---------------------------------------------------------------------------------------------
# The set


def _build_room(rng: np.random.Generator, config: SynthConfig) -> tuple[tuple[float, float], list[Part], list[str]]:
    sx, sy = float(rng.uniform(7.5, 9.0)), float(rng.uniform(6.5, 8.0))
    tpm = config.texels_per_m
    parts = [
        _box_part(
            "floor",
            (sx, sy, 0.1),
            surface_texture(rng, sx, sy, tpm, str(rng.choice(["planks", "tiles"])), 4.0),
            tpm,
            NO_ENTITY,
            [_translation(0, 0, -0.05)],
        )
    ]
    walls = ["back", "left", "right"][: int(rng.integers(2, 4))]
    for wall in walls:
        pattern = str(rng.choice(PATTERNS))
        if wall == "back":
            size, pose = (sx, 0.1, WALL_HEIGHT), _translation(0, sy / 2 + 0.05, WALL_HEIGHT / 2)
            tex = surface_texture(rng, sx + 0.2, WALL_HEIGHT, tpm, pattern, 8.0)
        else:
            sign = -1 if wall == "left" else 1
            size, pose = (0.1, sy, WALL_HEIGHT), _translation(sign * (sx / 2 + 0.05), 0, WALL_HEIGHT / 2)
            tex = surface_texture(rng, sy + 0.2, WALL_HEIGHT, tpm, pattern, 8.0)
        parts.append(_box_part(f"wall_{wall}", size, tex, tpm, NO_ENTITY, [pose]))
    return (sx, sy), parts, walls


PROP_KINDS = ("crate", "barrel", "table", "lamp", "cabinet")


def _build_prop(rng, kind: str, entity: int, name: str, xy, yaw: float, tpm: float) -> tuple[list[Part], float]:
    """Parts of one prop standing on the floor at `xy`, and its footprint radius (metres).

    Every prop is built around a vertical axis through its centre, so the centre of its 3D box
    lies on solid geometry (a column, a pole, a body) and projects inside its own mask.
    """
    base = _translation(xy[0], xy[1], 0.0) @ _rot_z(yaw)
    parts: list[Part] = []
    if kind in ("crate", "cabinet"):
        if kind == "crate":
            size = (rng.uniform(0.45, 0.85), rng.uniform(0.45, 0.85), rng.uniform(0.45, 0.85))
        else:
            size = (rng.uniform(0.5, 0.8), rng.uniform(0.35, 0.5), rng.uniform(1.0, 1.4))
        tex = _box_texture(rng, size, tpm, str(rng.choice(["planks", "stripes", "checks"])), 12.0, 0.7)
        parts.append(_box_part(f"{name}/body", size, tex, tpm, entity, [base @ _translation(0, 0, size[2] / 2)]))
        return parts, float(np.hypot(size[0], size[1]) / 2)
    if kind == "barrel":
        r, h = rng.uniform(0.22, 0.32), rng.uniform(0.75, 1.0)
        tex = _cylinder_texture(rng, r, h, tpm, str(rng.choice(["stripes", "plaid"])), 12.0)
        parts.append(_cylinder_part(f"{name}/body", r, h, tex, tpm, entity, [base @ _translation(0, 0, h / 2)]))
        return parts, float(r)
    if kind == "table":
        r_top, top_z = rng.uniform(0.4, 0.55), rng.uniform(0.7, 0.78)
        wood = surface_texture(rng, 2 * np.pi * r_top, 2 * r_top, tpm, "planks", 10.0)
        metal = surface_texture(rng, 0.5, 0.8, tpm, None, 2.0, 0.2)
        parts += [
            _cylinder_part(f"{name}/base", 0.25, 0.03, metal, tpm, entity, [base @ _translation(0, 0, 0.015)]),
            _cylinder_part(
                f"{name}/column",
                0.05,
                top_z - 0.03,
                metal,
                tpm,
                entity,
                [base @ _translation(0, 0, 0.03 + (top_z - 0.03) / 2)],
            ),
            _cylinder_part(f"{name}/top", r_top, 0.05, wood, tpm, entity, [base @ _translation(0, 0, top_z + 0.025)]),
        ]
        return parts, float(r_top)
    if kind == "lamp":
        pole_h = rng.uniform(1.35, 1.6)
        shade_r = rng.uniform(0.18, 0.24)
        metal = surface_texture(rng, 0.4, pole_h, tpm, None, 2.0, 0.3)
        cloth = _cylinder_texture(rng, shade_r, 0.3, tpm, str(rng.choice(["stripes", "checks", "plaid"])), 10.0)
        parts += [
            _cylinder_part(f"{name}/base", 0.17, 0.03, metal, tpm, entity, [base @ _translation(0, 0, 0.015)]),
            _cylinder_part(f"{name}/pole", 0.025, pole_h, metal, tpm, entity, [base @ _translation(0, 0, pole_h / 2)]),
            _cylinder_part(f"{name}/shade", shade_r, 0.3, cloth, tpm, entity, [base @ _translation(0, 0, pole_h)]),
        ]
        return parts, float(shade_r)
    raise ValueError(f"unknown prop kind {kind!r}")


ACTION_X = (-2.3, 2.3)
ACTION_Y = (-1.2, 2.0)


def _place_props(rng, count: int) -> list[tuple[str, np.ndarray, float]]:
    """Kinds, floor positions and yaws of the props, at least 0.9 m apart, inside the action area."""
    kinds = list(rng.permutation(PROP_KINDS))
    kinds = (kinds * 2)[:count]
    placed: list[np.ndarray] = []
    for _ in range(10000):
        if len(placed) == count:
            break
        xy = np.array([rng.uniform(*ACTION_X), rng.uniform(*ACTION_Y)])
        if all(np.linalg.norm(xy - p) > 1.4 for p in placed):
            placed.append(xy)
    if len(placed) < count:
        raise RuntimeError("could not place the props")  # cannot happen for <= 6 props in this area
    return [(k, p, float(rng.uniform(0, 2 * np.pi))) for k, p in zip(kinds, placed)]


# ---------------------------------------------------------------------------------------------
# Characters


@dataclass(frozen=True)
class Walk:
    """A straight walk: floor positions from start to end, `progress` of the way at each scene frame."""

    start: np.ndarray  # [2] metres
    end: np.ndarray  # [2]
    progress: np.ndarray  # [T] in [0, 1], non-decreasing

    def position(self) -> np.ndarray:
        """[T, 2] floor positions."""
        return self.start[None] + self.progress[:, None] * (self.end - self.start)[None]


MAX_WALK_M = 3.5  # the longest straight walk that fits the action area at most headings
PAUSE_SECONDS = (0.4, 1.0)  # a varied walk stops for this long ...
STRIDE_SECONDS = (1.0, 2.0)  # ... after walking for this long
RAMP_SECONDS = 0.25  # to speed up or slow down


def _walk_progress(rng: np.random.Generator, config: SynthConfig) -> tuple[np.ndarray, float]:
    """[T] share of the walk done at each scene frame (T = `config.scene_frames`, at `config.base_fps`),
    and the seconds the walk takes at full speed.

    "steady": constant speed over the take's frames, standing before them (the early cameras'
    pre-roll). "varied": walking and stopping in turns over the whole scene, with smooth starts and
    stops: the events that sync by motion needs.
    """
    frames, steps, rate = config.scene_frames, config.steps_per_take_frame, config.base_fps
    if config.pace == "steady":
        walking = (config.frames - 1) * steps + 1  # scene frames from take frame 0 to the last
        take = np.linspace(0.0, 1.0, walking) if walking > 1 else np.zeros(1)
        done = np.concatenate([np.zeros(config.spread * steps), take])
        done = np.concatenate([done, np.ones(frames - len(done))])
        return done, max(config.frames - 1, 1) / config.take_fps
    speed = np.zeros(frames)
    frame, walking = 0, bool(rng.random() < 0.5)
    while frame < frames:
        seconds = rng.uniform(*(STRIDE_SECONDS if walking else PAUSE_SECONDS))
        length = max(1, int(round(seconds * rate)))
        speed[frame : frame + length] = 1.0 if walking else 0.0
        frame, walking = frame + length, not walking
    ramp = max(1, int(round(RAMP_SECONDS * rate)))
    window = np.hanning(2 * ramp + 1)
    speed = np.convolve(np.pad(speed, ramp, mode="edge"), window / window.sum(), mode="valid")
    done = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    if done[-1] <= 0:  # a scene of one frame
        return done, 1.0 / rate
    return done / done[-1], float(done[-1]) / rate


def _segments_cross(a0, a1, b0, b1) -> bool:
    def orient(p, q, r):
        return np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    return orient(a0, a1, b0) != orient(a0, a1, b1) and orient(b0, b1, a0) != orient(b0, b1, a1)


def _point_segment_distance(p, a, b) -> float:
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-12), 0, 1)
    return float(np.linalg.norm(p - (a + t * ab)))


def _plan_walks(
    rng,
    count: int,
    config: SynthConfig,
    props: list[tuple[np.ndarray, float]],
    progress: list[tuple[np.ndarray, float]],
) -> list[Walk]:
    """Straight walks that avoid the props and each other and (when there are several) cross.

    Every later walk must cross an earlier one, so characters occlude each other from some camera.
    `progress` holds each walk's share done per scene frame (`_walk_progress`).
    """
    walks: list[Walk] = []
    for attempt in range(20000):
        if len(walks) == count:
            break
        require_cross = walks and attempt < 15000
        speed = rng.uniform(0.8, 1.3)
        share_done, moving_seconds = progress[len(walks)]
        # Long takes walk slower rather than further: a walk must fit the action area.
        length = min(max(speed * moving_seconds, 0.3), MAX_WALK_M)
        start = np.array([rng.uniform(*ACTION_X), rng.uniform(*ACTION_Y)])
        heading = rng.uniform(0, 2 * np.pi)
        end = start + length * np.array([np.cos(heading), np.sin(heading)])
        if not (ACTION_X[0] <= end[0] <= ACTION_X[1] and ACTION_Y[0] <= end[1] <= ACTION_Y[1]):
            continue
        if any(_point_segment_distance(p, start, end) < r + 0.4 for p, r in props):
            continue
        if require_cross and not any(_segments_cross(start, end, w.start, w.end) for w in walks):
            continue
        candidate = Walk(start, end, share_done)
        track = candidate.position()
        if any(np.linalg.norm(track - w.position(), axis=1).min() < 0.6 for w in walks):
            continue
        walks.append(candidate)
    if len(walks) < count:
        raise RuntimeError("could not plan the walks")  # the relaxed search always succeeds in practice
    return walks


def _build_character(rng, entity: int, name: str, walk: Walk, tpm: float) -> list[Part]:
    """A multi-part figure (torso, head, arms, legs) walking with swinging limbs.

    Body frame: origin on the floor under the character, x forward (walking direction), z up.
    """
    scale = rng.uniform(1.6, 1.9) / 1.75
    shirt = surface_texture(rng, 1.6, 1.0, tpm, str(rng.choice(["stripes", "plaid", "checks"])), 3.0, 0.75)
    pants_pattern = ("stripes", "checks", None)[int(rng.integers(3))]
    pants = surface_texture(rng, 1.6, 1.0, tpm, pants_pattern, 1.5, 0.5)
    head_r = 0.115 * scale
    head_tex_size = max(16, int(round(2 * np.pi * head_r * tpm)))
    # v spans the head height 2r = size / pi texels; hair covers its top 40 %.
    head = skin_texture(rng, head_tex_size, hair_rows=int(0.4 * head_tex_size / np.pi))
    head_tpm = head_tex_size / (2 * np.pi * head_r)

    track = walk.position()
    direction = walk.end - walk.start
    yaw = float(np.arctan2(direction[1], direction[0]))
    distance = np.linalg.norm(track - track[0], axis=1)
    phase = 2 * np.pi * distance / (1.3 * scale) + rng.uniform(0, 2 * np.pi)
    world_from_body = np.stack([_translation(x, y, 0) @ _rot_z(yaw) for x, y in track])

    hip_z, shoulder_z = 0.9 * scale, 1.46 * scale
    leg = np.array([0.14, 0.14, 0.88]) * scale
    arm = np.array([0.11, 0.11, 0.62]) * scale
    # The torso reaches down to a pelvis below the hips, so the centre of the figure's 3D box (at
    # about half its height) lies inside solid geometry rather than in the gap between the legs.
    pelvis_z = 0.78 * scale
    torso = np.array([0.24, 0.40, 1.50 - 0.78]) * scale

    def limb_poses(joint_y: float, joint_z: float, length: float, swing: np.ndarray) -> np.ndarray:
        return np.stack(
            [
                wfb @ _translation(0, joint_y, joint_z) @ _rot_y(a) @ _translation(0, 0, -length / 2)
                for wfb, a in zip(world_from_body, swing)
            ]
        )

    leg_swing = np.radians(26) * np.sin(phase)
    arm_swing = np.radians(22) * np.sin(phase)
    torso_poses = world_from_body @ _translation(0, 0, pelvis_z + torso[2] / 2)
    head_poses = world_from_body @ _translation(0, 0, pelvis_z + torso[2] + 0.01 + head_r)
    head_v, head_t = _sphere_mesh(head_r)
    return [
        _box_part(f"{name}/torso", torso, shirt, tpm, entity, torso_poses),
        Part(f"{name}/head", "sphere", np.array([head_r]), head_v, head_t, head, head_tpm, entity, head_poses),
        _box_part(
            f"{name}/arm_left", arm, shirt, tpm, entity, limb_poses(0.255 * scale, shoulder_z, arm[2], -arm_swing)
        ),
        _box_part(
            f"{name}/arm_right", arm, shirt, tpm, entity, limb_poses(-0.255 * scale, shoulder_z, arm[2], arm_swing)
        ),
        _box_part(f"{name}/leg_left", leg, pants, tpm, entity, limb_poses(0.1 * scale, hip_z, leg[2], leg_swing)),
        _box_part(f"{name}/leg_right", leg, pants, tpm, entity, limb_poses(-0.1 * scale, hip_z, leg[2], -leg_swing)),
    ]


# ---------------------------------------------------------------------------------------------
# Cameras


def _production_eye_and_lens(rng, name: str, sx: float, sy: float) -> tuple[np.ndarray, float]:
    """Camera centre (world, metres) and 35 mm-equivalent focal length of a production camera."""
    eye_h = rng.uniform(1.5, 1.75)
    if name == "a_wide":
        return np.array([rng.uniform(-0.4, 0.4), -sy / 2 + 0.5, eye_h]), rng.uniform(24, 28)
    if name in ("b_medium", "c_medium"):
        side = -1 if name == "b_medium" else 1
        return np.array([side * rng.uniform(2.0, 2.6), -sy / 2 + rng.uniform(0.8, 1.2), eye_h]), rng.uniform(35, 42)
    if name == "d_reverse":
        return np.array([rng.uniform(-1.0, 1.0), sy / 2 - rng.uniform(0.5, 0.7), eye_h]), rng.uniform(28, 35)
    side = -1 if name in ("e_medium", "g_medium") else 1
    y = rng.uniform(-1.5, -0.5) if name in ("e_medium", "f_medium") else rng.uniform(0.8, 1.8)
    return np.array([side * (sx / 2 - 0.6), y, eye_h]), rng.uniform(35, 50)


def _build_cameras(rng, config: SynthConfig, floor_size: tuple[float, float]) -> tuple[Camera, dict[str, str]]:
    sx, sy = floor_size
    w, h = config.width, config.height
    names, Ks, poses, dists = [], [], [], []
    action_centre = np.array([0.0, 0.4, 0.9])

    def intrinsics(focal_px: float) -> np.ndarray:
        return np.array([[focal_px, 0, (w - 1) / 2], [0, focal_px, (h - 1) / 2], [0, 0, 1]])

    for name in PRODUCTION_LAYOUT[: config.cameras]:
        eye, focal_mm = _production_eye_and_lens(rng, name, sx, sy)
        target = action_centre + np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(-0.1, 0.1)])
        names.append(name)
        Ks.append(intrinsics(focal_px_from_mm(focal_mm, w)))
        poses.append(look_at(eye, target).numpy())
        dists.append([rng.uniform(-0.12, -0.04), rng.uniform(0.0, 0.03), 0, 0, 0] if config.distortion else [0.0] * 5)

    # Ground-truth-only cameras: never part of the footage.
    overhead_h = rng.uniform(4.0, 6.0)
    half_x = (ACTION_X[1] - ACTION_X[0]) / 2 + 0.6
    half_y = (ACTION_Y[1] - ACTION_Y[0]) / 2 + 0.6
    reach = overhead_h - 1.95  # distance from the lens to the tallest head
    focal = min((w / 2) * reach / half_x, (h / 2) * reach / half_y)
    centre_xy = np.array([0.0, (ACTION_Y[0] + ACTION_Y[1]) / 2])
    names.append("overhead")
    Ks.append(intrinsics(focal))
    poses.append(look_down([centre_xy[0], centre_xy[1], overhead_h]).numpy())
    dists.append([0.0] * 5)

    eye = np.array([rng.choice([-1, 1]) * rng.uniform(2.0, 3.0), -sy / 2 + 0.6, rng.uniform(3.2, 3.8)])
    names.append("high_angle")
    Ks.append(intrinsics(focal_px_from_mm(rng.uniform(24, 28), w)))
    poses.append(look_at(eye, action_centre).numpy())
    dists.append([0.0] * 5)

    extra = np.random.default_rng([config.seed, 2])
    for k in range(config.extra_views):
        names.append(f"view_{k + 1}")
        eye, target, focal_mm = _extra_view(extra, sx, sy, action_centre)
        Ks.append(intrinsics(focal_px_from_mm(focal_mm, w)))
        poses.append((look_down(eye) if np.linalg.norm(eye[:2] - target[:2]) < 0.3 else look_at(eye, target)).numpy())
        dists.append([0.0] * 5)

    cameras = Camera.create(names, np.stack(Ks), np.stack(poses), [w] * len(names), [h] * len(names), dists)
    roles = {n: ("production" if n in PRODUCTION_LAYOUT else "ground_truth") for n in names}
    return cameras, roles


def _extra_view(rng, sx: float, sy: float, action_centre: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A random high camera inside the room looking at the action: (eye [3], target [3], focal in mm)."""
    target = action_centre + np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.2)])
    azimuth, reach = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 3.0)
    eye = np.array([target[0] + reach * np.cos(azimuth), target[1] + reach * np.sin(azimuth), rng.uniform(2.6, 5.5)])
    eye[0] = np.clip(eye[0], -sx / 2 + 0.3, sx / 2 - 0.3)
    eye[1] = np.clip(eye[1], -sy / 2 + 0.3, sy / 2 - 0.3)
    return eye, target, float(rng.uniform(14, 30))


def _build_survey(rng, config: SynthConfig) -> Camera | None:
    """A survey walk around the empty set: photos from a loop at raised eye height, facing the middle.

    The loop runs between the props and the walls, so every side of the set is photographed from
    overlapping viewpoints (15 degrees apart with 24 photos): what lets wide-baseline production
    cameras, such as a reverse, register into one frame.
    """
    if config.survey_frames == 0:
        return None
    w, h = config.width, config.height
    start = rng.uniform(0, 2 * np.pi)
    angles = start + np.linspace(0, 2 * np.pi, config.survey_frames, endpoint=False)
    centre = np.array([0.0, (ACTION_Y[0] + ACTION_Y[1]) / 2])
    focal = focal_px_from_mm(rng.uniform(22, 26), w)
    K = np.array([[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1]])
    poses = []
    for a in angles:
        eye = np.array([centre[0] + 3.2 * np.cos(a), centre[1] + 2.55 * np.sin(a), rng.uniform(1.75, 1.95)])
        target = np.array([centre[0] + rng.uniform(-0.3, 0.3), centre[1] + rng.uniform(-0.3, 0.3), 0.4])
        poses.append(look_at(eye, target).numpy())
    n = config.survey_frames
    return Camera.create([f"{i:06d}" for i in range(n)], np.stack([K] * n), np.stack(poses), [w] * n, [h] * n)


# ---------------------------------------------------------------------------------------------


def build_film_set(config: SynthConfig) -> FilmSet:
    """The set, its action and its cameras, all from `config.seed`."""
    rng = np.random.default_rng(config.seed)
    floor_size, parts, walls = _build_room(rng, config)
    cameras, roles = _build_cameras(rng, config, floor_size)
    survey = _build_survey(np.random.default_rng([config.seed, 1]), config)

    entities: list[Entity] = []
    footprints: list[tuple[np.ndarray, float]] = []
    for i, (kind, xy, yaw) in enumerate(_place_props(rng, config.props)):
        entity = config.characters + i
        name = f"prop_{i + 1}"
        new, radius = _build_prop(rng, kind, entity, name, xy, yaw, config.texels_per_m)
        footprints.append((xy, radius))
        entities.append(Entity(entity, name, "prop", tuple(range(len(parts), len(parts) + len(new)))))
        parts += new

    pace_rng = np.random.default_rng([config.seed, 2])  # its own stream: a varied pace keeps the seed's set
    progress = [_walk_progress(pace_rng, config) for _ in range(config.characters)]
    walks = _plan_walks(rng, config.characters, config, footprints, progress)
    for i, walk in enumerate(walks):
        name = f"character_{i + 1}"
        new = _build_character(rng, i, name, walk, config.texels_per_m)
        start = len(parts)
        parts += new
        entities.insert(i, Entity(i, name, "character", tuple(range(start, start + len(new)))))
    return FilmSet(floor_size, parts, entities, cameras, roles, config.scene_frames, survey, walls)
