"""Segmentation on real reef imagery: expert CoralNet points, and the cover of a real clip across fps and width.

    python tools/bench_real.py                                     # shipped weights, ../shared/realdata
    python tools/bench_real.py --seg other.safetensors --split all --quadrats DIR --no-clip --json out.json

Points: the network runs on each whole photo as `reefmap process` runs it on a frame (resized to its input width,
aspect kept, calibrated softmax) and is read at every expert point. Prints point accuracy by class, grouped
accuracy (live hard coral / sand / other hard bottom), live-coral cover at the points (error per image), and the
expected calibration error of the top class. `--split validation` (default) scores only the fixed validation
photos that training never sees (see reefmap/io/points.py `validation_images`). Clip: `reefmap process` at fps
5 and 10 x width 640 and 960; prints each class's cover per run and its spread (max - min).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def score_points(seg_path, folder: Path, split: str, device: str) -> dict:
    import numpy as np

    from reefmap.models.weights import default_weights, load_weights
    from reefmap.perception.networks import Segmenter, resolve_device
    from reefmap.io.points import point_label_map, read_point_annotations, read_point_image, validation_images
    from reefmap.train.point_scores import point_scores
    from reefmap.train.segmentation import expected_calibration_error

    weights = load_weights(seg_path or default_weights("segmentation"), "segmentation")
    taxonomy = weights.taxonomy
    segmenter = Segmenter(weights, resolve_device(device))
    index_of = {c.id: k for k, c in enumerate(taxonomy.classes)}
    label_map = point_label_map(folder, taxonomy)
    points = read_point_annotations(folder)
    names = sorted(points)
    held_out = validation_images(names)
    chosen = [n for n in names if split == "all" or (n in held_out) == (split == "validation")]
    truth, predicted, owner, confidences = [], [], [], []
    for k, name in enumerate(chosen):
        rgb = read_point_image(folder, name)
        probabilities = segmenter.probabilities([rgb])[0]  # (C, h, w) at the network's size
        c, h, w = probabilities.shape
        for row, col, code in points[name]:
            if label_map.get(code) is None:
                continue
            y = min(h - 1, int(row * h / rgb.shape[0]))
            x = min(w - 1, int(col * w / rgb.shape[1]))
            truth.append(index_of[label_map[code]])
            predicted.append(int(probabilities[:, y, x].argmax()))
            confidences.append(probabilities[:, y, x])
            owner.append(k)
    scores = point_scores(np.array(truth), np.array(predicted), np.array(owner), taxonomy)
    scores["expected_calibration_error"] = expected_calibration_error(np.array(confidences), np.array(truth))
    scores["images"] = chosen
    scores["split"] = split
    scores["weights"] = str(weights.path)
    scores["temperature"] = segmenter.temperature
    return scores


def clip_cover(seg_path, clip: Path, device: str, grid: list[tuple[float, int]]) -> dict:
    import reefmap

    runs = {}
    for fps, width in grid:
        with tempfile.TemporaryDirectory() as out:
            settings = {"fps": fps, "width": width, "quiet": True, "device": device}
            if seg_path:
                settings["seg_weights"] = str(seg_path)
            result = reefmap.process([clip], out, **settings)
            runs[f"fps{fps:g}_w{width}"] = {r.name: r.percent for r in result.cover if r.percent is not None}
    classes = sorted({name for cover in runs.values() for name in cover})
    spread = {name: max(c.get(name, 0.0) for c in runs.values()) - min(c.get(name, 0.0) for c in runs.values())
              for name in classes}
    return {"clip": str(clip), "cover_percent": runs, "spread_points": spread,
            "max_spread_points": max(spread.values()) if spread else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seg", type=Path, help="segmentation weights [default: installed]")
    parser.add_argument("--quadrats", type=Path, default=REALDATA / "coralnet_mcr_lter",
                        help="CoralNet export folder (images/, annotations/, labelset.csv)")
    parser.add_argument("--split", choices=["validation", "train", "all"], default="validation")
    parser.add_argument("--clip", type=Path, default=REALDATA / "deepreefmap_video" / "reef_clip.mp4")
    parser.add_argument("--no-clip", action="store_true", help="score the points only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    result = {"points": score_points(args.seg, args.quadrats, args.split, args.device)}
    p = result["points"]
    print(f"{p['split']} photos: {len(p['images'])}, points: {p['points']} ({p['weights']}, temperature "
          f"{p['temperature']:.2f})")
    print(f"point accuracy {p['point_accuracy']:.3f}, grouped (live coral / sand / other hard bottom) "
          f"{p['grouped_point_accuracy']:.3f}, live-coral cover error {p['live_coral_cover_error_points']:.1f} points "
          f"per image, calibration error {p['expected_calibration_error']:.3f}")
    for name, row in sorted(p["accuracy_by_class"].items(), key=lambda kv: -kv[1]["points"]):
        print(f"  {name:<28} {row['points']:5d} points  accuracy {row['accuracy']:.3f}")
    if not args.no_clip and args.clip.exists():
        result["clip"] = clip_cover(args.seg, args.clip, args.device, [(5, 640), (10, 640), (5, 960), (10, 960)])
        c = result["clip"]
        print(f"real clip cover across {', '.join(c['cover_percent'])}: largest spread {c['max_spread_points']:.1f} points")
        for name, spread in sorted(c["spread_points"].items(), key=lambda kv: -kv[1]):
            values = " ".join(f"{run[name] if name in run else 0.0:5.1f}" for run in c["cover_percent"].values())
            print(f"  {name:<28} {values}  spread {spread:.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
