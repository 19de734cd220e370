"""Peak memory of `reefmap process` as the transect gets longer: the same clip played back to back as chapters
(a short video and one N times longer), each run in its own process. The map keeps growing along the chained
camera path, so this measures what grows with video length.

    python tools/bench_memory.py ../shared/realdata/deepreefmap_video/reef_clip.mp4 --minutes 1 30 --fps 1
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
import reefmap
videos, out, fps, threads = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4])
start = time.perf_counter()
result = reefmap.process(videos, out, fps=fps, threads=threads, quiet=True)
print(json.dumps({"frames": result.summary.frames_processed, "points": len(result.cloud),
                  "seconds": time.perf_counter() - start,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def clip_seconds(video: str) -> float:
    import cv2

    capture = cv2.VideoCapture(video)
    return capture.get(cv2.CAP_PROP_FRAME_COUNT) / capture.get(cv2.CAP_PROP_FPS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 30.0])
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--threads", type=int, help="torch threads of each run (default: all cores)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    length = clip_seconds(args.video)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            repeats = max(1, math.ceil(60 * minutes / length))
            proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps([args.video] * repeats),
                                   str(Path(tmp) / f"run{minutes:g}"), str(args.fps), json.dumps(args.threads)],
                                  capture_output=True, text=True)
            if proc.returncode:
                sys.exit(proc.stderr)
            row = json.loads(proc.stdout.strip().splitlines()[-1]) | {"minutes": repeats * length / 60}
            rows.append(row)
            print(f"{row['minutes']:6.1f} min  {row['frames']:6d} frames  {row['points']:9d} map points  "
                  f"{row['seconds']:7.1f} s  peak RSS {row['peak_rss_mib']:7.0f} MiB", flush=True)
    ratio = rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]
    print(f"peak RSS {rows[-1]['minutes']:.0f} min / {rows[0]['minutes']:.0f} min = {ratio:.2f} (target <= 1.3)")
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "ratio": ratio, "fps": args.fps}, indent=1))


if __name__ == "__main__":
    main()
