"""Classical detector of the transect tape: one long, thin line, lighter and yellower than what lies beside it.

A survey tape is 1-3 cm wide: a few pixels at processing width, often below what the segmentation network resolves
(it is trained at a smaller input size). Its look is simple, though: a thin ridge in both brightness and
yellowness (tapes are white or yellow; sand, rock and water are bluer) that runs straight across much of the frame.
So the ridge is found with a morphological top-hat, long straight runs of it with a Hough transform, and only the
runs that are filled along their length and empty beside it (a line, not a textured patch) are kept, collinear
with the best one: one tape per frame. A parallel ridge line off that line scoring nearly as well means striped
texture (seagrass blades), and then nothing is taken.
"""

from __future__ import annotations

import cv2
import numpy as np

REFERENCE_WIDTH = 640  # pixel sizes below are at this image width and scale with it
SMOOTHING_PX = 1.0  # Gaussian sigma taken off sensor noise and sand grain before looking for the ridge
TOPHAT_PX = 11  # wider than a tape, narrower than a colony
RIDGE_LEVEL = 8.0  # grey levels (0..255) a tape stands above its surroundings, in brightness and in yellowness
MIN_LENGTH = 0.2  # of the image's shorter side: the shortest straight run taken for tape
MAX_GAP_PX = 8  # a run bridges breaks in the ridge this long (a shell or a coral branch across the tape)
HOUGH_VOTES = 30  # ridge pixels a straight run needs before it is considered at all
SIDE_OFFSET_PX = 6  # "beside the line": this far on either side
MIN_FILL = 0.7  # share of a run's length on the ridge
MAX_SIDE_FILL = 0.3  # share of either side's parallel line on the ridge: more is texture, not a tape
MAX_TURN_DEG = 8.0  # runs of one tape: this collinear with the best run ...
MAX_OFFSET_PX = 8  # ... and their ends this close to its line
RIVAL_SHARE = 0.5  # a parallel ridge line off the tape's line scoring this share of the best: texture (seagrass
# blades, strokes), not one tape, so nothing is taken
LINE_HALF_WIDTH_PX = 2  # ridge pixels kept this near a kept run
NETWORK_SEES_TAPE = 0.5  # mean tape probability along the detection above which the network's own tape stands


