"""Time `reefmap synth` (target: a 20 m transect at 10 fps, 640x360, in under 2 minutes on 2 cores).

    python tools/bench_synth.py --length-m 20 --fps 10 --size 640x360
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length-m", type=float, default=20.0)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scene", default="mixed")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from reefmap.synthetic.dataset import SynthSettings, synthesize

    w, h = (int(v) for v in args.size.split("x"))
    settings = SynthSettings(seed=args.seed, scene=args.scene, length_m=args.length_m, fps=args.fps, size=(w, h))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        manifest = synthesize(Path(tmp) / "synth", settings, quiet=True)
        seconds = time.perf_counter() - start
    frames = manifest["frames"]
    figures = {"length_m": args.length_m, "fps": args.fps, "size": args.size, "frames": frames,
               "seconds": round(seconds, 2), "frames_per_s": round(frames / seconds, 2),
               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    print(f"{frames} frames ({args.length_m:g} m at {args.fps:g} fps, {args.size}) in {seconds:.1f} s = "
          f"{frames / seconds:.2f} frames/s; peak RSS {figures['peak_rss_mib']} MiB; target < 120 s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
