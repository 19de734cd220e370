"""`reefmap evaluate`: compare a processing run with the ground truth of a synthetic transect."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from reefmap.errors import UsageError
from reefmap.io.camera import CameraProfile, Undistorter
from reefmap.io.files import read_poses_csv, write_json
from reefmap.mapping.cloud import read_ply
from reefmap.report.cover import planar_cover
from reefmap.report.summary import load_summary
from reefmap.runtime.o3d import open3d
from reefmap.synthetic.dataset import FORMAT, read_mesh_ply
from reefmap.synthetic.truth import MIN_UPNESS, cells_inside
from reefmap.taxonomy import default_taxonomy

COMPLETENESS_RADIUS_M = 0.05


def umeyama(source: np.ndarray, target: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising |target - (s R source + t)|² over (N, 3) point pairs (Umeyama 1991)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    xs, xt = source - mu_s, target - mu_t
    cov = xt.T @ xs / len(source)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    R = u @ sign @ vt
    var_s = (xs ** 2).sum() / len(source)
    s = float(np.trace(np.diag(d) @ sign) / var_s) if with_scale and var_s > 0 else 1.0
    return s, R, mu_t - s * R @ mu_s


def align_trajectories(estimate: np.ndarray, reference: np.ndarray, arm_m: float = 1.0) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity taking (N, 4, 4) estimated camera-to-world poses onto the reference ones.

    Camera centres alone leave the roll about a straight transect undetermined, so each camera also
    contributes the tips of its three axes, `arm_m` long in the reference (scaled by the path-length
    ratio in the estimate).
    """
    est, ref = estimate[:, :3, 3], reference[:, :3, 3]
    est_length = np.linalg.norm(np.diff(est, axis=0), axis=1).sum()
    ref_length = np.linalg.norm(np.diff(ref, axis=0), axis=1).sum()
    if len(est) < 2 or est_length <= 0:
        return 1.0, reference[0, :3, :3] @ estimate[0, :3, :3].T, ref.mean(0) - est.mean(0)
    est_arm = arm_m * est_length / ref_length
    source = np.concatenate([est] + [est + est_arm * estimate[:, :3, k] for k in range(3)])
    target = np.concatenate([ref] + [ref + arm_m * reference[:, :3, k] for k in range(3)])
    return umeyama(source, target)


def _read_cover(path: Path, column: str = "percent_cover") -> dict[int, float | None]:
    with open(path) as f:
        return {int(r["class_id"]): (float(r[column]) if r.get(column) else None) for r in csv.DictReader(f)}


def _surface_cover_scores(run_dir: Path, true_surface: np.ndarray | None, taxonomy) -> dict | None:
    """Error of the run's 3D surface cover per class against the true surface shares over the mapped cells."""
    if true_surface is None:
        return None
    run = _read_cover(run_dir / "cover.csv", "surface_percent")
    truth = {r.class_id: r.percent for r in planar_cover(true_surface, taxonomy)}
    per_class = {c.name: {"run": round(run[c.id], 4), "truth": round(truth[c.id], 4),
                          "error_pts": round(run[c.id] - truth[c.id], 4)}
                 for c in taxonomy.classes if run.get(c.id) is not None and truth.get(c.id) is not None
                 and (run[c.id] or truth[c.id])}
    errors = [abs(v["error_pts"]) for v in per_class.values()]
    return {"per_class": per_class, "max_abs_error_pts": max(errors, default=0.0),
            "mean_abs_error_pts": float(np.mean(errors)) if errors else 0.0}


