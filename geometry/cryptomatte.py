"""Entity mattes as Cryptomatte (Psyop's published standard, read by Nuke's and Blender's Cryptomatte nodes).

A Cryptomatte layer `L` stores, per pixel, the ids of the entities covering it with their coverage,
largest first: channels `L00.R` (id, rank 0), `L00.G` (its coverage), `L00.B` (id, rank 1), `L00.A`
(its coverage), `L01.RGBA` ranks 2 and 3, and so on; float32. An entity's id is the MurmurHash3_32
(seed 0) of its name, read as a float32 after the hash's exponent bits are nudged off all-zeros and
all-ones (no denormal, inf or NaN ids). The header names the layer under a key, the first 7 hex digits
of the hash of the layer's name:

    cryptomatte/<key>/name        L
    cryptomatte/<key>/hash        MurmurHash3_32
    cryptomatte/<key>/conversion  uint32_to_float32
    cryptomatte/<key>/manifest    {"entity name": "<8 hex digits of its id's bits>", ...}

The hash comes from the `mmh3` package (C, the reference MurmurHash3); only the layout around it is ours.
"""

from __future__ import annotations

import json

import numpy as np

LAYER = "CryptoObject"
"""The layer name Nuke's and Blender's Cryptomatte nodes list first (entities are objects)."""
RANKS = 4
"""Entities kept per pixel (two RGBA channel groups)."""


def name_hash(name: str) -> int:
    """The uint32 whose bits are the float32 id of `name` (MurmurHash3_32, exponent nudged)."""
    import mmh3

    bits = mmh3.hash(name, 0, signed=False)
    exponent = (bits >> 23) & 0xFF
    if exponent in (0, 0xFF):
        bits ^= 1 << 23
    return bits


def name_id(name: str) -> np.float32:
    """The float32 id a Cryptomatte pixel stores for `name`."""
    return np.array([name_hash(name)], dtype=np.uint32).view(np.float32)[0]


def layer_key(layer: str) -> str:
    """The 7 hex digits naming `layer`'s attributes in the header."""
    import mmh3

    return f"{mmh3.hash(layer, 0, signed=False):08x}"[:7]


def header_attributes(names: list[str], layer: str = LAYER) -> dict[str, str]:
    """The header's `cryptomatte/<key>/...` attributes of `layer`, its manifest naming every entity in `names`."""
    key = layer_key(layer)
    manifest = {name: f"{name_hash(name):08x}" for name in names}
    return {
        f"cryptomatte/{key}/name": layer,
        f"cryptomatte/{key}/hash": "MurmurHash3_32",
        f"cryptomatte/{key}/conversion": "uint32_to_float32",
        f"cryptomatte/{key}/manifest": json.dumps(manifest, sort_keys=True),
    }


def channels(coverage: np.ndarray, names: list[str], layer: str = LAYER, ranks: int = RANKS) -> dict[str, np.ndarray]:
    """The layer's channels from each entity's coverage of each pixel.

    Args:
        coverage: [H, W, E] float, entity e's coverage of the pixel (in [0, 1]; 0 where absent).
        names: [E] the entities' names.
        ranks: entities kept per pixel, a multiple of 2 (the rest are dropped).

    Returns:
        {"L00.R": [H, W] float32, ...}: ranks / 2 RGBA groups; id 0 with coverage 0 where fewer entities cover.
    """
    if coverage.ndim != 3 or coverage.shape[2] != len(names):
        raise ValueError(f"coverage must be [H, W, {len(names)}], got {list(coverage.shape)}")
    height, width = coverage.shape[:2]
    ids = np.array([name_id(n) for n in names], dtype=np.float32)
    order = np.argsort(-coverage, axis=2, kind="stable")[..., :ranks]
    kept = np.take_along_axis(coverage, order, axis=2).astype(np.float32)
    kept_ids = np.where(kept > 0, ids[order] if len(names) else 0, 0).astype(np.float32)
    kept = np.where(kept > 0, kept, 0).astype(np.float32)
    missing = ranks - kept.shape[2]  # fewer entities than ranks
    if missing > 0:
        pad = np.zeros((height, width, missing), np.float32)
        kept, kept_ids = np.concatenate([kept, pad], axis=2), np.concatenate([kept_ids, pad], axis=2)
    out = {}
    for group in range(ranks // 2):
        a, b = 2 * group, 2 * group + 1
        prefix = f"{layer}{group:02d}"
        out[f"{prefix}.R"], out[f"{prefix}.G"] = kept_ids[..., a], kept[..., a]
        out[f"{prefix}.B"], out[f"{prefix}.A"] = kept_ids[..., b], kept[..., b]
    return {k: np.ascontiguousarray(v) for k, v in out.items()}
