"""Colour management with OpenColorIO: the workspace's working space, the footage's encoding, displays.

reshoot's stages work on the footage's own encoded values (by default sRGB-encoded Rec.709 video, in
[0, 1]): the reconstruction is fitted to them and the video model was trained on them. Colour is
managed at the hand-off: a deliverable EXR holds the frames converted from the footage's encoding
into the workspace's scene-linear working space (its chromaticities in the header), and the 8-bit PNGs
and the mp4 are that linear image encoded for the sRGB display, all through OCIO transforms.

```toml
[colour]                                  # reshoot.toml (all optional; these are the defaults)
config = "ocio://cg-config-latest"        # an OCIO config file, or one built into OCIO (ocio://...)
working_space = "Linear Rec.709 (sRGB)"   # scene-linear; "ACEScg" for ACES pipelines
footage_space = "sRGB Encoded Rec.709 (sRGB)"   # the footage's input transform

[colour.cameras]                          # optional: a camera that recorded in another encoding
b_medium = "Gamma 2.4 Encoded Rec.709"
```
A camera named under `[colour.cameras]` is decoded from its own space into `footage_space` as its frames
are read (`ColourPipeline.decoder`), so every stage sees the whole rig in one encoding; values are
clipped to [0, 1], the range the stages work in.
A working space must be scene-linear and carry an interop id (OCIO 2.5) from which OpenEXR knows its
chromaticities; the built-in configs' linear spaces all do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from reshoot.geometry.errors import InputError

DEFAULT_CONFIG = "ocio://cg-config-latest"
DEFAULT_WORKING_SPACE = "Linear Rec.709 (sRGB)"
DEFAULT_FOOTAGE_SPACE = "sRGB Encoded Rec.709 (sRGB)"
DISPLAY = "sRGB - Display"
VIEW = "Un-tone-mapped"
"""PNGs and mp4s are for the sRGB display without tone mapping: a footage-encoded image comes back as it was."""


@dataclass(frozen=True)
class ColourSettings:
    """The workspace's `[colour]` table (see the module docstring)."""

    config: str = DEFAULT_CONFIG
    working_space: str = DEFAULT_WORKING_SPACE
    footage_space: str = DEFAULT_FOOTAGE_SPACE
    cameras: dict[str, str] = field(default_factory=dict)

    def spaces(self) -> dict[str, str]:
        """The three spaces of the hand-off (config, working_space, footage_space): what an EXR's colour needs."""
        return {"config": self.config, "working_space": self.working_space, "footage_space": self.footage_space}

    @staticmethod
    def from_dict(values: dict[str, Any]) -> ColourSettings:
        unknown = sorted(set(values) - {"config", "working_space", "footage_space", "cameras"})
        if unknown:
            raise InputError(
                f"[colour] has unknown settings {unknown}; it takes config, working_space, footage_space, cameras."
            )
        cameras = values.get("cameras", {})
        if not isinstance(cameras, dict):
            raise InputError("[colour] cameras must be a table: camera name = colour space.")
        plain = {k: str(v) for k, v in values.items() if k != "cameras"}
        return ColourSettings(**plain, cameras={str(k): str(v) for k, v in cameras.items()})


