"""Joining SfM poses with learned motion, and depth maps with sparse SfM points: exact cases."""

import numpy as np
import pytest

from reefmap.geometry.camera_path import bridge_gaps, depth_scale, sample_depth, scale_poses, units_per_metre
from reefmap.geometry.transforms import axis_angle_to_matrix, chain_poses, invert_pose, pose_vector_to_matrix


def _path(count: int, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A camera path of `count` frames, each moved by the same relative motion `step`; (poses, relatives)."""
    relatives = np.stack([np.eye(4)] + [step] * (count - 1))
    return chain_poses(list(relatives[1:])), relatives


STEP = pose_vector_to_matrix(np.array([0.0, 0.02, 0.01, 0.1, 0.0, 0.05]))


def test_registered_frames_keep_their_poses_and_consistent_motion_fills_the_gaps_exactly():
    truth, relatives = _path(9, STEP)
    registered = np.array([0, 1, 0, 0, 1, 0, 1, 0, 0], bool)
    poses = np.where(registered[:, None, None], truth, np.nan)
    np.testing.assert_allclose(bridge_gaps(poses, registered, relatives), truth, atol=1e-12)


def test_a_gap_is_bent_to_meet_the_registered_pose_at_its_far_end():
    truth, _ = _path(5, STEP)
    drifting = STEP.copy()
    drifting[0, 3] += 0.04  # the learned motion overshoots x by 4 cm per frame
    relatives = np.stack([np.eye(4)] + [drifting] * 4)
    registered = np.array([1, 0, 0, 0, 1], bool)
    poses = np.where(registered[:, None, None], truth, np.nan)
    bridged = bridge_gaps(poses, registered, relatives)
    np.testing.assert_allclose(bridged[[0, 4]], truth[[0, 4]], atol=1e-12)
    chained = chain_poses([drifting] * 4)
    chained = truth[0] @ chained
    error = truth[4, :3, 3] - chained[4, :3, 3]
    for k in (1, 2, 3):
        np.testing.assert_allclose(bridged[k, :3, 3], chained[k, :3, 3] + k / 4 * error, atol=1e-9)


def test_frames_outside_the_registered_span_are_chained_outward():
    truth, relatives = _path(6, STEP)
    registered = np.array([0, 0, 1, 1, 0, 0], bool)
    poses = np.where(registered[:, None, None], truth, np.nan)
    np.testing.assert_allclose(bridge_gaps(poses, registered, relatives), truth, atol=1e-12)


def test_without_any_registered_frame_the_learned_motion_is_the_path():
    truth, relatives = _path(4, STEP)
    np.testing.assert_allclose(bridge_gaps(np.full((4, 4, 4), np.nan), np.zeros(4, bool), relatives), truth,
                               atol=1e-12)


def test_sampling_depth_maps_processing_pixels_onto_a_smaller_depth_map():
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)  # at (4, 3) for an image of (8, 6)
    view = np.array([[0.0, 0.0, 1.0], [7.0, 5.0, 1.0], [2.6, 2.4, 1.0]], np.float32)
    np.testing.assert_array_equal(sample_depth(depth, view, (8, 6)), [0.0, 11.0, 5.0])


def test_depth_scale_recovers_the_factor_and_measures_what_remains():
    rng = np.random.default_rng(0)
    depth = rng.uniform(1.0, 3.0, (36, 64)).astype(np.float32)
    v, u = rng.integers(0, 36, 50), rng.integers(0, 64, 50)
    view = np.column_stack([u, v, 2.5 * depth[v, u]]).astype(np.float32)
    scale, disagreement = depth_scale(depth, view, (64, 36))
    assert scale == pytest.approx(2.5, rel=1e-6) and disagreement == pytest.approx(0.0, abs=1e-6)
    view[::2, 2] *= 1.2  # half the points 20 % farther: the median lands between, the rest disagree
    scale, disagreement = depth_scale(depth, view, (64, 36))
    assert 2.5 <= scale <= 3.0 and disagreement > 0.0
    assert depth_scale(depth, view[:10], (64, 36)) is None


def test_units_per_metre_is_the_median_over_frames():
    depth = np.ones((10, 10), np.float32)
    views = [np.column_stack([np.arange(30) % 10, np.arange(30) // 3, np.full(30, z)]).astype(np.float32)
             for z in (1.0, 2.0, 7.0)]
    assert units_per_metre([depth] * 3, views, (10, 10)) == pytest.approx(2.0)
    assert units_per_metre([], [], (10, 10)) is None


def test_scale_poses_moves_positions_only():
    pose = np.eye(4)
    pose[:3, :3] = axis_angle_to_matrix(np.array([0.1, 0.2, 0.3]))
    pose[:3, 3] = [1.0, -2.0, 3.0]
    scaled = scale_poses(pose[None], 0.5)[0]
    np.testing.assert_allclose(scaled[:3, :3], pose[:3, :3])
    np.testing.assert_allclose(scaled[:3, 3], [0.5, -1.0, 1.5])
    np.testing.assert_allclose(invert_pose(invert_pose(scaled)), scaled)


def test_similarity_on_shared_frames_recovers_a_known_move_of_a_straight_path():
    from reefmap.geometry.camera_path import apply_similarity, similarity_on_shared_frames

    truth, _ = _path(6, pose_vector_to_matrix(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.3])))  # straight, no turning
    rotation = axis_angle_to_matrix(np.array([0.3, -0.2, 0.5]))
    moved = apply_similarity(truth, 2.5, rotation, np.array([1.0, 2.0, 3.0]))
    scale, r, t = similarity_on_shared_frames(truth[2:5], moved[2:5])
    assert scale == pytest.approx(2.5)
    np.testing.assert_allclose(r, rotation, atol=1e-12)
    np.testing.assert_allclose(apply_similarity(truth, scale, r, t), moved, atol=1e-12)


def test_chunk_ranges_cover_the_sequence_with_overlaps():
    from reefmap.geometry.sfm import chunk_ranges

    assert chunk_ranges(50, 60, 12) == [(0, 50)]
    assert chunk_ranges(100, 60, 12) == [(0, 60), (48, 100)]
    ranges = chunk_ranges(200, 60, 12)
    assert ranges[0][0] == 0 and ranges[-1][1] == 200
    assert all(b[0] == a[1] - 12 for a, b in zip(ranges, ranges[1:]))


def test_a_stretch_whose_sfm_scale_ran_away_is_flagged():
    from reefmap.geometry.camera_path import motion_disagreement

    centres = np.cumsum(np.r_[[[0.0, 0.0, 0.0]], np.tile([[0.03, 0.0, 0.0]], (39, 1))], axis=0) * 7.0  # SfM units
    learned = np.full(39, 0.033)  # the network: 10 % long, but steady
    registered = np.ones(40, bool)
    assert not motion_disagreement(centres, registered, learned).any()
    wild = centres.copy()
    wild[10:] += np.cumsum(np.r_[np.zeros((1, 3)), np.tile([[0.5, 0.0, 0.0]], (9, 1)), np.zeros((20, 3))], axis=0)
    flagged = motion_disagreement(wild, registered, learned)
    assert flagged[11:19].all() and not flagged[:8].any() and not flagged[22:].any()
    registered[5] = False  # unregistered keyframes are neither used nor flagged
    assert not motion_disagreement(centres, registered, learned)[5]
