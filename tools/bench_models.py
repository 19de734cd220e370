"""Accuracy of segmentation and depth/pose weights on synthetic transects they were not trained on.

    reefmap synth --out /tmp/heldout_101 --seed 101 --scene mixed --fps 3 --length-m 10
    python tools/bench_models.py /tmp/heldout_101 [--seg weights/segmentation.safetensors] [--depth ...]

Prints pixel accuracy, mIoU (classes present) and per-class IoU, depth AbsRel (metric and
median-scaled), delta<1.25 and relative-motion errors; --json writes them.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="+", help="reefmap synth folders (seeds not used in training)")
    parser.add_argument("--seg", type=Path, help="segmentation weights [default: installed]")
    parser.add_argument("--depth", type=Path, help="depth/pose weights [default: installed]")
    parser.add_argument("--label-width", type=int, default=640,
                        help="width the truth labels are compared at, whatever the model's input size "
                             "(default 640: the map's default processing width)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import numpy as np
    import torch

    from reefmap.models.weights import default_weights, load_weights
    from reefmap.perception.networks import network_size
    from reefmap.taxonomy import default_taxonomy
    from reefmap.train.data import load_transect
    from reefmap.train.depth_pose import evaluate_depth_pose
    from reefmap.train.segmentation import evaluate_segmentation

    device = torch.device("cpu")
    taxonomy = default_taxonomy()
    results = {"data": [str(d) for d in args.data]}

    seg = load_weights(args.seg or default_weights("segmentation"), "segmentation")
    width = seg.card["input_size"][0]
    transects = [load_transect(d, (args.label_width, int(round(args.label_width * 9 / 16)))) for d in args.data]
    frames = [(t, i) for t, tr in enumerate(transects) for i in range(len(tr.images))]
    lut = np.full(256, len(taxonomy), np.int64)
    lut[taxonomy.ids] = np.arange(len(taxonomy))
    metrics = evaluate_segmentation(seg.model, transects, frames, lut, len(taxonomy), device, width,
                                    seg.card["normalisation"])
    results["segmentation"] = {"weights": str(seg.path), "frames": len(frames), "input_width": width,
                               "label_width": args.label_width, "pixel_accuracy": metrics["pixel_accuracy"],
                               "miou": metrics["miou"],
                               "iou": {taxonomy.classes[k].name: v for k, v in metrics["iou"].items()}}
    print(f"segmentation {seg.path.name} ({width} px input, labels at {args.label_width} px): {len(frames)} frames, pixel accuracy {metrics['pixel_accuracy']:.3f}, "
          f"mIoU {metrics['miou']:.3f}")
    for name, iou in sorted(results["segmentation"]["iou"].items(), key=lambda kv: -kv[1]):
        print(f"  {iou:.3f}  {name}")

    dp = load_weights(args.depth or default_weights("depth_pose"), "depth_pose")
    width = dp.card["input_size"][0]
    transects = [load_transect(d, (width, int(round(width * 9 / 16)))) for d in args.data]
    pairs = [(t, i, i + 1) for t, tr in enumerate(transects) for i in range(len(tr.images) - 1)]
    size = network_size((width, int(round(width * 9 / 16))), width)
    metrics = evaluate_depth_pose(dp.model, transects, pairs, size, device)
    results["depth_pose"] = {"weights": str(dp.path), "pairs": len(pairs), **metrics}
    print(f"depth/pose {dp.path.name}: {len(pairs)} pairs, " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