def evaluate(run_dir: str | Path, truth_dir: str | Path) -> dict:
    """Cover error, trajectory error and scale, cloud accuracy/completeness and 3D label accuracy."""
    run_dir, truth_dir = Path(run_dir), Path(truth_dir)
    for folder, marker, what in ((run_dir, "summary.json", "a finished `reefmap process` run"),
                                 (truth_dir, "truth.json", "a `reefmap synth` folder")):
        if not (folder / marker).exists():
            raise UsageError(f"{folder} is not {what} (no {marker}); check the path")
    manifest = json.loads((truth_dir / "truth.json").read_text())
    if manifest.get("format") != FORMAT or "truth_grid" not in manifest:
        raise UsageError(f"{truth_dir} was written by another reefmap version; render it again with `reefmap synth`")
    taxonomy = default_taxonomy()

    run_times, run_poses = read_poses_csv(run_dir / "trajectory.csv")
    true_times, true_poses = read_poses_csv(truth_dir / manifest["poses"])
    index = np.clip(np.rint(run_times * manifest["fps"]).astype(int), 0, len(true_times) - 1)
    est, ref = run_poses[:, :3, 3], true_poses[index, :3, 3]
    path_length = float(np.linalg.norm(np.diff(ref, axis=0), axis=1).sum())
    s, R, t = align_trajectories(run_poses, true_poses[index])
    aligned = s * est @ R.T + t
    ate = float(np.sqrt(np.mean(np.sum((aligned - ref) ** 2, axis=1))))

    cloud = read_ply(run_dir / "cloud.ply")
    points = (s * cloud.points.astype(np.float64) @ R.T + t).astype(np.float32)
    grid = TruthGrid(truth_dir, manifest)
    run_cover = _read_cover(run_dir / "cover.csv")
    strip_cover = _read_cover(truth_dir / "cover_true.csv")
    region = grid.mapped_region(points)
    mapped_cover = {r.class_id: r.percent for r in planar_cover(grid.cells_under(region), taxonomy)}
    per_class = {}
    for c in taxonomy.classes:
        mine, true, strip = run_cover.get(c.id), mapped_cover.get(c.id), strip_cover.get(c.id)
        if mine is None or true is None or (mine == 0 and true == 0 and not strip):
            continue
        per_class[c.name] = {"run": round(mine, 4), "truth": round(true, 4), "error_pts": round(mine - true, 4),
                             "truth_filmed_strip": round(strip, 4) if strip is not None else None}
    errors = [abs(v["error_pts"]) for v in per_class.values()]

    vertices, triangles, face_labels = read_mesh_ply(truth_dir / manifest["mesh"])
    cloud_classes = np.array([c.id for c in taxonomy.classes if "ignore_in_cloud" not in c.roles])
    keep = np.isin(face_labels, cloud_classes)
    o3d = open3d()
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(triangles[keep].astype(np.uint32)))
    closest = scene.compute_closest_points(o3d.core.Tensor(points))
    distance = np.linalg.norm(closest["points"].numpy() - points, axis=1)
    true_point_labels = face_labels[keep][closest["primitive_ids"].numpy()]
    label_eval = _label_scores(cloud.labels, true_point_labels, taxonomy)

    sample = grid.seen_surface_points(scene)
    completeness = None
    if len(sample) and len(points):
        tree_cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
        truth_cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(sample.astype(np.float64)))
        gaps = np.asarray(truth_cloud.compute_point_cloud_distance(tree_cloud))
        completeness = float((gaps < COMPLETENESS_RADIUS_M).mean())

    result = {
        "run": str(run_dir.resolve()),
        "truth": str(truth_dir.resolve()),
        "cover": {"per_class": per_class, "max_abs_error_pts": max(errors, default=0.0),
                  "mean_abs_error_pts": float(np.mean(errors)) if errors else 0.0,
                  "truth_region": "true top-down classes over the filmed cells that the run mapped"},
        "trajectory": {"frames": len(est), "path_length_m": path_length, "ate_rmse_m": ate,
                       "ate_percent_of_path": 100 * ate / path_length if path_length else None,
                       "scale_run_to_truth": s, "scale_error_percent": 100 * abs(s - 1.0)},
        "cloud": {"points": len(points), "accuracy_median_m": float(np.median(distance)) if len(distance) else None,
                  "accuracy_p90_m": float(np.percentile(distance, 90)) if len(distance) else None,
                  "completeness": completeness, "completeness_radius_m": COMPLETENESS_RADIUS_M},
        "labels_3d": label_eval,
        "depth": _depth_scores(run_dir, truth_dir, manifest, run_times, s),
        "rugosity": _rugosity_scores(run_dir, manifest),
        "surface_cover": _surface_cover_scores(run_dir, grid.surface_under(region), taxonomy),
    }
    write_json(result, run_dir / "evaluation.json")
    return result


