"""A diver's camera path along the tape: varying speed, sway, altitude and orientation wobble."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reefmap.geometry.transforms import axis_angle_to_matrix


@dataclass(frozen=True)
class PathSettings:
    """Camera motion; angles in degrees, `nadir_deg` is the tilt of the view from straight down."""

    altitude_m: float = 1.5
    altitude_swing_m: float = 0.25
    speed_mps: float = 0.3
    speed_swing: float = 0.3
    nadir_deg: float = 40.0
    sway_m: float = 0.15
    wobble_deg: float = 3.0
    lead_in_m: float = 1.0


def _wave(rng, t, period_range, amplitude) -> np.ndarray:
    """Sum of two sinusoids with random periods and phases."""
    out = np.zeros_like(t)
    for _ in range(2):
        period = rng.uniform(*period_range)
        out += np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 2


def look_rotation(nadir_deg: float) -> np.ndarray:
    """(3, 3) camera-to-world rotation of an OpenCV camera facing +x, tilted `nadir_deg` from straight down."""
    theta = np.deg2rad(nadir_deg)
    forward = np.array([np.sin(theta), 0.0, -np.cos(theta)])
    right = np.array([0.0, -1.0, 0.0])
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=1)


def diver_path(settings: PathSettings, length_m: float, fps: float, ground_height, rng) -> tuple[np.ndarray, np.ndarray]:
    """(N,) times in seconds and (N, 4, 4) camera-to-world poses from x = -lead_in to x = length - lead_in."""
    s = settings
    dt = 1.0 / fps
    x_start, x_end = -s.lead_in_m, length_m - s.lead_in_m
    # integrate a varying speed, finely, then sample at the frame times
    fine_dt = dt / 4
    max_steps = int((x_end - x_start) / (0.5 * s.speed_mps * (1 - s.speed_swing)) / fine_dt) + 10
    t_fine = np.arange(max_steps) * fine_dt
    speed = np.clip(s.speed_mps * (1 + _wave(rng, t_fine, (8, 25), s.speed_swing)), 0.05, None)
    x_fine = x_start + np.concatenate([[0.0], np.cumsum(speed[:-1] * fine_dt)])
    last = int(np.searchsorted(x_fine, x_end))
    duration = t_fine[min(last, len(t_fine) - 1)]
    times = np.arange(0.0, duration, dt)
    x = np.interp(times, t_fine, x_fine)
    y = _wave(rng, times, (6, 15), s.sway_m)
    offsets = np.linspace(-0.6, 0.6, 7)
    ground = np.mean([ground_height(x + dx, y + dy) for dx in offsets for dy in (-0.4, 0.0, 0.4)], axis=0)
    z = ground + s.altitude_m + _wave(rng, times, (10, 30), s.altitude_swing_m)
    heading = np.arctan2(np.gradient(y), np.gradient(x))
    roll, pitch, yaw = (_wave(rng, times, (2, 7), np.deg2rad(s.wobble_deg)) for _ in range(3))
    base = look_rotation(s.nadir_deg)
    poses = np.tile(np.eye(4), (len(times), 1, 1))
    for i in range(len(times)):
        turn = axis_angle_to_matrix(np.array([0.0, 0.0, heading[i] + yaw[i]]))
        wobble = axis_angle_to_matrix(np.array([pitch[i], 0.0, 0.0])) @ axis_angle_to_matrix(np.array([0.0, 0.0, roll[i]]))
        poses[i, :3, :3] = turn @ base @ wobble
        poses[i, :3, 3] = (x[i], y[i], z[i])
    return times, poses