def tape_ridge(image: np.ndarray, scale: float) -> np.ndarray:
    """(H, W) uint8 1 where a (H, W, 3) uint8 RGB image has a thin ridge lighter and yellower than its surroundings."""
    smooth = cv2.GaussianBlur(image, (0, 0), SMOOTHING_PX * scale).astype(np.int16)
    red, green, blue = smooth[..., 0], smooth[..., 1], smooth[..., 2]
    yellowness = np.clip((red + green) // 2 - blue + 128, 0, 255).astype(np.uint8)
    lightness = ((red + green + blue) // 3).astype(np.uint8)
    size = max(5, int(round(TOPHAT_PX * scale)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    ridge = np.minimum(cv2.morphologyEx(yellowness, cv2.MORPH_TOPHAT, kernel),
                       cv2.morphologyEx(lightness, cv2.MORPH_TOPHAT, kernel))
    return (ridge > RIDGE_LEVEL).astype(np.uint8)


def line_fill(binary: np.ndarray, segment: np.ndarray, offsets=(0.0,)) -> float:
    """Share of the positions along `segment` (x0, y0, x1, y1) where `binary` is set at any of `offsets`
    (pixels to the segment's left; negative: right)."""
    start, end = segment[:2].astype(np.float64), segment[2:].astype(np.float64)
    length = float(np.linalg.norm(end - start))
    if length == 0:
        return 0.0
    direction = (end - start) / length
    t = np.linspace(0.0, 1.0, int(length) + 1)[:, None, None]
    shifts = np.asarray(offsets, np.float64)[None, :, None] * np.array([-direction[1], direction[0]])
    points = np.rint(start + t * (end - start) + shifts).astype(int)  # (positions, offsets, 2)
    h, w = binary.shape
    inside = (points[..., 0] >= 0) & (points[..., 0] < w) & (points[..., 1] >= 0) & (points[..., 1] < h)
    hits = np.zeros(inside.shape, bool)
    hits[inside] = binary[points[..., 1][inside], points[..., 0][inside]] > 0
    seen = inside.any(axis=1)
    return float(hits.any(axis=1)[seen].mean()) if seen.any() else 0.0


def collinear(segment: np.ndarray, reference: np.ndarray, max_turn_deg: float, max_offset: float) -> bool:
    """Whether `segment` lies along the line of `reference` (both (x0, y0, x1, y1)): direction and end distances."""
    a, b = reference[:2].astype(np.float64), reference[2:].astype(np.float64)
    along = (b - a) / np.linalg.norm(b - a)
    normal = np.array([-along[1], along[0]])
    s0, s1 = segment[:2].astype(np.float64), segment[2:].astype(np.float64)
    direction = (s1 - s0) / max(np.linalg.norm(s1 - s0), 1e-9)
    turned = abs(float(direction @ normal)) > np.sin(np.radians(max_turn_deg))
    return not turned and max(abs((s0 - a) @ normal), abs((s1 - a) @ normal)) <= max_offset


def detect_tape(image: np.ndarray) -> np.ndarray:
    """(H, W) bool mask of the transect tape in a (H, W, 3) uint8 RGB frame; all False when no tape is seen."""
    h, w = image.shape[:2]
    scale = w / REFERENCE_WIDTH
    ridge = tape_ridge(image, scale)
    near_ridge = cv2.dilate(ridge, np.ones((3, 3), np.uint8))
    found = cv2.HoughLinesP(ridge, 1, np.pi / 180, HOUGH_VOTES, minLineLength=int(MIN_LENGTH * min(h, w)),
                            maxLineGap=max(1, int(round(MAX_GAP_PX * scale))))
    mask = np.zeros((h, w), np.uint8)
    if found is None:
        return mask.astype(bool)
    side = SIDE_OFFSET_PX * scale
    lines, runs = [], []  # filled straight runs of ridge; those of them with nothing beside them
    for segment in found.reshape(-1, 4):
        fill = line_fill(near_ridge, segment)
        if fill < MIN_FILL:
            continue
        lines.append((fill * float(np.hypot(*(segment[2:] - segment[:2]))), segment))
        if max(line_fill(ridge, segment, (side,)), line_fill(ridge, segment, (-side,))) <= MAX_SIDE_FILL:
            runs.append(lines[-1])
    if not runs:
        return mask.astype(bool)
    best_score, best = max(runs, key=lambda run: run[0])
    offset = MAX_OFFSET_PX * scale
    for score, segment in lines:
        if (score >= RIVAL_SHARE * best_score and collinear(segment, best, MAX_TURN_DEG, max(h, w))
                and not collinear(segment, best, MAX_TURN_DEG, offset)):
            return mask.astype(bool)
    thickness = 2 * max(1, int(round(LINE_HALF_WIDTH_PX * scale))) + 1
    for _, segment in runs:
        if collinear(segment, best, MAX_TURN_DEG, offset):
            cv2.line(mask, (int(segment[0]), int(segment[1])), (int(segment[2]), int(segment[3])), 1, thickness)
    return (mask & ridge).astype(bool)


def mark_tape(probabilities: np.ndarray, mask: np.ndarray, tape_channel: int) -> bool:
    """Write the tape of a (H, W) bool mask (any size) into (C, h, w) float32 class probabilities, in place: each
    cell moves towards the tape class by the share of it the mask covers. Returns whether anything was written.

    Where the network already gives the detected line a mean tape probability above `NETWORK_SEES_TAPE`, its own
    (sharper-edged) tape stands and the probabilities are left as they are.
    """
    c, h, w = probabilities.shape
    share = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    rows, cols = np.nonzero(share)
    if not len(rows):
        return False
    covered = share[rows, cols]
    if float((probabilities[tape_channel, rows, cols] * covered).sum()) > NETWORK_SEES_TAPE * float(covered.sum()):
        return False
    probabilities[:, rows, cols] *= 1.0 - covered
    probabilities[tape_channel, rows, cols] += covered
    return True
