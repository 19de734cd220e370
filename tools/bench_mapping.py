"""Camera path, depth, cloud and cover accuracy and seconds per frame of `--mapping learned|sfm|auto` on synthetic
transects, with the shipped networks.

    python tools/bench_mapping.py --seed 303 --length-m 10          # renders the transect first
    python tools/bench_mapping.py --synth synth/heldout_303 --modes sfm --scale none tape altitude

Each mode runs `reefmap process` with the transect's true camera profile (`--camera generic`: the 70-degree guess a
video without a profile gets, which SfM self-calibrates) and `--save-depth`, then
`reefmap evaluate`, once per `--scale` reference: `none`, `tape` (`--tape-length-m` set to the true tape length:
metric scale from the segmented tape) and `altitude` (`--altitude-m` set to the diver's nominal height above the
bottom that the transect was rendered with, what a diver would say). Prints a table and writes bench_mapping.json
in --out.
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

import reefmap  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth", type=Path, help="an existing `reefmap synth` folder (else one is rendered)")
    parser.add_argument("--seed", type=int, default=303, help="seed of the transect to render (not one tuned on)")
    parser.add_argument("--length-m", type=float, default=10.0)
    parser.add_argument("--modes", nargs="+", default=["learned", "sfm", "auto"])
    parser.add_argument("--scale", nargs="+", default=["none"], choices=["none", "tape", "altitude"],
                        help="scale references to run each mode with")
    parser.add_argument("--camera", choices=["true", "generic"], default="true",
                        help="the transect's own camera profile, or none (the generic guess)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per run (0: all)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_mapping"))
    args = parser.parse_args()
    truth = args.synth or args.out / f"synth_{args.seed}"
    if not (truth / "truth.json").exists():
        reefmap.synth(truth, seed=args.seed, length_m=args.length_m, quiet=True)
    manifest = json.loads((truth / "truth.json").read_text())
    references = {"none": ("", {}), "tape": ("+tape", {"tape_length_m": manifest["tape_length_m"]}),
                  "altitude": ("+altitude", {"altitude_m": manifest["settings"]["altitude_m"]})}
    references = [references[name] for name in args.scale]
    rows = []
    for mode, suffix, reference in [(mode, suffix, ref) for suffix, ref in references for mode in args.modes]:
        name = mode + suffix + ("+generic" if args.camera == "generic" else "")
        run_dir = args.out / name
        camera = str(truth / "camera.json") if args.camera == "true" else "generic"
        started = time.perf_counter()
        result = reefmap.process(truth / "video.mp4", run_dir, mapping=mode, camera=camera, save_depth=True,
                                 quiet=True, threads=args.threads or None, **reference)
        seconds = time.perf_counter() - started
        scores = reefmap.evaluate(run_dir, truth)
        frames = result.summary.frames_processed
        rows.append({
            "mapping": name, "frames": frames, "seconds_per_frame": seconds / frames,
            "ate_percent_of_path": scores["trajectory"]["ate_percent_of_path"],
            "scale_error_percent": scores["trajectory"]["scale_error_percent"],
            "depth_absrel": scores.get("depth", {}).get("abs_rel"),
            "cloud_accuracy_cm": 100 * scores["cloud"]["accuracy_median_m"],
            "cloud_completeness": scores["cloud"]["completeness"],
            "label_accuracy_3d": scores["labels_3d"]["accuracy"],
            "cover_error_max": scores["cover"]["max_abs_error_pts"],
            "cover_error_mean": scores["cover"]["mean_abs_error_pts"],
            "rugosity_error_percent": (scores.get("rugosity") or {}).get("error_percent"),
            "method": result.summary.mapping.get("method"),
            "hfov_deg": (result.summary.mapping.get("self_calibration") or {}).get("hfov_deg"),
        })
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{truth} ({rows[0]['frames']} frames), this machine: {os.cpu_count()} CPU threads")
    print(f"{'mapping':<14}{'s/frame':>9}{'ATE %':>8}{'scale %':>9}{'AbsRel':>8}{'cloud cm':>10}{'complete':>10}"
          f"{'labels 3D':>11}{'cover max':>11}{'mean':>7}{'rugosity %':>12}")
    for r in rows:
        def fmt(value, spec):
            return format(value, spec) if value is not None else "-"
        print(f"{r['mapping']:<14}{r['seconds_per_frame']:>9.2f}{fmt(r['ate_percent_of_path'], '>8.2f')}"
              f"{r['scale_error_percent']:>9.1f}{fmt(r['depth_absrel'], '>8.3f')}{r['cloud_accuracy_cm']:>10.1f}"
              f"{fmt(r['cloud_completeness'], '>10.0%')}{fmt(r['label_accuracy_3d'], '>11.0%')}"
              f"{r['cover_error_max']:>11.2f}{r['cover_error_mean']:>7.2f}{fmt(r['rugosity_error_percent'], '>12.1f')}")
    (args.out / "bench_mapping.json").write_text(json.dumps({"truth": str(truth), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
