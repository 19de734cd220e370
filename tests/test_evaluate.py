import json

import numpy as np
import pytest

from reefmap.errors import UsageError
from reefmap.geometry.transforms import axis_angle_to_matrix
from reefmap.report.evaluation import evaluate, umeyama


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(50, 3))
    R = axis_angle_to_matrix(np.array([0.3, -0.2, 0.9]))
    target = 2.5 * source @ R.T + [1.0, -2.0, 0.5]
    s, R_est, t = umeyama(source, target)
    assert s == pytest.approx(2.5)
    np.testing.assert_allclose(R_est, R, atol=1e-9)
    np.testing.assert_allclose(t, [1.0, -2.0, 0.5], atol=1e-9)


def test_oracle_run_reproduces_true_cover_and_geometry(synthetic_transect, oracle_run):
    """With true depth, labels and poses the fusion and cover code alone decide the error."""
    run = oracle_run
    assert json.loads((run / "summary.json").read_text())["perception"].startswith("oracle")
    report = evaluate(run, synthetic_transect)
    assert report["depth"]["abs_rel"] < 0.005 and report["depth"]["delta_1.25"] > 0.99
    assert report["cover"]["max_abs_error_pts"] < 1.0
    assert report["trajectory"]["ate_rmse_m"] < 1e-6 and report["trajectory"]["scale_error_percent"] < 1e-6
    # the surface needs two frames: what one frame alone saw (edges of this 5 fps strip) stays out
    assert report["cloud"]["accuracy_median_m"] < 0.01 and report["cloud"]["completeness"] > 0.85
    assert report["labels_3d"]["accuracy"] > 0.95
    assert abs(report["rugosity"]["error_percent"]) < 5.0
    assert report["surface_cover"]["max_abs_error_pts"] < 2.0
    assert json.loads((run / "evaluation.json").read_text())["cover"] == report["cover"]


def test_evaluate_spots_a_wrong_trajectory(synthetic_transect, tmp_path):
    import reefmap

    run = tmp_path / "oracle"
    reefmap.process(synthetic_transect / "video.mp4", run, fps=5, oracle=str(synthetic_transect), quiet=True)
    lines = (run / "trajectory.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    for k, row in enumerate(rows):  # bend the path sideways: 10 cm per frame squared
        row[2 + 7] = str(float(row[2 + 7]) + 0.01 * k * k)
    (run / "trajectory.csv").write_text("\n".join([lines[0]] + [",".join(r) for r in rows]) + "\n")
    assert evaluate(run, synthetic_transect)["trajectory"]["ate_percent_of_path"] > 5.0


def test_evaluate_refuses_folders_that_are_not_runs(tmp_path, synthetic_transect):
    with pytest.raises(UsageError, match="not a finished"):
        evaluate(tmp_path, synthetic_transect)
    with pytest.raises(UsageError, match="no truth.json"):
        reefmap_process_dir = tmp_path / "r"
        reefmap_process_dir.mkdir()
        (reefmap_process_dir / "summary.json").write_text("{}")
        evaluate(reefmap_process_dir, tmp_path)


def test_depth_scores_separate_scale_from_shape(synthetic_transect, tmp_path):
    import cv2
    import reefmap

    run = tmp_path / "oracle"
    reefmap.process(synthetic_transect / "video.mp4", run, fps=5, oracle=str(synthetic_transect), quiet=True,
                    save_depth=True)
    for png in (run / "depth").glob("*.png"):  # every depth map 20 % too far: a scale error only
        depth = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(png), np.clip(depth.astype(np.float64) * 1.2, 0, 65535).astype(np.uint16))
    scores = evaluate(run, synthetic_transect)["depth"]
    assert scores["abs_rel"] == pytest.approx(0.2, abs=0.01)
    assert scores["abs_rel_median_scaled"] < 0.01


def test_alignment_of_a_straight_path_recovers_the_roll():
    from reefmap.report.evaluation import align_trajectories
    from reefmap.geometry.transforms import pose_vector_to_matrix

    reference = np.stack([pose_vector_to_matrix(np.array([0.1, 0.2, 0.0, 0.3 * k, 0.0, 1.5])) for k in range(20)])
    similarity = pose_vector_to_matrix(np.array([0.4, 0.0, 0.0, 1.0, 2.0, 3.0]))  # a roll about the path axis x
    estimate = np.stack([np.linalg.inv(similarity) @ p for p in reference])
    estimate[:, :3, 3] *= 0.5  # and half the scale
    s, R, t = align_trajectories(estimate, reference)
    assert s == pytest.approx(2.0)
    np.testing.assert_allclose(R, similarity[:3, :3], atol=1e-9)


def test_api_functions_stay_callable_after_use(synthetic_transect, tmp_path):
    """The package's lazy API names must not be shadowed by submodules of the same name."""
    import reefmap

    run = tmp_path / "oracle"
    reefmap.process(synthetic_transect / "video.mp4", run, fps=5, oracle=str(synthetic_transect), quiet=True)
    for _ in range(2):
        assert "cover" in reefmap.evaluate(run, synthetic_transect)
    assert callable(reefmap.process) and callable(reefmap.synth)
