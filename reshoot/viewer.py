"""`reshoot view WS [--shot NAME]`: an interactive 3D review of a workspace in the browser, served by viser.

What the workspace has is shown, in the registration's world frame (z up, metres):
- the registered cameras as frusta (production cameras red, survey cameras grey), named;
- the reconstruction: the static set as Gaussian splats (or, before `reshoot reconstruct`, the
  registration's sparse points), and the actors of the frame on the slider;
- the layout: each entity's box at that frame (characters orange, props blue) and each character's
  path over the take on the floor;
- with `--shot`, the shot's camera path (a line through its centres) and its camera at that frame.
A "frame" slider moves the actors, the boxes and the shot camera through the take. viser serves its
own prebuilt client from the package: nothing is fetched from the network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.errors import InputError
from reshoot.geometry.splats.gaussians import Gaussians, select_gaussians
from reshoot.geometry.splats.sh import C0
from reshoot.render import SplatScene, load_splat_scene

MAX_SPLATS = 300_000
"""The browser draws at most this many Gaussians of the set (the most opaque), to stay interactive."""
PRODUCTION_COLOUR, SURVEY_COLOUR, SHOT_COLOUR = (220, 40, 40), (150, 150, 150), (30, 170, 60)
CHARACTER_COLOUR, PROP_COLOUR = (240, 140, 20), (40, 110, 230)


@dataclass(frozen=True)
class ViewerContent:
    """What of a workspace the viewer shows (anything but the cameras may be missing).

    Attributes:
        first_frame, frames: the take.
        cameras: the registered cameras, then the survey's photos (named survey/<stem>); roles: name → role.
        points: [P, 3] sparse points and [P, 3] uint8 colours, or None.
        scene: the reconstruction (`reshoot.render.SplatScene`), or None.
        entities: the layout's `EntityTrack`s (empty without a layout).
        shot: the shot's name, its camera (one) and its poses per frame {take frame: [4, 4] cam_from_world}, or None.
    """

    first_frame: int
    frames: int
    cameras: Camera
    roles: dict[str, str]
    points: tuple[np.ndarray, np.ndarray] | None
    scene: SplatScene | None
    entities: list
    shot: tuple[str, Camera, dict[int, np.ndarray]] | None


def load_viewer_content(workspace: str | Path, shot: str | None = None) -> ViewerContent:
    """Read what the viewer shows from a workspace.

    Raises:
        InputError: the workspace is not registered yet, or `shot` does not exist.
    """
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.workspace import Workspace, load_workspace

    root = Path(workspace)
    settings = load_workspace(root)
    ws = Workspace(root)
    if not ws.cameras.is_file():
        raise InputError(f"{root}: nothing to view yet ({ws.cameras} is missing); run `reshoot register {root}`.")
    document = read_cameras_json(ws.cameras)
    cameras = document.cameras
    roles = {n: str(document.attributes.get(n, {}).get("role", "production")) for n in cameras.names}
    if ws.survey_cameras.is_file():
        survey = read_cameras_json(ws.survey_cameras).cameras
        survey = survey.renamed([f"survey/{n}" for n in survey.names])  # photo stems may repeat camera names
        cameras = Camera.cat([cameras, survey])
        roles.update({n: "survey" for n in survey.names})
    points = None
    if ws.points.is_file():
        from reshoot.static_set import read_sparse_points

        xyz, colours = read_sparse_points(ws.points)
        if len(colours) != len(xyz):  # a cloud written without colours
            colours = np.full_like(xyz, 0.5)
        points = (xyz.astype(np.float32), (colours * 255 + 0.5).astype(np.uint8))
    scene = None
    if ws.set_splats.is_file():
        scene = load_splat_scene(root)
    entities: list = []
    if ws.layout.is_file():
        from reshoot.scene import scene_facts

        entities = list(scene_facts(root).entities.values())
    shot_content = None
    if shot is not None:
        from reshoot.shot_io import read_shot_document

        shot_document = read_shot_document(root, shot)
        path = shot_document.paths[shot]
        poses = {int(f): m.numpy() for f, m in zip(path.frames.tolist(), path.cam_from_world)}
        shot_content = (shot, shot_document.cameras.select(0), poses)
    return ViewerContent(settings.first_frame, settings.frames, cameras, roles, points, scene, entities, shot_content)


def splat_arrays(gaussians: Gaussians, limit: int = MAX_SPLATS) -> dict[str, np.ndarray]:
    """viser's `add_gaussian_splats` arguments of Gaussians: centers [N, 3], covariances [N, 3, 3], rgbs [N, 3]
    (the view-independent colour, SH band 0) and opacities [N, 1]; the `limit` most opaque when there are more."""
    if len(gaussians) > limit:
        keep = torch.zeros(len(gaussians), dtype=torch.bool)
        keep[torch.topk(gaussians.logit_opacities, limit).indices] = True
        gaussians = select_gaussians(gaussians, keep)
    with torch.no_grad():
        return {
            "centers": gaussians.means.float().numpy(),
            "covariances": gaussians.covariances().float().numpy(),
            "rgbs": (gaussians.sh[:, 0] * C0 + 0.5).clamp(0, 1).float().numpy(),
            "opacities": gaussians.opacities.float().numpy()[:, None],
        }


def _frustum(server, name: str, camera: Camera, cam_from_world: np.ndarray, colour, scale: float):
    """A camera frustum at a pose (OpenCV axes, as viser's frusta)."""
    import viser.transforms as vtf

    world_from_cam = np.linalg.inv(cam_from_world)
    height = float(camera.height[0])
    fov = 2 * float(np.arctan2(height / 2, float(camera.K[0, 1, 1])))
    return server.scene.add_camera_frustum(
        name,
        fov=fov,
        aspect=float(camera.width[0]) / height,
        scale=scale,
        color=colour,
        wxyz=vtf.SO3.from_matrix(world_from_cam[:3, :3]).wxyz,
        position=world_from_cam[:3, 3],
    )


class Viewer:
    """The viewer's scene on a viser server, moved through the take by `show_frame`."""

    def __init__(self, server, content: ViewerContent) -> None:
        self.server, self.content = server, content
        cameras = content.cameras
        extent = float(np.ptp(cameras.centers.numpy(), axis=0).max()) if len(cameras) > 1 else 1.0
        self.scale = max(0.05 * extent, 0.05)
        for i, name in enumerate(cameras.names):
            survey = content.roles.get(name) == "survey"
            colour, scale = (SURVEY_COLOUR, 0.5 * self.scale) if survey else (PRODUCTION_COLOUR, self.scale)
            _frustum(server, f"/cameras/{name}", cameras.select(i), cameras.cam_from_world[i].numpy(), colour, scale)
            if not survey:  # dozens of photos: their frusta alone
                server.scene.add_label(f"/cameras/{name}/label", name)
        if content.scene is not None:
            server.scene.add_gaussian_splats("/set", **splat_arrays(content.scene.background))
        elif content.points is not None:
            server.scene.add_point_cloud("/points", points=content.points[0], colors=content.points[1], point_size=0.02)
        for entity in content.entities:
            if entity.kind == "character":
                centres = entity.boxes.mean(axis=1)
                path = np.concatenate([centres[:, :2], np.zeros((len(centres), 1))], axis=1).astype(np.float32)
                if len(path) > 1:
                    segments = np.stack([path[:-1], path[1:]], axis=1)
                    server.scene.add_line_segments(
                        f"/layout/paths/{entity.name}",
                        points=segments,
                        colors=CHARACTER_COLOUR,
                        thickness=3.0,
                        thickness_units="screen",
                    )
        if content.shot is not None:
            name, _, poses = content.shot
            centres = np.array([np.linalg.inv(m)[:3, 3] for m in poses.values()], dtype=np.float32)
            if len(centres) > 1:
                server.scene.add_line_segments(
                    f"/shot/{name}/path",
                    points=np.stack([centres[:-1], centres[1:]], 1),
                    colors=SHOT_COLOUR,
                    thickness=3.0,
                    thickness_units="screen",
                )
        self.slider = server.gui.add_slider(
            "frame",
            min=content.first_frame,
            max=content.first_frame + max(content.frames - 1, 1),
            step=1,
            initial_value=content.first_frame,
        )
        self.slider.on_update(lambda _: self.show_frame(int(self.slider.value)))
        # From above and behind the rig's middle, looking at the floor under it (z up).
        target = cameras.centers.numpy().mean(axis=0) * np.array([1.0, 1.0, 0.0])
        reach = max(extent, 1.0)
        server.initial_camera.position = tuple(float(v) for v in target + reach * np.array([0.3, -0.9, 1.1]))
        server.initial_camera.look_at = tuple(float(v) for v in target)
        server.initial_camera.up = (0.0, 0.0, 1.0)
        self.show_frame(content.first_frame)

    def show_frame(self, frame: int) -> None:
        """Put the actors, the layout boxes and the shot camera at take frame `frame`."""
        server, content = self.server, self.content
        actors = content.scene.actors_at(frame) if content.scene is not None else None
        if actors is not None:
            server.scene.add_gaussian_splats("/actors", **splat_arrays(actors))
        elif content.scene is not None:
            server.scene.remove_by_name("/actors")
        index = frame - content.first_frame
        for entity in content.entities:
            low, high = entity.box_at(index)
            server.scene.add_box(
                f"/layout/boxes/{entity.name}",
                dimensions=tuple(float(v) for v in high - low),
                position=tuple(float(v) for v in (low + high) / 2),
                color=CHARACTER_COLOUR if entity.kind == "character" else PROP_COLOUR,
                wireframe=True,
            )
        if content.shot is not None:
            name, camera, poses = content.shot
            if frame in poses:
                _frustum(server, f"/shot/{name}/camera", camera, poses[frame], SHOT_COLOUR, 1.5 * self.scale)


def serve(workspace: str | Path, shot: str | None = None, host: str = "127.0.0.1", port: int = 8080, ready=None):
    """Serve the viewer until interrupted (Ctrl-C).

    Args:
        ready: called with the URL once the scene is up (the CLI prints it).

    Raises:
        InputError: see `load_viewer_content`; the port is taken.
    """
    import viser

    content = load_viewer_content(workspace, shot)
    try:
        server = viser.ViserServer(host=host, port=port, verbose=False)
    except OSError as exc:
        raise InputError(f"cannot serve on {host}:{port} ({exc}); choose another --port.") from None
    try:
        Viewer(server, content)
        if ready is not None:
            ready(f"http://{host}:{server.get_port()}/")
        while True:
            time.sleep(1.0)
    finally:
        server.stop()
