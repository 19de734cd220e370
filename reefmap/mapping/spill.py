"""Where the finalised part of a streaming map waits for the end of the run: in memory, or in files of a folder so
that memory stays flat however long the video."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reefmap.io.files import atomic_path
from reefmap.mapping.voxels import LabelledCloud


class FinishedPoints:
    """Labelled point chunks, appended as the map finalises them and read back once, in order, by `take_all`.

    With a `folder`, each chunk is written there as `NNNNNN.npz` and nothing is held in memory; `state` is the chunk
    count, and `restore` removes chunks written after that state (by a run that was then killed).
    """

    def __init__(self, folder: Path | None = None):
        self.folder = folder
        self.count = 0
        self._chunks: list[LabelledCloud] = []
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def append(self, cloud: LabelledCloud) -> None:
        if not len(cloud):
            return
        if self.folder is None:
            self._chunks.append(cloud)
        else:
            with atomic_path(self._chunk_path(self.count)) as partial:
                np.savez(partial, **{name: getattr(cloud, name) for name in LabelledCloud.FIELDS})
        self.count += 1

    def take_all(self) -> LabelledCloud:
        """Every chunk as one cloud, in the order appended; the store is empty afterwards. From files, each field is
        filled in chunk by chunk, so no more than one chunk is ever held besides the result."""
        if self.folder is None:
            chunks, self._chunks = self._chunks, []
            fields = {name: np.concatenate([getattr(c, name) for c in chunks]) if chunks else None
                      for name in LabelledCloud.FIELDS}
        else:
            lengths = []
            for k in range(self.count):
                with np.load(self._chunk_path(k)) as chunk:
                    lengths.append(len(chunk["labels"]))
            fields = dict.fromkeys(LabelledCloud.FIELDS)
            for name in LabelledCloud.FIELDS:
                for k, start in enumerate(np.cumsum([0] + lengths)[:-1]):
                    with np.load(self._chunk_path(k)) as chunk:
                        part = chunk[name]
                    if fields[name] is None:
                        fields[name] = np.empty((sum(lengths),) + part.shape[1:], part.dtype)
                    fields[name][start:start + len(part)] = part
        self.count = 0
        if fields["points"] is None:
            return LabelledCloud.concatenate([])
        return LabelledCloud(**fields)

    def state(self) -> dict[str, np.ndarray]:
        if self.folder is None:
            finished = LabelledCloud.concatenate(self._chunks)
            return {name: getattr(finished, name) for name in LabelledCloud.FIELDS}
        return {"chunks": np.array(self.count)}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        if self.folder is None:
            finished = LabelledCloud(**{name: state[name] for name in LabelledCloud.FIELDS})
            self._chunks = [finished] if len(finished) else []
            self.count = len(self._chunks)
            return
        self.count = int(state["chunks"])
        for path in self.folder.glob("*.npz"):
            if not path.name[:6].isdigit() or int(path.name[:6]) >= self.count:
                path.unlink()

    def _chunk_path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.npz"
