"""Segmentation trained on sparse point labels (as CoralNet annotators give them) against dense labels: the same
synthetic images, iterations and seed, scored on held-out transects. The point labels train four ways: spread to
the nearby pixels of their colour (--spread-points), on the points only (--points-only), on the points with the
colour-affinity loss (--affinity-weight), and spread with the affinity loss (the default for point labels).

    python tools/bench_point_labels.py --out runs/bench_points --iterations 400
    python tools/bench_point_labels.py --train synth/train_* --heldout synth/heldout_101 --points 50

Without --train/--heldout it renders two training transects (seeds 21, 22) and one held-out (seed 121), 8 and
6 m at 3 frames/s. Prints pixel accuracy, mIoU and IoU by class of each run and the ratio of each point run's
mIoU to the dense run's; writes bench_point_labels.json in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="*", type=Path, help="reefmap synth folders to train on")
    parser.add_argument("--heldout", nargs="*", type=Path, help="reefmap synth folders to score on")
    parser.add_argument("--points", type=int, default=50, help="labelled points per image in the sparse run")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--input-width", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_points"))
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the training runs and of the simulated points (another seed: a replicate)")
    parser.add_argument("--threads", type=int, help="torch threads for training (default: all cores)")
    parser.add_argument("--affinity-weight", type=float, default=1.0,
                        help="weight of the colour-affinity loss in the points + affinity run")
    parser.add_argument("--runs", nargs="*", choices=("dense", "spread", "points", "affinity", "spread-affinity"),
                        default=["dense", "spread", "points", "affinity", "spread-affinity"],
                        help="which runs to train (dense always)")
    parser.add_argument("--reuse", action="store_true",
                        help="score a run's weights already in --out (same settings) instead of training it again")
    args = parser.parse_args()

    import numpy as np
    import torch

    from reefmap.models.weights import load_weights
    from reefmap.taxonomy import default_taxonomy
    from reefmap.train.data import load_transect
    from reefmap.train.segmentation import SegmentationTraining, evaluate_segmentation, train_segmentation

    args.out.mkdir(parents=True, exist_ok=True)
    train = args.train or [_render(args.out / f"train_{s}", s, 8.0) for s in (21, 22)]
    heldout = args.heldout or [_render(args.out / "heldout_121", 121, 6.0)]
    taxonomy = default_taxonomy()
    lut = np.full(256, len(taxonomy), np.int64)
    lut[taxonomy.ids] = np.arange(len(taxonomy))
    size = (args.input_width, int(round(args.input_width * 9 / 16)))
    scored = [load_transect(d, size) for d in heldout]
    frames = [(t, i) for t, tr in enumerate(scored) for i in range(len(tr.images))]
    rows = {}
    runs = (("dense", "dense", None, False, 0.0), (f"{args.points} points, spread", "spread", args.points, True, 0.0),
            (f"{args.points} points only", "points", args.points, False, 0.0),
            (f"{args.points} points + affinity", "affinity", args.points, False, args.affinity_weight),
            (f"{args.points} points, spread + affinity", "spread-affinity", args.points, True, args.affinity_weight))
    for name, stem, points, spread, affinity in (r for r in runs if r[1] == "dense" or r[1] in args.runs):
        out = args.out / f"{stem}.safetensors"
        started = time.perf_counter()
        settings = SegmentationTraining(
            data=[str(d) for d in train], out=str(out), input_width=args.input_width, crop=(192, 112),
            iterations=args.iterations, eval_every=args.iterations, batch_size=6, points_per_image=points,
            spread_points=spread, affinity_weight=affinity, seed=args.seed, threads=args.threads)
        if not (args.reuse and out.exists() and _trained_with(out, settings)):
            train_segmentation(settings, log=lambda line: print(f"  [{name}] {line}", flush=True))
        trained = load_weights(out, "segmentation")
        metrics = evaluate_segmentation(trained.model, scored, frames, lut, len(taxonomy), torch.device("cpu"),
                                        args.input_width, trained.card["normalisation"])
        rows[name] = {"pixel_accuracy": metrics["pixel_accuracy"], "miou": metrics["miou"],
                      "iou_by_class": {taxonomy.classes[k].name: v for k, v in metrics["iou"].items()},
                      "training_s": time.perf_counter() - started}
    ratios = {name: r["miou"] / rows["dense"]["miou"] if rows["dense"]["miou"] else float("nan")
              for name, r in rows.items() if name != "dense"}
    print(f"\ntrained on {', '.join(d.name for d in train)}; scored on {', '.join(d.name for d in heldout)} "
          f"({len(frames)} frames); {args.iterations} iterations each")
    for name, r in rows.items():
        print(f"{name:<12} pixel accuracy {r['pixel_accuracy']:.3f}  mIoU {r['miou']:.3f}  ({r['training_s']:.0f} s)")
    print("\nIoU by class (held-out truth), in the order above:")
    for cls in rows["dense"]["iou_by_class"]:
        print(f"  {cls:<30}" + "".join(f"{r['iou_by_class'][cls]:>7.3f}" for r in rows.values()))
    for name, ratio in ratios.items():
        print(f"{name} / dense mIoU: {ratio:.2f}")
    (args.out / "bench_point_labels.json").write_text(json.dumps({"rows": rows, "ratios": ratios, "seed": args.seed,
                                                                   "iterations": args.iterations}, indent=1))


def _trained_with(weights: Path, settings) -> bool:
    """Whether the card beside `weights` records these training settings (threads and where it was written aside)."""
    from dataclasses import asdict

    recorded = json.loads(weights.with_suffix(".json").read_text())["training"]["settings"]
    wanted = json.loads(json.dumps(asdict(settings)))
    return all(recorded.get(k) == v for k, v in wanted.items() if k not in ("out", "threads", "colour_normalisation"))


def _render(folder: Path, seed: int, length_m: float) -> Path:
    import reefmap

    if not (folder / "truth.json").exists():
        reefmap.synth(folder, seed=seed, length_m=length_m, fps=3.0, quiet=True)
    return folder


if __name__ == "__main__":
    main()
