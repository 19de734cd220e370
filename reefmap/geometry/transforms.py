"""Rigid transforms as 4x4 matrices, axis-angle conversion and chaining of relative poses."""

from __future__ import annotations

import numpy as np


def axis_angle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """(3,) axis * angle in radians -> (3, 3) rotation matrix (Rodrigues' formula)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    k = rotvec / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * (kx @ kx)


def pose_vector_to_matrix(vec6: np.ndarray) -> np.ndarray:
    """(6,) [axis-angle rotation (rad), translation] -> (4, 4) rigid transform."""
    T = np.eye(4)
    T[:3, :3] = axis_angle_to_matrix(vec6[:3])
    T[:3, 3] = vec6[3:6]
    return T


def invert_pose(T: np.ndarray) -> np.ndarray:
    """Inverse of a (4, 4) rigid transform."""
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) transform to (..., 3) points."""
    return points @ T[:3, :3].T.astype(points.dtype) + T[:3, 3].astype(points.dtype)


class TrajectoryBuilder:
    """Chains relative motions T_prev<-curr into camera-to-world poses; the first camera is the world."""

    def __init__(self):
        self.current = np.eye(4)
        self.count = 0

    def add(self, relative: np.ndarray | None) -> np.ndarray:
        """Next camera-to-world (4, 4) pose; `relative` is None for the first frame."""
        if self.count > 0:
            self.current = self.current @ relative
        self.count += 1
        return self.current.copy()


def chain_poses(relatives: list[np.ndarray]) -> np.ndarray:
    """(N-1) relative T_{i-1}<-i -> (N, 4, 4) camera-to-world poses with pose 0 = identity."""
    builder = TrajectoryBuilder()
    poses = [builder.add(None)]
    poses += [builder.add(T) for T in relatives]
    return np.stack(poses)


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> (3,) axis * angle in radians (inverse of `axis_angle_to_matrix`, angle < pi)."""
    cos = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cos))
    if angle < 1e-9:
        return np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2.0
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2.0 * np.sin(angle))
    return axis * angle


def matrix_to_pose_vector(T: np.ndarray) -> np.ndarray:
    """(4, 4) rigid transform -> (6,) [axis-angle rotation, translation]; inverse of `pose_vector_to_matrix`."""
    return np.concatenate([matrix_to_axis_angle(T[:3, :3]), T[:3, 3]])
