"""Rotation conventions shared by the LIBERO env and the synthetic corpus."""

from __future__ import annotations

import numpy as np


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(x, y, z, w) quaternions [..., 4] -> axis-angle [..., 3], LIBERO's state convention: angle 2*acos(w) in
    [0, 2pi) without flipping the sign of q, so a tool pointing down (angle ~pi) stays continuous."""
    w = np.clip(q[..., 3:], -1.0, 1.0)
    den = np.sqrt(1.0 - w * w)
    scale = np.where(den > 1e-9, 2.0 * np.arccos(w) / np.maximum(den, 1e-9), 0.0)
    return q[..., :3] * scale
