"""How often the point-count 95 % intervals in cover.csv contain the true cover (target: >= 90 %).

Renders N synthetic transects, maps each with true depth/labels/poses (--oracle) so that only the
point sampling is uncertain, and compares every class's interval with the true planar cover over
the mapped cells (as `reefmap evaluate` computes it).

    python tools/bench_cover_intervals.py --seeds 20 --length-m 6
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--length-m", type=float, default=6.0)
    parser.add_argument("--size", default="480x270")
    parser.add_argument("--fps", type=float, default=4.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--verbose", action="store_true", help="Print every interval that misses the truth.")
    args = parser.parse_args()

    import reefmap
    from reefmap.synthetic.dataset import SynthSettings, synthesize

    w, h = (int(v) for v in args.size.split("x"))
    inside = total = 0
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            truth, run = Path(tmp) / f"synth{seed}", Path(tmp) / f"run{seed}"
            scene = ("mixed", "dense-coral", "sandy", "rubble")[seed % 4]
            synthesize(truth, SynthSettings(seed=1000 + seed, scene=scene, length_m=args.length_m, fps=args.fps,
                                            size=(w, h)), quiet=True)
            reefmap.process(truth / "video.mp4", run, fps=args.fps, oracle=str(truth), quiet=True)
            true_cover = {name: row["truth"] for name, row in reefmap.evaluate(run, truth)["cover"]["per_class"].items()}
            with open(run / "cover.csv") as f:
                rows = [r for r in csv.DictReader(f) if r["point_percent"] and r["class_name"] in true_cover]
            hits = 0
            for r in rows:
                true = true_cover[r["class_name"]]
                inside_interval = float(r["point_ci_low"]) <= true <= float(r["point_ci_high"])
                hits += inside_interval
                if not inside_interval and args.verbose:
                    print(f"  miss {r['class_name']}: truth {true:.2f}, map area {float(r['percent_cover']):.2f}, "
                          f"points {float(r['point_percent']):.2f} [{float(r['point_ci_low']):.2f}, "
                          f"{float(r['point_ci_high']):.2f}]")
            inside, total = inside + hits, total + len(rows)
            per_seed.append({"seed": 1000 + seed, "scene": scene, "classes": len(rows), "inside": hits})
            print(f"seed {1000 + seed} ({scene}): {hits}/{len(rows)} class intervals contain the true cover")
    print(f"coverage {inside}/{total} = {100 * inside / max(total, 1):.1f} % (target >= 90 %)")
    if args.json:
        args.json.write_text(json.dumps({"coverage": inside / max(total, 1), "per_seed": per_seed}, indent=1))


if __name__ == "__main__":
    main()
