"""Ground truth (the synthetic generator's, or a held-out real camera) in a workspace's world frame.

Registration fixes its own gauge (floor at z = 0, but its own origin, heading and, without a scale
hint, its own unit), so ground-truth cameras are mapped into it by the similarity that best aligns the
cameras both know (at least three, by their centres) before anything is rendered or compared there.
"""

from __future__ import annotations

import numpy as np

from reshoot.geometry.alignment import similarity_transform, transform_cameras
from reshoot.geometry.camera import Camera
from reshoot.geometry.errors import InputError


def registration_from_truth(truth: Camera, registered: Camera) -> np.ndarray:
    """[4, 4] similarity taking ground-truth world points into the registration's frame, fitted on the
    centres of the cameras both know (matched by name).

    Raises:
        InputError: fewer than three cameras are in both.
    """
    common = [n for n in registered.names if n in truth.names]
    if len(common) < 3:
        raise InputError(f"ground truth and registration share {len(common)} cameras ({common}); at least 3 are "
                         "needed to align their frames.")
    return similarity_transform(truth.select(common).centers.numpy(), registered.select(common).centers.numpy())


def cameras_in_registration_frame(truth: Camera, registered: Camera) -> Camera:
    """Every camera of `truth`, moved into the frame of `registered` (see `registration_from_truth`)."""
    return transform_cameras(truth, registration_from_truth(truth, registered))
