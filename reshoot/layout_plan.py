"""The layout's top-down plan: the floor, the cameras' frusta, props, the characters' paths and optionally
shot camera paths, as a matplotlib figure (`plan_figure`, which the report embeds) or a PNG (`draw_plan`,
the layout stage's `layout_plan.png`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.files import atomic_path
from reshoot.layout_io import Entity


def draw_plan(path: Path, entities: Sequence[Entity], cameras: Camera, bounds) -> None:
    """Write the top-down plan (`plan_figure`) as a PNG."""
    import matplotlib.pyplot as plt

    figure = plan_figure(entities, cameras, bounds)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def plan_figure(entities: Sequence[Entity], cameras: Camera, bounds, shot_centres: dict[str, np.ndarray] | None = None):
    """Top-down plan (matplotlib figure): the floor box, camera frusta, props, character paths with a
    tick every 12 frames, and optionally shot camera paths.

    Args:
        entities: the layout's entities.
        cameras: the registered cameras (frusta).
        bounds: ((x0, y0, z0), (x1, y1, z1)) floor extent, world metres.
        shot_centres: shot name → [T, 3] camera centres per frame (drawn as dashed paths).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle

    figure, axes = plt.subplots(figsize=(8, 8), dpi=100)
    (x0, y0, _), (x1, y1, _) = bounds
    axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=True, color="0.93", zorder=0))
    for i, name in enumerate(cameras.names):
        camera = cameras.select(i)
        centre = camera.centers[0].numpy()
        corners = torch.tensor([[0.0, camera.height[0] / 2], [float(camera.width[0] - 1), camera.height[0] / 2]])
        rays = camera.pixel_directions(corners[None].double())[0].numpy()
        reach = 0.6 * math.hypot(x1 - x0, y1 - y0) / 4
        tips = [centre[:2] + reach * r[:2] / max(np.linalg.norm(r[:2]), 1e-9) for r in rays]
        axes.add_patch(Polygon([centre[:2], *tips], closed=True, alpha=0.25, color="tab:blue"))
        axes.annotate(name, tuple(centre[:2]), fontsize=8, color="tab:blue")
    for e in entities:
        if e.is_prop:
            (lx, ly, _), (hx, hy, _) = e.frames[0].box_min, e.frames[0].box_max
            axes.add_patch(Rectangle((lx, ly), hx - lx, hy - ly, fill=False, color="tab:brown", lw=1.5))
            axes.annotate(e.name, (hx, hy), fontsize=8, color="tab:brown")
        else:
            path_xy = np.array([f.floor[:2] for f in e.frames])
            (line,) = axes.plot(path_xy[:, 0], path_xy[:, 1], lw=1.5)
            ticks = [f for f in e.frames if f.frame is not None and f.frame % 12 == 0]
            axes.scatter([f.floor[0] for f in ticks], [f.floor[1] for f in ticks], s=12, color=line.get_color())
            for f in ticks:
                axes.annotate(str(f.frame), tuple(f.floor[:2]), fontsize=6, color=line.get_color())
            axes.annotate(e.name, path_xy[0], fontsize=9, color=line.get_color(), weight="bold")
    for name, centres in (shot_centres or {}).items():
        axes.plot(centres[:, 0], centres[:, 1], ls="--", lw=1.2, color="tab:red")
        axes.scatter(centres[:1, 0], centres[:1, 1], marker="s", s=20, color="tab:red")
        axes.annotate(f"shot {name}", tuple(centres[0, :2]), fontsize=8, color="tab:red")
    axes.set_aspect("equal")
    axes.autoscale()
    axes.set_xlabel("x (m)")
    axes.set_ylabel("y (m)")
    axes.set_title("layout: top-down plan (floor z = 0)")
    return figure
