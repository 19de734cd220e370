import numpy as np
import pytest
import torch

from reefmap.geometry.transforms import pose_vector_to_matrix
from reefmap.train.photometric import axis_angle_to_matrix, photometric_error, smoothness, warp


def test_torch_rodrigues_matches_numpy():
    vec = torch.tensor([[0.1, -0.2, 0.3, 1.0, 2.0, -3.0], [0.0, 0.0, 1e-9, 0.0, 0.0, 0.5]], dtype=torch.float64)
    ours = axis_angle_to_matrix(vec).numpy()
    for k in range(2):
        np.testing.assert_allclose(ours[k], pose_vector_to_matrix(vec[k].numpy()), atol=1e-8)


def test_warp_with_identity_motion_returns_the_source():
    image = torch.rand(2, 3, 16, 24, dtype=torch.float64)
    depth = torch.full((2, 16, 24), 2.0, dtype=torch.float64)
    K = torch.tensor([[20.0, 0, 11.5], [0, 20.0, 7.5], [0, 0, 1]], dtype=torch.float64)
    out = warp(image, depth, torch.eye(4, dtype=torch.float64).repeat(2, 1, 1), K)
    torch.testing.assert_close(out, image)


@pytest.mark.parametrize("baseline_m, shift_px", [(0.1, 1), (0.2, 2), (0.3, 3)])
def test_warp_of_a_sideways_step_shifts_by_the_disparity(baseline_m, shift_px):
    # a plane 2 m away seen with f = 20 px; the source camera is `baseline_m` to the right: a target pixel u appears
    # at u - f * baseline / 2 in the source
    image = torch.linspace(0, 1, 40, dtype=torch.float64).view(1, 1, 1, 40).expand(1, 3, 10, 40).contiguous()
    depth = torch.full((1, 10, 40), 2.0, dtype=torch.float64)
    K = torch.tensor([[20.0, 0, 19.5], [0, 20.0, 4.5], [0, 0, 1]], dtype=torch.float64)
    T = torch.eye(4, dtype=torch.float64)[None].clone()
    T[0, 0, 3] = -baseline_m  # points move left in the source camera's frame
    out = warp(image, depth, T, K)
    torch.testing.assert_close(out[0, 0, 5, 5:30], image[0, 0, 5, 5 - shift_px:30 - shift_px], atol=1e-9, rtol=0)


def test_photometric_error_is_zero_for_equal_images_and_smoothness_for_flat_disparity():
    image = torch.rand(1, 3, 8, 8)
    assert float(photometric_error(image, image).max()) < 1e-6
    assert float(smoothness(torch.ones(1, 8, 8), image)) == 0.0
