"""Pure functions joining SfM poses with learned motion, and depth maps with the sparse points SfM triangulated."""

from __future__ import annotations

import numpy as np

from reefmap.geometry.transforms import axis_angle_to_matrix, invert_pose, matrix_to_axis_angle

MIN_POINTS = 20  # sparse points a frame needs before its depth is aligned to them


def bridge_gaps(poses: np.ndarray, registered: np.ndarray, relatives: np.ndarray) -> np.ndarray:
    """Camera-to-world poses for every frame: registered ones as given, the rest chained from learned motion.

    `poses` (N, 4, 4) with the registered frames' poses; `relatives` (N, 4, 4), `relatives[i]` the learned motion
    T_{i-1}<-i (row 0 unused). Frames before the first or after the last registered one are chained outward from
    it; inside a gap the chained poses are bent so that they meet the registered pose at its far end, the
    rotation and position error spread in proportion to the frame's place in the gap. Without any registered
    frame the learned motion alone makes the path. Units are those of `poses`; `relatives` must share them.
    """
    count = len(poses)
    out = np.array(poses, dtype=np.float64)
    indices = np.flatnonzero(registered)
    if len(indices) == 0:
        out[0] = np.eye(4)
        indices = np.array([0])
    first, last = indices[0], indices[-1]
    for i in range(first - 1, -1, -1):
        out[i] = out[i + 1] @ invert_pose(relatives[i + 1])
    for i in range(last + 1, count):
        out[i] = out[i - 1] @ relatives[i]
    for a, b in zip(indices[:-1], indices[1:]):
        if b - a > 1:
            out[a + 1:b] = _bent_chain(out[a], out[b], relatives[a + 1:b + 1])
    return out


def _bent_chain(start: np.ndarray, end: np.ndarray, relatives: np.ndarray) -> np.ndarray:
    """Poses strictly between `start` and `end` chained from `relatives` (len = gap + 1), bent to meet `end`."""
    chained = [start]
    for relative in relatives:
        chained.append(chained[-1] @ relative)
    reached = chained[-1]
    rotation_error = matrix_to_axis_angle(end[:3, :3] @ reached[:3, :3].T)
    position_error = end[:3, 3] - reached[:3, 3]
    steps = len(relatives)
    out = []
    for k in range(1, steps):
        weight = k / steps
        pose = chained[k].copy()
        pose[:3, :3] = axis_angle_to_matrix(weight * rotation_error) @ pose[:3, :3]
        pose[:3, 3] += weight * position_error
        out.append(pose)
    return np.array(out)


def similarity_on_shared_frames(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, R, t) taking (M, 4, 4) camera-to-world `source` poses onto `target` poses of the same frames (M >= 2):
    R is the mean of the frames' orientation differences (so a straight path fixes its roll too), s the ratio of
    the centres' spreads about their means, t the shift of the means."""
    summed = sum(t[:3, :3] @ s[:3, :3].T for s, t in zip(source, target))
    u, _, vt = np.linalg.svd(summed)
    rotation = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    cs, ct = source[:, :3, 3], target[:, :3, 3]
    spread = np.linalg.norm(cs - cs.mean(0), axis=1).sum()
    scale = float(np.linalg.norm(ct - ct.mean(0), axis=1).sum() / spread) if spread > 0 else 1.0
    return scale, rotation, ct.mean(0) - scale * rotation @ cs.mean(0)


def apply_similarity(poses: np.ndarray, scale: float, rotation: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(N, 4, 4) camera-to-world poses moved by x -> scale R x + t: rotations turn, centres move and scale."""
    out = np.array(poses, dtype=np.float64)
    out[:, :3, :3] = rotation @ out[:, :3, :3]
    out[:, :3, 3] = scale * out[:, :3, 3] @ rotation.T + shift
    return out


def motion_disagreement(centres: np.ndarray, registered: np.ndarray, learned_steps: np.ndarray,
                        window: int = 7, limit: float = 3.0) -> np.ndarray:
    """Keyframes whose SfM motion disagrees with the learned motion: (K,) bool.

    `centres` (K, 3) SfM camera centres of consecutive keyframes, `learned_steps` (K-1,) the learned distance
    between them. The ratio of SfM to learned step, smoothed by a running median over `window` steps, is compared
    with its median over the whole path; where it is more than `limit` times larger or smaller, both keyframes of
    the step are flagged (a model whose scale ran away, or a wrong join). The pose network's scale is only
    roughly right, so only gross disagreement counts."""
    flagged = np.zeros(len(centres), bool)
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    usable = registered[:-1] & registered[1:] & (learned_steps > 1e-6)
    if usable.sum() < window:
        return flagged
    ratio = np.full(len(steps), np.nan)
    ratio[usable] = steps[usable] / learned_steps[usable]
    half = window // 2
    local = np.array([np.nanmedian(ratio[max(0, k - half):k + half + 1]) if usable[k] else np.nan
                      for k in range(len(ratio))])
    typical = np.nanmedian(ratio)
    bad = usable & ((local > limit * typical) | (local < typical / limit))
    flagged[:-1] |= bad
    flagged[1:] |= bad
    return flagged


def sample_depth(depth: np.ndarray, view: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Depth (h, w) at the pixels of `view` (M, 3: u, v at `image_size` (W, H), z), nearest neighbour; (M,)."""
    h, w = depth.shape
    u = np.clip(np.rint((view[:, 0] + 0.5) * w / image_size[0] - 0.5).astype(int), 0, w - 1)
    v = np.clip(np.rint((view[:, 1] + 0.5) * h / image_size[1] - 0.5).astype(int), 0, h - 1)
    return depth[v, u]


def depth_scale(depth: np.ndarray, view: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float] | None:
    """The factor s that brings `depth` onto the sparse points' depths (median of z / depth) and the median
    relative disagreement |s depth - z| / z left after it; None with fewer than `MIN_POINTS` usable points."""
    sampled = sample_depth(depth, view, image_size)
    usable = np.isfinite(sampled) & (sampled > 0) & (view[:, 2] > 0)
    if usable.sum() < MIN_POINTS:
        return None
    return _median_scale(view[usable, 2], sampled[usable])


def fit_depth_scale(depth: np.ndarray, reference: np.ndarray) -> tuple[float, float] | None:
    """Like `depth_scale`, against a dense `reference` depth map of the same shape (0 = none)."""
    usable = (reference > 0) & np.isfinite(depth) & (depth > 0)
    if usable.sum() < MIN_POINTS:
        return None
    return _median_scale(reference[usable], depth[usable])


def _median_scale(reference: np.ndarray, depth: np.ndarray) -> tuple[float, float]:
    """(median of reference / depth, median relative disagreement left after scaling `depth` by it)."""
    z, d = reference.astype(np.float64), depth.astype(np.float64)
    scale = float(np.median(z / d))
    return scale, float(np.median(np.abs(scale * d - z) / z))


def units_per_metre(depths: list[np.ndarray], views: list[np.ndarray], image_size: tuple[int, int]) -> float | None:
    """SfM units per unit of the depth network over several frames (the median of their `depth_scale`s)."""
    scales = [s[0] for s in (depth_scale(d, v, image_size) for d, v in zip(depths, views)) if s is not None]
    return float(np.median(scales)) if scales else None


def scale_poses(poses: np.ndarray, factor: float) -> np.ndarray:
    """(N, 4, 4) poses with their positions multiplied by `factor`."""
    out = np.array(poses, dtype=np.float64)
    out[:, :3, 3] *= factor
    return out
