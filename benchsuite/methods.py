"""What makes a bench shot's frames: the built-in baselines and researchers' own methods.

A method is a callable `method(inputs: MethodInputs) -> frames`, frames [T, H, W, 3] in [0, 1] (float)
or uint8, one per `inputs.frames`, at the shot's size. It may read anything in the prepared workspace
(the registration, the splats, the layout, the production cameras' footage, the shot's conditioning)
and writes nothing there: the runner writes its frames and scores them.

Built in (`BUILTIN_METHODS`):
    nearest-camera  the production camera nearest the shot camera, reprojected through the render's depth
                    (no occlusion test: the classical baseline); the render where no depth or off-picture;
    splat           the conditioning render as is (the reconstruction's view);
    inpaint         the render, its uncovered pixels (coverage < 0.5) filled by OpenCV's Telea inpainting;
    model           `reshoot synthesize --engine unified` (reshoot's video model, filmed pixels kept).
Plug-ins: a name in the entry-point group `reshoot.bench.methods`, `module:callable`, or a command
(`method_from_command`): "NAME=CMD {inputs} {out}" writes the inputs to a folder and reads NNNNNN.png back.
"""

from __future__ import annotations

import importlib
import json
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from reshoot.geometry.errors import InputError

ENTRY_POINT_GROUP = "reshoot.bench.methods"
COMMAND_TIMEOUT_S = 3600


@dataclass(frozen=True)
class MethodInputs:
    """What a method is given.

    Attributes:
        workspace: the prepared take's workspace (read only).
        shot: the shot to make frames for; its conditioning is rendered (`shots/SHOT/conditioning/`,
            docs/formats.md), its camera is in `shots/SHOT/shot.json`.
        frames: the take frames of the shot, in order.
        width, height: the shot's size in pixels.
    """

    workspace: Path
    shot: str
    frames: tuple[int, ...]
    width: int
    height: int


Method = Callable[[MethodInputs], np.ndarray]


def eight_bit(image: np.ndarray) -> np.ndarray:
    """Float image(s) in [0, 1] (clipped) as uint8, rounded to the nearest code value: what a PNG holds."""
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def _conditioning(inputs: MethodInputs):
    from reshoot.conditioning import read_conditioning_frame
    from reshoot.workspace import Workspace

    folder = Workspace(inputs.workspace).shot(inputs.shot).conditioning
    return [read_conditioning_frame(folder, f) for f in inputs.frames]


def splat(inputs: MethodInputs) -> np.ndarray:
    """The conditioning render: [T, H, W, 3] float32."""
    return np.stack([c.rgb for c in _conditioning(inputs)])


def inpaint(inputs: MethodInputs, radius_px: float = 5.0) -> np.ndarray:
    """The render with its holes (coverage < 0.5) inpainted (OpenCV Telea, `radius_px`): [T, H, W, 3] uint8."""
    import cv2

    out = []
    for c in _conditioning(inputs):
        image = eight_bit(c.rgb)
        holes = (c.alpha < 0.5).astype(np.uint8)
        out.append(cv2.inpaint(image, holes, radius_px, cv2.INPAINT_TELEA) if holes.any() else image)
    return np.stack(out)


def nearest_camera(inputs: MethodInputs) -> np.ndarray:
    """Each frame from the production camera whose centre is nearest the shot camera's: the render's
    surface point of every pixel projected into that camera and its footage sampled (bilinear), the
    render where there is no surface or the point falls outside that camera's picture: [T, H, W, 3] float32."""
    import cv2
    import torch

    from reshoot.datasets.footage import open_footage
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.shot_io import read_shot_document
    from reshoot.workspace import Workspace, load_workspace

    document = read_shot_document(inputs.workspace, inputs.shot)
    path = document.paths[inputs.shot]
    camera = document.cameras.select(0).pinhole()
    shot_frames = [int(f) for f in path.frames]
    registered = read_cameras_json(Workspace(inputs.workspace).cameras)
    production = registered.names_with_role("production", default="production")
    sources = registered.cameras.select(production)
    settings = load_workspace(inputs.workspace)
    rows, cols = np.mgrid[0 : inputs.height, 0 : inputs.width]
    pixels = torch.from_numpy(np.stack([cols, rows], -1).reshape(1, -1, 2).astype(np.float64))
    out = []
    # The footage as filmed (display-encoded, as the render and the truth are), not the working space.
    with open_footage(
        settings.footage, settings.calibration, settings.offsets or None, settings.fps, settings.calibration_units
    ) as footage:
        for frame, conditioning in zip(inputs.frames, _conditioning(inputs)):
            shot_camera = camera.with_pose(path.cam_from_world[shot_frames.index(frame)])
            nearest = int(torch.linalg.norm(sources.centers - shot_camera.centers, dim=-1).argmin())
            source = sources.select(nearest)
            depth = torch.from_numpy(conditioning.depth.reshape(1, -1).astype(np.float64))
            points = shot_camera.unproject(pixels, depth)[0]
            projected = source.project(points)
            uv = projected.pixels[0].numpy().astype(np.float32)
            width, height = int(source.width[0]), int(source.height[0])
            inside = (
                (projected.depth[0].numpy() > 0)
                & (uv[:, 0] >= 0)
                & (uv[:, 0] <= width - 1)
                & (uv[:, 1] >= 0)
                & (uv[:, 1] <= height - 1)
            )
            valid = (conditioning.alpha.reshape(-1) >= 0.5) & (conditioning.depth.reshape(-1) > 0) & inside
            image = footage.source(production[nearest]).read(
                min(max(frame, footage.frames.start), footage.frames.stop - 1)
            )
            maps = uv.reshape(inputs.height, inputs.width, 2)
            sampled = cv2.remap(image.astype(np.float32), maps[..., 0], maps[..., 1], cv2.INTER_LINEAR)
            made = conditioning.rgb.copy()
            made.reshape(-1, 3)[valid] = sampled.reshape(-1, 3)[valid]
            out.append(made)
    return np.stack(out)