def _depth_scores(run_dir: Path, truth_dir: Path, manifest: dict, run_times: np.ndarray, scale: float,
                  max_frames: int = 30) -> dict | None:
    """Depth AbsRel and delta<1.25 on frames spread over the run (needs `process --save-depth`).

    `abs_rel` uses the run's depth times the trajectory alignment scale (one scale for the whole run);
    `abs_rel_median_scaled` rescales each frame by its median ratio, as monocular depth is usually judged.
    """
    summary = load_summary(run_dir)
    info = summary.depth_maps
    if not info:
        return None
    native = CameraProfile.from_dict(summary.camera["native"])
    truth_size = tuple(manifest["camera"]["image_size"])
    undistort = Undistorter(native.scaled_to(*truth_size))
    picks = np.unique(np.linspace(0, len(run_times) - 1, min(max_frames, len(run_times))).astype(int))
    abs_rel, delta, median_abs_rel = [], [], []
    for k in picks:
        run = cv2.imread(str(run_dir / info["path"].format(k)), cv2.IMREAD_UNCHANGED).astype(np.float64) * info["scale"]
        i = int(np.clip(round(run_times[k] * manifest["fps"]), 0, manifest["frames"] - 1))
        true = cv2.imread(str(truth_dir / manifest["depth"].format(i)), cv2.IMREAD_UNCHANGED).astype(np.float32)
        true = undistort(true * manifest["depth_scale_m"], cv2.INTER_NEAREST)
        true = cv2.resize(true, (run.shape[1], run.shape[0]), interpolation=cv2.INTER_NEAREST).astype(np.float64)
        valid = (true > 0) & (run > 0)
        if valid.sum() < 10:
            continue
        scaled, t = run[valid] * scale, true[valid]
        abs_rel.append(np.mean(np.abs(scaled - t) / t))
        ratio = np.maximum(scaled / t, t / scaled)
        delta.append(np.mean(ratio < 1.25))
        median_scaled = run[valid] * np.median(t / run[valid])
        median_abs_rel.append(np.mean(np.abs(median_scaled - t) / t))
    if not abs_rel:
        return None
    return {"frames": len(abs_rel), "abs_rel": float(np.mean(abs_rel)), "delta_1.25": float(np.mean(delta)),
            "abs_rel_median_scaled": float(np.mean(median_abs_rel))}


def _rugosity_scores(run_dir: Path, manifest: dict) -> dict | None:
    run = load_summary(run_dir).rugosity.get("overall")
    true = manifest["truth"].get("rugosity")
    if run is None or not true:
        return None
    return {"run": run, "truth": true, "error_percent": 100.0 * (run - true) / true}


def _label_scores(predicted: np.ndarray, true: np.ndarray, taxonomy) -> dict:
    """Point accuracy and mean IoU over classes present in the truth or the prediction."""
    if len(true) == 0:
        return {"accuracy": None, "miou": None, "iou": {}}
    iou = {}
    for c in taxonomy.classes:
        p, t = predicted == c.id, true == c.id
        union = int((p | t).sum())
        if union:
            iou[c.name] = float((p & t).sum() / union)
    return {"accuracy": float((predicted == true).mean()), "miou": float(np.mean(list(iou.values()))), "iou": iou}


class TruthGrid:
    """The true top-down class raster of a synthetic transect and the cells its video filmed."""

    def __init__(self, truth_dir: Path, manifest: dict):
        info = manifest["truth_grid"]
        self.labels = cv2.imread(str(truth_dir / info["labels"]), cv2.IMREAD_UNCHANGED).astype(np.int32)
        self.seen = cv2.imread(str(truth_dir / info["seen"]), cv2.IMREAD_UNCHANGED) > 0
        self.cell_m = float(info["cell_m"])
        self.origin = np.array(info["origin_xy"], np.float64)
        self.upness = None
        if "upness" in info:
            self.upness = cv2.imread(str(truth_dir / info["upness"]), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535

    def mapped_region(self, points: np.ndarray) -> np.ndarray:
        """(H, W) bool: the filmed cells that hold a mapped point (gaps closed)."""
        row, col = cells_inside(points[:, :2], self.origin, self.cell_m, self.labels.shape)
        mapped = np.zeros(self.labels.shape, np.uint8)
        mapped[row, col] = 1
        size = 2 * int(np.ceil(0.03 / self.cell_m)) + 1
        mapped = cv2.morphologyEx(mapped, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
        return (mapped > 0) & self.seen

    def cells_under(self, region: np.ndarray) -> np.ndarray:
        """(max_id + 1,) true cells per class in `region`."""
        return np.bincount(self.labels[region], minlength=256).astype(np.float64)

    def surface_under(self, region: np.ndarray) -> np.ndarray | None:
        """(max_id + 1,) true 3D surface per class in `region`, in cells; None for truth written without it."""
        if self.upness is None:
            return None
        weights = 1.0 / np.maximum(self.upness[region], MIN_UPNESS)
        return np.bincount(self.labels[region], weights=weights, minlength=256)

    def seen_surface_points(self, scene) -> np.ndarray:
        """Points on the true top surface at the filmed cells (at most 200k)."""
        o3d = open3d()
        rows, cols = np.nonzero(self.seen)
        step = max(1, len(rows) // 200_000)
        x = self.origin[0] + (cols[::step] + 0.5) * self.cell_m
        y = self.origin[1] + (rows[::step] + 0.5) * self.cell_m
        rays = np.zeros((len(x), 6), np.float32)
        rays[:, 0], rays[:, 1], rays[:, 2], rays[:, 5] = x, y, 100.0, -1.0
        t = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
        hit = np.isfinite(t)
        return np.stack([x[hit], y[hit], 100.0 - t[hit]], axis=1).astype(np.float32)
