"""Streaming voxel map of class votes: each voxel keeps its class votes, mean colour and a view count, and labels
the points of the fused surface that fall in or next to it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BITS = 19  # per axis: +-2^18 voxels (5 km at 2 cm), leaving 6 bits of a 63-bit vote key for the class
_OFFSET = 1 << (_BITS - 1)
_MASK = (1 << _BITS) - 1
_CLASS_BITS = 6
MAX_CLASSES = 1 << _CLASS_BITS


def voxel_keys(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """(N, 3) points -> (N,) int64 keys packing integer voxel coordinates (19 bits each)."""
    return pack_cells(np.floor(points / voxel_size).astype(np.int64))


def block_keys(points: np.ndarray, voxel_size: float, block_resolution: int) -> np.ndarray:
    """(N, 3) points -> (N,) int64 keys of the blocks of `block_resolution`^3 voxels holding each point's voxel."""
    return pack_cells(np.floor(points / voxel_size).astype(np.int64) // block_resolution)


def unpack_cells(keys: np.ndarray) -> np.ndarray:
    """(N,) int64 keys -> (N, 3) integer cell coordinates (the inverse of `pack_cells`)."""
    return np.stack([(keys >> (2 * _BITS)) & _MASK, (keys >> _BITS) & _MASK, keys & _MASK], axis=1) - _OFFSET


def pack_cells(cells: np.ndarray) -> np.ndarray:
    """(N, 3) integer voxel coordinates -> (N,) int64 keys."""
    cells = cells + _OFFSET
    if cells.size and (cells.min() < 0 or cells.max() > _MASK):
        raise ValueError("points lie more than 2^18 voxels from the origin; use a larger voxel size")
    return (cells[:, 0] << (2 * _BITS)) | (cells[:, 1] << _BITS) | cells[:, 2]


def point_chunks(n: int, chunk_points: int) -> list[slice]:
    """Consecutive slices covering range(n), `chunk_points` long (the last may be shorter)."""
    return [slice(i, min(i + chunk_points, n)) for i in range(0, n, chunk_points)]


@dataclass(frozen=True)
class LabelledCloud:
    """The fused map as arrays: N points with class id, colour, vote confidence and view count."""

    points: np.ndarray  # (N, 3) float32, map units
    colours: np.ndarray  # (N, 3) uint8 RGB
    labels: np.ndarray  # (N,) int32 class id (0 = unlabelled)
    confidence: np.ndarray  # (N,) float32 share of the votes won by `labels`, 0..1
    n_views: np.ndarray  # (N,) int32 frames that saw the voxel

    def __len__(self) -> int:
        return len(self.points)

    FIELDS = ("points", "colours", "labels", "confidence", "n_views")

    def take(self, index: np.ndarray) -> "LabelledCloud":
        """The points at `index` (integer indices or a boolean mask), in that order."""
        return LabelledCloud(*(getattr(self, name)[index] for name in self.FIELDS))

    @classmethod
    def concatenate(cls, clouds: list["LabelledCloud"]) -> "LabelledCloud":
        """One cloud with the points of `clouds` in turn (an empty cloud for none)."""
        if not clouds:
            return cls(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros(0, np.int32),
                       np.zeros(0, np.float32), np.zeros(0, np.int32))
        return cls(*(np.concatenate([getattr(c, name) for c in clouds]) for name in cls.FIELDS))


class VoxelMap:
    """Accumulates labelled points frame by frame; memory grows with mapped volume, not frame count.

    Geometry is not taken from here: `cloud` labels the points of the fused surface (`reefmap.mapping.surface`)
    with the votes of the voxel each lies in.

    Votes are kept per output channel (0..num_classes-1) weighted by the per-pixel confidence, as sparse
    (voxel, channel) pairs: a voxel costs its few seen classes, not a slot for every class.
    Points are buffered and merged into the sorted store in chunks of `merge_points`.
    """

    def __init__(self, voxel_size: float, num_classes: int, merge_points: int = 2_000_000):
        if voxel_size <= 0:
            raise ValueError("voxel_size must be positive")
        if num_classes > MAX_CLASSES:
            raise ValueError(f"at most {MAX_CLASSES} classes can be voted in a voxel map")
        self.voxel_size = float(voxel_size)
        self.num_classes = int(num_classes)
        self.merge_points = merge_points
        self.keys = np.empty(0, dtype=np.int64)
        self.colour_sum = np.empty((0, 3), dtype=np.float32)
        self.n_points = np.empty(0, dtype=np.int32)
        self.n_views = np.empty(0, dtype=np.int32)
        self.vote_keys = np.empty(0, dtype=np.int64)  # voxel key << 6 | channel, sorted
        self.vote_weights = np.empty(0, dtype=np.float32)
        self._pending: list[tuple] = []
        self._pending_points = 0

    def __len__(self) -> int:
        self.flush()
        return len(self.keys)

    def add_frame(self, points: np.ndarray, channels: np.ndarray, weights: np.ndarray, colours: np.ndarray) -> None:
        """Add one frame's (N, 3) points with (N,) class channel, (N,) vote weight and (N, 3) uint8 colour.

        The frame is reduced to its voxels and its (voxel, class) vote pairs, so buffered frames stay small.
        """
        if len(points) == 0:
            return
        uniq, inverse = np.unique(voxel_keys(points, self.voxel_size), return_inverse=True)
        n, c = len(uniq), self.num_classes
        pairs, pair_inverse = np.unique(inverse * c + channels.astype(np.int64), return_inverse=True)
        pair_votes = np.bincount(pair_inverse, weights=weights, minlength=len(pairs)).astype(np.float32)
        colour = np.stack([np.bincount(inverse, weights=colours[:, i], minlength=n) for i in range(3)], axis=1)
        count = np.bincount(inverse, minlength=n)
        self._pending.append((uniq, pairs, pair_votes, colour.astype(np.float32), count))
        self._pending_points += len(points)
        if self._pending_points >= self.merge_points:
            self.flush()

    def flush(self) -> None:
        """Merge buffered frames into the sorted store."""
        if not self._pending:
            return
        c = self.num_classes
        keys = np.concatenate([p[0] for p in self._pending])
        uniq, inverse = np.unique(keys, return_inverse=True)
        n = len(uniq)
        starts = np.cumsum([0] + [len(p[0]) for p in self._pending[:-1]])
        pair_voxels = np.concatenate([inverse[start + p[1] // c] for start, p in zip(starts, self._pending)])
        pair_classes = np.concatenate([p[1] % c for p in self._pending])
        vote_keys, vote_inverse = np.unique((uniq[pair_voxels] << _CLASS_BITS) | pair_classes, return_inverse=True)
        votes = np.bincount(vote_inverse, weights=np.concatenate([p[2] for p in self._pending]),
                            minlength=len(vote_keys)).astype(np.float32)
        colour = np.concatenate([p[3] for p in self._pending])
        colour = np.stack([np.bincount(inverse, weights=colour[:, i], minlength=n) for i in range(3)], 1).astype(np.float32)
        count = np.bincount(inverse, weights=np.concatenate([p[4] for p in self._pending]), minlength=n).astype(np.int32)
        views = np.bincount(inverse, minlength=n).astype(np.int32)
        self._pending, self._pending_points = [], 0
        self.keys, (self.colour_sum, self.n_points, self.n_views) = _merge_sorted(
            self.keys, (self.colour_sum, self.n_points, self.n_views), uniq, (colour, count, views))
        self.vote_keys, (self.vote_weights,) = _merge_sorted(self.vote_keys, (self.vote_weights,), vote_keys, (votes,))

    _STORE = ("keys", "colour_sum", "n_points", "n_views", "vote_keys", "vote_weights")
    _PENDING = ("uniq", "pairs", "pair_votes", "colour", "count")

    def state(self) -> dict[str, np.ndarray]:
        """Everything the map holds, buffered frames included, as arrays (see `restore`)."""
        state = {name: getattr(self, name) for name in self._STORE}
        for k, name in enumerate(self._PENDING):
            parts = [p[k] for p in self._pending]
            state[f"pending_{name}"] = np.concatenate(parts) if parts else np.zeros(0)
            state[f"pending_{name}_lengths"] = np.array([len(x) for x in parts], np.int64)
        state["pending_points"] = np.array(self._pending_points)
        return state

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Continue from a `state()`: later frames merge exactly as if the map had never stopped."""
        for name in self._STORE:
            setattr(self, name, state[name])
        columns = [np.split(state[f"pending_{name}"], np.cumsum(state[f"pending_{name}_lengths"])[:-1])
                   for name in self._PENDING]
        self._pending = [tuple(frame) for frame in zip(*columns)] if len(state["pending_uniq_lengths"]) else []
        self._pending_points = int(state["pending_points"])

    def drop_blocks(self, blocks: np.ndarray, block_resolution: int) -> None:
        """Forget the voxels (and their votes) lying in the sorted `blocks` (keys as `block_keys` makes them)."""
        self.flush()
        self.keys, self.colour_sum, self.n_points, self.n_views = _outside_blocks(
            blocks, block_resolution, self.keys, self.colour_sum, self.n_points, self.n_views)
        self.vote_keys, self.vote_weights = _outside_blocks(blocks, block_resolution, self.vote_keys,
                                                             self.vote_weights, shift=_CLASS_BITS)

    def cloud(self, class_ids: np.ndarray, surface_points: np.ndarray) -> LabelledCloud:
        """The fused surface as one point per voxel, labelled by the winning vote of its voxel.

        `surface_points` (N, 3) are the fused surface's points; those in one voxel become their mean. Each takes the
        votes, colour and view count of its own voxel or, where that saw no labelled pixel, of the nearest voxel
        around it that did (the surface and the raw depth samples can lie a voxel apart); a point with none around
        it is left out. `class_ids` (num_classes,) maps vote channels to class ids.
        """
        self.flush()
        points = _voxel_means(surface_points, self.voxel_size)
        source = _nearest_stored_voxel(self.keys, points, self.voxel_size)
        points, source = points[source >= 0], source[source >= 0]
        used, source = np.unique(source, return_inverse=True)
        labels, confidence = self._winning_votes(used, class_ids)
        colours = self.colour_sum[used] / np.maximum(self.n_points[used], 1)[:, None]
        return LabelledCloud(
            points=points.astype(np.float32),
            colours=np.clip(np.rint(colours[source]), 0, 255).astype(np.uint8),
            labels=labels[source],
            confidence=confidence[source].astype(np.float32),
            n_views=self.n_views[used][source],
        )

    def _winning_votes(self, voxels: np.ndarray, class_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class id (0 without votes) and winning share of the votes of the stored voxels at indices `voxels`; the
        strongest channel wins, ties going to the lowest."""
        wanted = self.keys[voxels] << _CLASS_BITS
        lo = np.searchsorted(self.vote_keys, wanted)
        counts = np.searchsorted(self.vote_keys, wanted | (MAX_CLASSES - 1), side="right") - lo
        owner = np.repeat(np.arange(len(voxels)), counts)
        rows = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
        weights = self.vote_weights[rows]
        total = np.bincount(owner, weights=weights, minlength=len(voxels))
        order = np.lexsort((-weights, owner))  # votes are in channel order within a voxel
        first = order[np.unique(owner[order], return_index=True)[1]]
        best, winner = np.zeros(len(voxels)), np.zeros(len(voxels), np.int64)
        best[owner[first]] = weights[first]
        winner[owner[first]] = self.vote_keys[rows[first]] & (MAX_CLASSES - 1)
        labels = np.where(total > 0, class_ids[winner], 0).astype(np.int32)
        return labels, np.divide(best, total, out=np.zeros_like(best), where=total > 0)


def _outside_blocks(blocks: np.ndarray, block_resolution: int, keys: np.ndarray, *columns: np.ndarray,
                    shift: int = 0) -> tuple:
    """`keys` (voxel keys shifted left by `shift`) and their `columns`, without the rows whose voxel lies in one of
    the sorted `blocks`."""
    keep = ~in_sorted(pack_cells(unpack_cells(keys >> shift) // block_resolution), blocks)
    return (keys[keep], *(column[keep] for column in columns))


def sorted_index(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """(N,) int64 index of each of `values` in the sorted `sorted_keys`; -1 where it is not there."""
    if len(sorted_keys) == 0:
        return np.full(len(values), -1, np.int64)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == values, at, -1)


def in_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each of `values` is one of the sorted `sorted_keys`."""
    return sorted_index(values, sorted_keys) >= 0


def _voxel_means(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """(N, 3) points -> (M, 3) the mean of the points in each occupied voxel, in voxel-key order."""
    if len(points) == 0:
        return np.zeros((0, 3), np.float64)
    _, inverse, count = np.unique(voxel_keys(points, voxel_size), return_inverse=True, return_counts=True)
    sums = np.stack([np.bincount(inverse, weights=points[:, i], minlength=len(count)) for i in range(3)], axis=1)
    return sums / count[:, None]


_NEIGHBOURS = sorted((np.array(np.meshgrid([0, -1, 1], [0, -1, 1], [0, -1, 1], indexing="ij")).reshape(3, -1).T
                      .tolist()), key=lambda offset: sum(abs(o) for o in offset))  # own voxel, faces, edges, corners


def _nearest_stored_voxel(keys: np.ndarray, points: np.ndarray, voxel_size: float) -> np.ndarray:
    """(N,) index into sorted `keys` of each point's own voxel, else of the first stored one among its 26
    neighbours (faces before edges before corners); -1 where none of the 27 is stored."""
    found = np.full(len(points), -1, np.int64)
    if len(keys) == 0:
        return found
    cells = np.floor(points / voxel_size).astype(np.int64)
    for offset in _NEIGHBOURS:
        open_ = np.flatnonzero(found < 0)
        if len(open_) == 0:
            break
        found[open_] = sorted_index(pack_cells(cells[open_] + np.asarray(offset, np.int64)), keys)
    return found


def _merge_sorted(keys: np.ndarray, columns: tuple, new_keys: np.ndarray, new_columns: tuple) -> tuple:
    """Add `new_columns` into `columns` where `new_keys` exist in sorted `keys`, insert them where not."""
    pos = np.searchsorted(keys, new_keys)
    found = np.zeros(len(new_keys), dtype=bool)
    inside = pos < len(keys)
    found[inside] = keys[pos[inside]] == new_keys[inside]
    at, new, where = pos[found], ~found, pos[~found]
    merged = []
    for column, new_column in zip(columns, new_columns):
        column[at] += new_column[found]
        merged.append(np.insert(column, where, new_column[new], axis=0))
    return np.insert(keys, where, new_keys[new]), tuple(merged)