class ColourPipeline:
    """The OCIO processors of one workspace's colour settings.

    Raises (on construction):
        InputError: the config cannot be read, a colour space is not in it, or the working space is not
            scene-linear with known chromaticities.
    """

    def __init__(self, settings: ColourSettings) -> None:
        import PyOpenColorIO as ocio

        self.settings = settings
        try:
            self.config = ocio.Config.CreateFromFile(settings.config)
        except Exception as exc:  # OCIO raises its own Exception type for every failure
            raise InputError(
                f"colour config {settings.config!r} could not be read ({exc}); give an OCIO config file or "
                f"one built into OCIO such as {DEFAULT_CONFIG!r}."
            ) from None
        spaces = [s.getName() for s in self.config.getColorSpaces()]
        named = [("working_space", settings.working_space), ("footage_space", settings.footage_space)]
        named += [(f"cameras.{camera}", space) for camera, space in settings.cameras.items()]
        for role, name in named:
            if self.config.getColorSpace(name) is None:
                raise InputError(
                    f"[colour] {role} {name!r} is not a colour space of {settings.config}; it has {spaces}."
                )
        working = self.config.getColorSpace(settings.working_space)
        if working.getEncoding() != "scene-linear" or self.chromaticities is None:
            raise InputError(
                f"[colour] working_space {settings.working_space!r} is not a scene-linear space with known "
                f"primaries (encoding {working.getEncoding()!r}); choose {DEFAULT_WORKING_SPACE!r} or 'ACEScg'."
            )

    @cached_property
    def chromaticities(self) -> tuple[float, ...] | None:
        """The working space's (red x, y, green x, y, blue x, y, white x, y), as OpenEXR's header wants."""
        import OpenEXR

        interop = self.config.getColorSpace(self.settings.working_space).getInteropID()
        try:
            return tuple(float(v) for v in OpenEXR.colorInteropIDToChromaticities(interop)) if interop else None
        except Exception:  # an interop id OpenEXR has no primaries for
            return None

    @property
    def exr_attributes(self) -> dict:
        """Header attributes of an EXR holding working-space colour: its chromaticities and its OCIO name."""
        return {"chromaticities": self.chromaticities, "reshoot/colourSpace": self.settings.working_space}

    @cached_property
    def _to_working(self):
        return _exact(self.config.getProcessor(self.settings.footage_space, self.settings.working_space))

    @cached_property
    def _to_footage(self):
        return _exact(self.config.getProcessor(self.settings.working_space, self.settings.footage_space))

    @cached_property
    def _to_display(self):
        import PyOpenColorIO as ocio

        transform = ocio.DisplayViewTransform(src=self.settings.working_space, display=DISPLAY, view=VIEW)
        return _exact(self.config.getProcessor(transform))

    def to_working(self, encoded: np.ndarray) -> np.ndarray:
        """[..., 3] footage-encoded colour → float32 scene-linear colour in the working space."""
        return _apply(self._to_working, encoded)

    def decoder(self, camera: str) -> Callable[[np.ndarray], np.ndarray] | None:
        """The function turning `camera`'s frames ([H, W, 3] float32 in [0, 1], its own encoding) into the
        footage space (clipped to [0, 1]); None for a camera recorded in the footage space."""
        space = self.settings.cameras.get(camera, self.settings.footage_space)
        if space == self.settings.footage_space:
            return None
        processor = _exact(self.config.getProcessor(space, self.settings.footage_space))
        return lambda image: np.clip(_apply(processor, image), 0.0, 1.0)

    def to_footage(self, linear: np.ndarray) -> np.ndarray:
        """[..., 3] working-space linear colour → float32 footage-encoded colour (the inverse of `to_working`)."""
        return _apply(self._to_footage, linear)

    def to_display(self, linear: np.ndarray) -> np.ndarray:
        """[..., 3] working-space linear colour → float32 sRGB-display values (clipped to [0, 1])."""
        return np.clip(_apply(self._to_display, linear), 0.0, 1.0)

    def to_8bit(self, linear: np.ndarray) -> np.ndarray:
        """[..., 3] working-space linear colour → uint8 for PNGs and the mp4."""
        return (self.to_display(linear) * 255 + 0.5).astype(np.uint8)


def _exact(processor):
    """The CPU processor without OCIO's default approximations (its fast power function is ~2e-5 off, enough
    to move an 8-bit code value after a round trip); lossless optimisation keeps the sRGB curve to ~1e-7."""
    import PyOpenColorIO as ocio

    return processor.getOptimizedCPUProcessor(ocio.OPTIMIZATION_LOSSLESS)


def _apply(processor, rgb: np.ndarray) -> np.ndarray:
    pixels = np.ascontiguousarray(rgb, dtype=np.float32).copy()
    if pixels.shape[-1] != 3:
        raise ValueError(f"colour must be [..., 3], got {list(pixels.shape)}")
    processor.applyRGB(pixels.reshape(-1, 3))
    return pixels