def model(inputs: MethodInputs) -> np.ndarray:
    """reshoot's unified video model through `reshoot synthesize` (the shipped tiny checkpoint; filmed
    pixels kept): [T, H, W, 3] uint8 as written."""
    import imageio.v3 as iio

    from reshoot.engines import EngineOptions
    from reshoot.synthesis import synthesize
    from reshoot.workspace import Workspace

    synthesize(inputs.workspace, inputs.shot, "unified", EngineOptions())
    frames = Workspace(inputs.workspace).shot(inputs.shot).frames
    return np.stack([iio.imread(frames / f"{f:06d}.png")[..., :3] for f in inputs.frames])


BUILTIN_METHODS: dict[str, Method] = {
    "nearest-camera": nearest_camera,
    "splat": splat,
    "inpaint": inpaint,
    "model": model,
}


def method_names() -> list[str]:
    """Built-in methods, then those plug-ins register (entry points)."""
    plugins = sorted(e.name for e in entry_points(group=ENTRY_POINT_GROUP) if e.name not in BUILTIN_METHODS)
    return list(BUILTIN_METHODS) + plugins


def load_method(spec: str) -> Method:
    """A method by name (built in or entry point), `module:callable`, or a command spec ("NAME=CMD ...",
    see `method_from_command`; recognised by its `{out}`).

    Raises:
        InputError: no such method, or it does not load or is not callable (with the reason).
    """
    if "{out}" in spec:
        return method_from_command(spec)
    if spec in BUILTIN_METHODS:
        return BUILTIN_METHODS[spec]
    found = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == spec]
    where = f"entry point {spec!r} of group {ENTRY_POINT_GROUP}"
    try:
        if found:
            loaded = found[0].load()
        elif ":" in spec:
            module, _, attribute = spec.partition(":")
            where = f"--method {spec}"
            loaded = getattr(importlib.import_module(module), attribute)
        else:
            raise InputError(
                f"--method {spec!r}: no such method; choose from {', '.join(method_names())}, give "
                "module:callable, or a command with --method-command."
            )
    except (ImportError, AttributeError) as error:
        raise InputError(f"{where}: does not load ({error}).") from None
    if not callable(loaded):
        raise InputError(f"{where}: {loaded!r} is not callable; a method is a function of MethodInputs.")
    return loaded


def method_label(spec: str) -> str:
    """The name a method's rows carry: the built-in or entry-point name, `module:callable` as given,
    a command's NAME (before `=`), or `command`."""
    if "{out}" in spec:
        name, sep, _ = spec.partition("=")
        return name.strip() if sep and name.strip().isidentifier() else "command"
    return spec


def method_from_command(spec: str) -> Method:
    """A method that runs an outside program: "NAME=CMD ARGS {inputs} {out}" (NAME= optional).

    `{inputs}` becomes a folder holding `request.json` (workspace, shot, frames, width, height),
    `render/NNNNNN.png` (the conditioning render as `splat` gives it: 8-bit, display-encoded),
    `conditioning/` (a copy of the shot's conditioning passes, docs/formats.md), `shot.json` and
    `cameras.json` (the registration); `{out}` an empty folder where the program writes NNNNNN.png per frame.

    Raises:
        InputError: the command has no {out}.
    """
    _, sep, command = spec.partition("=")
    text = command if sep and spec.partition("=")[0].strip().isidentifier() else spec
    if "{out}" not in text:
        raise InputError(f"--method-command {spec!r}: the command must name {{out}}, where it writes the frames.")
    try:
        [part.format(inputs="", out="") for part in shlex.split(text)]
    except (KeyError, IndexError, ValueError) as error:
        raise InputError(
            f"--method-command {spec!r}: only {{inputs}} and {{out}} may stand in braces ({error!r}); write a "
            "literal brace as {{ or }}."
        ) from None

    def run(inputs: MethodInputs) -> np.ndarray:
        import imageio.v3 as iio

        from reshoot.workspace import Workspace

        ws = Workspace(inputs.workspace)
        shot = ws.shot(inputs.shot)
        with tempfile.TemporaryDirectory(prefix="reshoot-bench-") as tmp:
            given, out = Path(tmp) / "inputs", Path(tmp) / "out"
            given.mkdir()
            out.mkdir()
            shutil.copytree(shot.conditioning, given / "conditioning")
            shutil.copyfile(shot.spec, given / "shot.json")
            shutil.copyfile(ws.cameras, given / "cameras.json")
            request = {
                "workspace": str(inputs.workspace),
                "shot": inputs.shot,
                "frames": list(inputs.frames),
                "width": inputs.width,
                "height": inputs.height,
            }
            (given / "request.json").write_text(json.dumps(request, indent=1))
            (given / "render").mkdir()
            for frame, image in zip(inputs.frames, splat(inputs)):
                iio.imwrite(given / "render" / f"{frame:06d}.png", eight_bit(image))
            argv = [part.format(inputs=given, out=out) for part in shlex.split(text)]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
            if done.returncode != 0:
                raise InputError(f"method command {argv[0]} exited {done.returncode}: {done.stderr.strip()[-500:]}")
            missing = [f for f in inputs.frames if not (out / f"{f:06d}.png").is_file()]
            if missing:
                raise InputError(f"method command {argv[0]} wrote no frame {missing[0]:06d}.png into {{out}}.")
            return np.stack([iio.imread(out / f"{f:06d}.png")[..., :3] for f in inputs.frames])

    return run
