"""Streams of labelled frames (image, class channel, confidence, depth, camera pose) for the fusion, from the
networks or from synthetic truth. A stream can hand over its state between batches and continue from it later,
giving exactly the frames an uninterrupted stream gives."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from reefmap.config import ProcessConfig
from reefmap.geometry.transforms import TrajectoryBuilder
from reefmap.oracle import TruthReader
from reefmap.perception import (
    DepthPoseEstimator, Perception, Segmenter, TemporalSmoother, is_featureless, perceive,
)
from reefmap.taxonomy import Taxonomy
from reefmap.timing import StageTimer
from reefmap.video import Frame, FrameSource, prefetch

LabelledFrame = tuple  # (frame, channel, confidence, depth, camera-to-world pose)
HEALTH_KEYS = ("frames_with_non_finite_labels", "frames_with_non_finite_depth", "non_finite_motions")


class NetworkStream:
    """Labels from the segmenter (smoothed over time), depth and chained poses from the depth/pose networks.

    Non-finite network outputs are neutralised and counted in `health`: such pixels get no vote and no depth, and
    such a motion is taken as no motion. A motion into or out of a featureless frame (black, blank, open water) is
    taken as no motion too: the pose network has nothing to go by.
    """

    def __init__(self, source: FrameSource, segmenter: Segmenter, estimator: DepthPoseEstimator,
                 config: ProcessConfig, timer: StageTimer):
        self.source, self.segmenter, self.estimator = source, segmenter, estimator
        self.batch_size, self.timer = config.batch_size, timer
        self.trajectory = TrajectoryBuilder()
        self.smoother = TemporalSmoother(config.smooth_labels)
        self.previous_featureless = False
        self.health = {key: 0 for key in HEALTH_KEYS}
        self.next_frame = 0  # the first frame not yet through the networks
        self.ending = False

    def __iter__(self) -> Iterator[LabelledFrame]:
        frames = prefetch(self.source.frames_from(self.next_frame))
        for raw in perceive(frames, self.segmenter, self.estimator, self.batch_size, self.timer):
            self.next_frame = raw.frame.index + 1
            for item in self.smoother.push(raw):
                yield self._labelled(item)
        self.ending = True
        for item in self.smoother.finish():
            yield self._labelled(item)

    def between_batches(self) -> bool:
        """Whether the frame given out last ended a batch, so that the state can be taken now."""
        return not self.ending and self.next_frame % self.batch_size == 0

    def _labelled(self, item: Perception) -> LabelledFrame:
        probabilities, relative = item.probabilities, item.relative_pose
        featureless = is_featureless(item.frame.image)
        if relative is not None and (featureless or self.previous_featureless):
            relative = np.eye(4)
        self.previous_featureless = featureless
        if not np.isfinite(probabilities).all():
            self.health["frames_with_non_finite_labels"] += 1
            probabilities = np.nan_to_num(probabilities, nan=0.0, posinf=0.0, neginf=0.0)
        if not np.isfinite(item.depth).all():
            self.health["frames_with_non_finite_depth"] += 1
        if relative is not None and not np.isfinite(relative).all():
            self.health["non_finite_motions"] += 1
            relative = np.eye(4)
        confidence, channel = torch.from_numpy(probabilities).max(dim=0)  # one threaded pass over the classes
        return item.frame, channel.numpy().astype(np.uint8), confidence.numpy(), item.depth, self.trajectory.add(relative)

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to continue from (see `restore`); take it only `between_batches`."""
        previous = self.estimator.previous_frame
        state = {
            "next_frame": np.array(self.next_frame), "trajectory_pose": self.trajectory.current,
            "trajectory_count": np.array(self.trajectory.count), "previous_featureless": np.array(self.previous_featureless),
            "health": np.array([self.health[k] for k in HEALTH_KEYS]), "smoother_started": np.array(self.smoother.started),
            "window_size": np.array(len(self.smoother.window)),
        }
        if previous is not None:
            state["estimator_previous"] = previous
        for k, item in enumerate(self.smoother.window):
            state |= {f"window{k}_index": np.array(item.frame.index), f"window{k}_time": np.array(item.frame.time_s),
                      f"window{k}_image": item.frame.image, f"window{k}_probabilities": item.probabilities,
                      f"window{k}_depth": item.depth}
            if item.relative_pose is not None:
                state[f"window{k}_relative"] = item.relative_pose
        return state

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.next_frame = int(state["next_frame"])
        self.trajectory.current, self.trajectory.count = state["trajectory_pose"], int(state["trajectory_count"])
        self.previous_featureless = bool(state["previous_featureless"])
        self.health = dict(zip(HEALTH_KEYS, (int(v) for v in state["health"])))
        self.smoother.started = bool(state["smoother_started"])
        self.estimator.previous_frame = state.get("estimator_previous")
        self.smoother.window.clear()
        for k in range(int(state["window_size"])):
            frame = Frame(int(state[f"window{k}_index"]), float(state[f"window{k}_time"]), state[f"window{k}_image"])
            self.smoother.window.append(Perception(frame, state[f"window{k}_probabilities"], state[f"window{k}_depth"],
                                                   state.get(f"window{k}_relative")))


class OracleStream:
    """True labels, depth and poses of a synthetic transect for each sampled frame."""

    def __init__(self, source: FrameSource, truth: TruthReader, taxonomy: Taxonomy, timer: StageTimer):
        self.source, self.truth, self.taxonomy, self.timer = source, truth, taxonomy, timer
        self.health = {key: 0 for key in HEALTH_KEYS}
        self.next_frame = 0

    def __iter__(self) -> Iterator[LabelledFrame]:
        iterator = self.source.frames_from(self.next_frame)
        while True:
            with self.timer.stage("decode"):
                frame = next(iterator, None)
            if frame is None:
                return
            self.next_frame = frame.index + 1
            with self.timer.stage("oracle", 1):
                item = (frame, *self.truth.frame(frame, self.source, self.taxonomy.ids))
            yield item

    def between_batches(self) -> bool:
        return True

    def state(self) -> dict[str, np.ndarray]:
        return {"next_frame": np.array(self.next_frame)}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.next_frame = int(state["next_frame"])
