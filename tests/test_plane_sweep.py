"""Plane-sweep depth from neighbouring views with known poses, against the true depth of a rendered transect."""

import cv2
import numpy as np
import pytest

from reefmap.geometry.plane_sweep import sweep_depth
from reefmap.io.video import FrameSource
from reefmap.perception.oracle import TruthReader


@pytest.fixture(scope="module")
def three_views(synthetic_transect):
    truth = TruthReader(str(synthetic_transect))
    source = FrameSource([synthetic_transect / "video.mp4"], 5, width=480, camera=str(truth.camera_profile))
    frames = {f.index: f for f in source if f.index in (9, 10, 11)}
    poses = np.loadtxt(synthetic_transect / "poses.csv", delimiter=",", skiprows=1)[:, 2:].reshape(-1, 4, 4)
    times = np.loadtxt(synthetic_transect / "poses.csv", delimiter=",", skiprows=1)[:, 1]
    pick = {k: int(np.argmin(np.abs(times - f.time_s))) for k, f in frames.items()}
    depth = cv2.imread(str(synthetic_transect / "depth" / f"{pick[10]:06d}.png"), cv2.IMREAD_UNCHANGED) / 1000.0
    return frames, {k: poses[i] for k, i in pick.items()}, source.camera.K, depth.astype(np.float32)


def test_sweep_finds_the_true_depth_where_it_answers(three_views):
    frames, poses, K, true_depth = three_views
    depth, score = sweep_depth(frames[10].image, [frames[9].image, frames[11].image], K, poses[10],
                               [poses[9], poses[11]], near=0.5, far=6.0)
    assert depth.shape == true_depth.shape == score.shape
    answered = (depth > 0) & (true_depth > 0)
    assert answered.mean() > 0.6
    error = np.abs(depth[answered] - true_depth[answered]) / true_depth[answered]
    assert np.median(error) < 0.02 and error.mean() < 0.05


def test_sweep_gives_no_depth_where_views_cannot_agree(three_views):
    frames, poses, K, _ = three_views
    flat = np.full_like(frames[10].image, 90)
    depth, _ = sweep_depth(flat, [frames[9].image], K, poses[10], [poses[9]], near=0.5, far=6.0)
    assert not depth.any()
    wrong = poses[9].copy()
    wrong[:3, 3] += 0.3 * (poses[9][:3, 3] - poses[10][:3, 3]) / np.linalg.norm(poses[9][:3, 3] - poses[10][:3, 3])
    sources, good_poses = [frames[9].image, frames[11].image], [poses[9], poses[11]]
    depth, _ = sweep_depth(frames[10].image, sources, K, poses[10], [wrong, poses[11]], near=0.5, far=6.0)
    good, _ = sweep_depth(frames[10].image, sources, K, poses[10], good_poses, near=0.5, far=6.0)
    assert (depth > 0).mean() < 0.5 * (good > 0).mean()  # one source 30 cm off: the two disagree on the depth


def test_depth_no_neighbour_confirms_is_dropped():
    from reefmap.geometry.plane_sweep import consistent_depth

    K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 30.0], [0.0, 0.0, 1.0]])
    plane = np.full((61, 101), 2.0, np.float32)
    beside = np.eye(4)
    beside[0, 3] = 0.1  # 10 cm to the right, looking the same way: sees the same plane at 2 m
    own = plane.copy()
    own[30, 20] = 2.5  # an outlier no other view has
    kept = consistent_depth(own, K, np.eye(4), [(plane, beside)])
    assert kept[30, 20] == 0 and kept[30, 60] == 2.0
    assert (kept[:, 10:95] > 0).mean() > 0.99  # all that the neighbour also sees (its view is 5 px to the right)
    assert not consistent_depth(own, K, np.eye(4), []).any()
