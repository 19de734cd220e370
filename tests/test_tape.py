import cv2
import numpy as np
import torch

from reefmap.io.video import Frame
from reefmap.models.weights import load_weights
from reefmap.perception.networks import DepthPoseEstimator, Segmenter, perceive
from reefmap.perception.tape import detect_tape, mark_tape
from reefmap.runtime.timing import StageTimer

TAPE_START, TAPE_END = (100, 0), (400, 359)


def _seabed(seed: int = 0) -> np.ndarray:
    """640x360 pale blue sand with grain, and light, yellow and dark blobs the size of colonies and shells, none
    on the tape's line (a tape running under a lighter object is not what these tests are about)."""
    rng = np.random.default_rng(seed)
    image = np.clip(np.array([150, 200, 215]) + rng.normal(0, 6, (360, 640, 3)), 0, 255).astype(np.uint8)
    clear = _distance_to_tape(image.shape[:2])
    for _ in range(40):
        centre = (int(rng.integers(0, 640)), int(rng.integers(0, 360)))
        axes = (int(rng.integers(8, 40)), int(rng.integers(8, 40)))
        if clear[centre[1], centre[0]] < max(axes) + 10:
            continue
        colour = [int(c) for c in rng.choice([(230, 230, 180), (200, 180, 90), (90, 110, 120)])]
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    return image


def _distance_to_tape(shape) -> np.ndarray:
    rows, cols = np.indices(shape)
    (x0, y0), (x1, y1) = TAPE_START, TAPE_END
    return np.abs((y1 - y0) * cols - (x1 - x0) * rows + x1 * y0 - y1 * x0) / np.hypot(x1 - x0, y1 - y0)


def test_a_thin_yellow_line_is_found_and_nothing_beside_it():
    image = _seabed()
    cv2.line(image, TAPE_START, TAPE_END, (235, 225, 150), 3)
    mask = detect_tape(image)
    distance = _distance_to_tape(mask.shape)
    on_tape = distance <= 1.5
    assert mask[on_tape].mean() > 0.8  # recall of the tape's pixels
    assert distance[mask].max() <= 3  # no pixel off the tape


def test_no_tape_no_detection_even_among_light_blobs_and_hatching():
    image = _seabed(1)
    for x in range(300, 420, 5):  # a patch of parallel light strokes: texture, not a tape
        cv2.line(image, (x, 100), (x + 40, 300), (235, 225, 150), 2)
    assert not detect_tape(image).any()
    assert not detect_tape(np.full((360, 640, 3), 128, np.uint8)).any()


def test_mark_tape_moves_covered_cells_to_the_tape_class_unless_the_network_sees_it():
    probabilities = np.zeros((2, 2, 2), np.float32)
    probabilities[0] = 1.0  # the network sees sand everywhere
    mask = np.zeros((4, 4), bool)
    mask[:, 0] = True  # half of each left cell
    assert mark_tape(probabilities, mask, tape_channel=1)
    np.testing.assert_array_equal(probabilities[1], [[0.5, 0.0], [0.5, 0.0]])
    np.testing.assert_array_equal(probabilities.sum(axis=0), np.ones((2, 2)))
    probabilities[1, :, 0], probabilities[0, :, 0] = 0.8, 0.2  # the network's own tape stands
    before = probabilities.copy()
    assert not mark_tape(probabilities, mask, 1)
    assert not mark_tape(probabilities, np.zeros((4, 4), bool), 1)
    np.testing.assert_array_equal(probabilities, before)


def test_perceive_writes_the_detected_tape_into_the_labels(tiny_weights):
    image = _seabed(2)
    cv2.line(image, TAPE_START, TAPE_END, (235, 225, 150), 3)
    segmenter = Segmenter(load_weights(tiny_weights["segmentation"], "segmentation"), torch.device("cpu"))
    estimator = DepthPoseEstimator(load_weights(tiny_weights["depth_pose"], "depth_pose"), torch.device("cpu"))
    tape = int(np.flatnonzero(segmenter.taxonomy.ids == segmenter.taxonomy.ids_with_role("transect_line")[0])[0])
    frames = [Frame(0, 0.0, image)]
    with_tape, = perceive(frames, segmenter, estimator, 1, StageTimer())
    without, = perceive(frames, segmenter, estimator, 1, StageTimer(), tape_detection=False)
    h, w = with_tape.probabilities.shape[1:]
    on_line = cv2.resize((_distance_to_tape((360, 640)) <= 1.5).astype(np.float32), (w, h),
                         interpolation=cv2.INTER_AREA) > 0.4
    assert on_line.sum() > 100
    assert (with_tape.probabilities.argmax(0)[on_line] == tape).mean() > 0.5
    assert (without.probabilities.argmax(0)[on_line] == tape).mean() < 0.1


def test_the_real_clips_tape_is_one_straight_line(real_clip):
    capture = cv2.VideoCapture(str(real_clip))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, bgr = capture.read()
    assert ok
    mask = detect_tape(cv2.cvtColor(cv2.resize(bgr, (640, 360), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    rows, cols = np.nonzero(mask)
    assert len(rows) > 200
    points = np.stack([cols, rows], 1).astype(float)
    centred = points - points.mean(axis=0)
    across = np.linalg.svd(centred, full_matrices=False)[2][1]
    assert np.sqrt(np.mean((centred @ across) ** 2)) < 4.0  # pixels: the lens bends it a little
    assert np.ptp(rows) > 150  # it runs through much of the frame
