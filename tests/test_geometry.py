import numpy as np

from reefmap.geometry.backproject import backproject, project, scale_intrinsics
from reefmap.geometry.transforms import (
    axis_angle_to_matrix, chain_poses, invert_pose, pose_vector_to_matrix, transform_points,
)

K = np.array([[100.0, 0.0, 50.0], [0.0, 80.0, 20.0], [0.0, 0.0, 1.0]])


def test_backproject_known_pixels():
    depth = np.full((41, 101), 2.0, dtype=np.float32)
    depth[20, 100] = 3.0
    points = backproject(depth, K)
    assert points.shape == (41, 101, 3)
    np.testing.assert_allclose(points[20, 50], [0.0, 0.0, 2.0])
    np.testing.assert_allclose(points[20, 100], [(100 - 50) / 100 * 3.0, 0.0, 3.0])
    np.testing.assert_allclose(points[0, 0], [-50 / 100 * 2.0, -20 / 80 * 2.0, 2.0])


def test_project_inverts_backproject():
    depth = np.random.default_rng(0).uniform(0.5, 5.0, size=(41, 101)).astype(np.float32)
    uv = project(backproject(depth, K).reshape(-1, 3).astype(np.float64), K)
    v, u = np.mgrid[0:41, 0:101]
    np.testing.assert_allclose(uv, np.stack([u.ravel(), v.ravel()], axis=1), atol=1e-3)


def test_scale_intrinsics_halves_image():
    half = scale_intrinsics(K, (101, 41), (50.5, 20.5))
    np.testing.assert_allclose(half[0, 0], 50.0)
    np.testing.assert_allclose(half[0, 2], (50 + 0.5) / 2 - 0.5)


def test_axis_angle_quarter_turn_about_z():
    R = axis_angle_to_matrix(np.array([0.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(R @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(axis_angle_to_matrix(np.zeros(3)), np.eye(3))


def test_invert_pose_roundtrip():
    T = pose_vector_to_matrix(np.array([0.1, -0.2, 0.3, 1.0, 2.0, -3.0]))
    np.testing.assert_allclose(T @ invert_pose(T), np.eye(4), atol=1e-12)


def test_chain_of_known_motions():
    step = pose_vector_to_matrix(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5]))  # half a unit forward each frame
    turn = pose_vector_to_matrix(np.array([0.0, np.pi / 2, 0.0, 0.0, 0.0, 0.0]))  # quarter turn about y
    poses = chain_poses([step, step, turn, step])
    assert poses.shape == (5, 4, 4)
    np.testing.assert_allclose(poses[0], np.eye(4))
    np.testing.assert_allclose(poses[2][:3, 3], [0.0, 0.0, 1.0])
    # after turning +90 deg about y the camera's forward axis (z) points along world +x
    np.testing.assert_allclose(poses[4][:3, 3], [0.5, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(transform_points(poses[4], np.array([[0.0, 0.0, 1.0]])), [[1.5, 0.0, 1.0]], atol=1e-12)


def test_pose_vector_roundtrip():
    from reefmap.geometry.transforms import matrix_to_pose_vector

    for vec in ([0.1, -0.2, 0.3, 1.0, 2.0, -3.0], [0.0, 0.0, 0.0, 0.5, 0.0, 0.0], [1e-12, 0.0, 0.0, 0.0, 0.0, 0.1]):
        vec = np.array(vec)
        np.testing.assert_allclose(matrix_to_pose_vector(pose_vector_to_matrix(vec)), vec, atol=1e-9)


def test_reproject_depth_moves_a_plane_and_keeps_the_nearest_surface():
    from reefmap.geometry.backproject import reproject_depth

    depth = np.full((41, 101), 2.0, dtype=np.float32)
    np.testing.assert_allclose(reproject_depth(depth, K, np.eye(4)), depth)
    closer = np.eye(4)
    closer[2, 3] = -0.5  # the target camera is 0.5 m nearer the plane
    moved = reproject_depth(depth, K, closer)
    assert np.allclose(moved[moved > 0], 1.5) and (moved > 0).mean() > 0.5  # the plane spreads: holes between
    depth[20, 50] = 1.0  # a nearer point lands on the plane's pixel and wins it
    assert reproject_depth(depth, K, np.eye(4))[20, 50] == 1.0
    assert not reproject_depth(depth, K, pose_vector_to_matrix(np.array([0, 0, 0, 0, 0, -5.0]))).any()  # behind
