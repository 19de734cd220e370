"""Oracle perception: true depth, labels and poses of a `reefmap synth` transect, for evaluating fusion and cover."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from reefmap.errors import UsageError
from reefmap.io.files import read_poses_csv
from reefmap.io.video import Frame, FrameSource


class TruthReader:
    """Reads the ground truth of a synthetic transect at the times of sampled frames."""

    def __init__(self, truth_dir: str | Path):
        self.dir = Path(truth_dir)
        manifest = self.dir / "truth.json"
        if not manifest.exists():
            raise UsageError(f"{self.dir} is not a `reefmap synth` folder (no truth.json); point --oracle at one")
        self.manifest = json.loads(manifest.read_text())
        self.fps = float(self.manifest["fps"])
        self.times, self.poses = read_poses_csv(self.dir / self.manifest["poses"])

    @property
    def camera_profile(self) -> Path:
        return self.dir / self.manifest["camera_profile"]

    def index(self, time_s: float) -> int:
        i = int(round(time_s * self.fps))
        if not 0 <= i < len(self.times):
            raise UsageError(f"frame at {time_s:.2f} s has no ground truth in {self.dir}; use the synth video with its truth")
        return i

    def frame(self, frame: Frame, source: FrameSource, class_ids: np.ndarray) -> tuple:
        """(channel, confidence, depth_m, camera-to-world pose) for `frame`, at the processing size, undistorted."""
        i = self.index(frame.time_s)
        depth = cv2.imread(str(self.dir / self.manifest["depth"].format(i)), cv2.IMREAD_UNCHANGED)
        labels = cv2.imread(str(self.dir / self.manifest["labels"].format(i)), cv2.IMREAD_UNCHANGED)
        if depth is None or labels is None:
            raise UsageError(f"ground truth of frame {i} is missing in {self.dir}; re-run reefmap synth")
        depth = depth.astype(np.float32) * float(self.manifest["depth_scale_m"])
        depth = source.undistort(cv2.resize(depth, source.size, interpolation=cv2.INTER_NEAREST), cv2.INTER_NEAREST)
        labels = source.undistort(cv2.resize(labels, source.size, interpolation=cv2.INTER_NEAREST), cv2.INTER_NEAREST)
        lut = np.zeros(256, np.int64)
        lut[class_ids] = np.arange(len(class_ids))
        known = np.isin(labels, class_ids)
        channel = lut[labels].astype(np.uint8)
        depth = np.where(known, depth, 0.0).astype(np.float32)
        return channel, np.ones(labels.shape, np.float32), depth, self.poses[i]
