"""The labelled cloud in files: binary PLY (read and written), LAS/LAZ (written)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reefmap.mapping.voxels import LabelledCloud, point_chunks
from reefmap.runtime.o3d import open3d

WRITE_CHUNK_POINTS = 500_000  # points converted at a time by the file writers: a long transect's copies stay small
PLY_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
                       ("label", "<i4"), ("confidence", "<f4"), ("n_views", "<i4")])
_PLY_TYPES = {"<f4": "float", "|u1": "uchar", "<i4": "int"}


def write_ply(cloud: LabelledCloud, path: str | Path) -> None:
    """Binary little-endian PLY with x, y, z, red, green, blue, label, confidence, n_views per vertex (the layout
    Open3D writes and reads), written in chunks."""
    header = ["ply", "format binary_little_endian 1.0", "comment Created by reefmap", f"element vertex {len(cloud)}"]
    header += [f"property {_PLY_TYPES[PLY_VERTEX[name].str]} {name}" for name in PLY_VERTEX.names]
    with open(path, "wb") as f:
        f.write(("\n".join(header + ["end_header"]) + "\n").encode("ascii"))
        for chunk in point_chunks(len(cloud), WRITE_CHUNK_POINTS):
            part = cloud.take(chunk)
            vertices = np.empty(len(part), PLY_VERTEX)
            for k, axis in enumerate("xyz"):
                vertices[axis] = part.points[:, k]
            for k, channel in enumerate(("red", "green", "blue")):
                vertices[channel] = part.colours[:, k]
            vertices["label"], vertices["confidence"], vertices["n_views"] = part.labels, part.confidence, part.n_views
            f.write(vertices.tobytes())


def read_ply(path: str | Path) -> LabelledCloud:
    """Read a PLY or PCD; label, confidence and n_views default to 0, 1 and 0 when a file lacks them.

    Every array is copied out of Open3D's memory, so none outlives the tensors it would point into.
    """
    pc = open3d().t.io.read_point_cloud(str(path))
    points = pc.point.positions.numpy().astype(np.float32)
    n = len(points)

    def field(name, default, dtype):
        return pc.point[name].numpy().reshape(n).astype(dtype) if name in pc.point else np.full(n, default, dtype)

    colours = pc.point.colors.numpy().copy() if "colors" in pc.point else np.full((n, 3), 128, np.uint8)
    if colours.dtype != np.uint8:
        colours = np.clip(np.rint(colours * 255.0), 0, 255).astype(np.uint8)
    return LabelledCloud(points, colours, field("label", 0, np.int32), field("confidence", 1.0, np.float32),
                         field("n_views", 0, np.int32))


def write_las(cloud: LabelledCloud, path: str | Path) -> None:
    """LAS 1.4, point format 7: x, y, z, 16-bit RGB, the class id in `classification` (8 bits holds all 39
    Coralscapes ids) and extra dimensions `confidence` and `n_views`; millimetre coordinate precision.
    A `.laz` path is compressed with LASzip (lazrs backend)."""
    import laspy

    header = laspy.LasHeader(point_format=7, version="1.4")
    header.offsets = cloud.points.min(axis=0).astype(np.float64) if len(cloud) else np.zeros(3)
    header.scales = np.array([0.001, 0.001, 0.001])
    header.add_extra_dims([laspy.ExtraBytesParams(name="confidence", type=np.float32),
                           laspy.ExtraBytesParams(name="n_views", type=np.int32)])
    with laspy.open(str(path), mode="w", header=header) as writer:
        for chunk in point_chunks(len(cloud), WRITE_CHUNK_POINTS):
            part = cloud.take(chunk)
            record = laspy.ScaleAwarePointRecord.zeros(len(part), header=header)
            record.x, record.y, record.z = (part.points[:, k].astype(np.float64) for k in range(3))
            record.red, record.green, record.blue = (part.colours[:, k].astype(np.uint16) * 257 for k in range(3))
            record.classification = np.clip(part.labels, 0, 255).astype(np.uint8)
            record.confidence = part.confidence.astype(np.float32)
            record.n_views = part.n_views.astype(np.int32)
            writer.write_points(record)
