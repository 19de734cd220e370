"""Looking at a map: headless snapshots of a run or any PLY/PCD cloud, with legend and scale bar."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reefmap.errors import UsageError
from reefmap.io.files import atomic_path, read_poses_csv
from reefmap.mapping.cloud import read_ply
from reefmap.mapping.voxels import LabelledCloud
from reefmap.report.cover import GroundFrame, fit_ground_frame
from reefmap.report.summary import load_summary
from reefmap.runtime.o3d import open3d
from reefmap.taxonomy import Taxonomy, default_taxonomy

VIEWS = ("top", "oblique", "side")
COLOURINGS = ("labels", "rgb", "confidence", "views")
BACKGROUND = (255, 255, 255)


@dataclass
class MapView:
    """A cloud to show, the seabed frame to orient the camera by, and what its labels mean."""

    cloud: LabelledCloud
    ground: GroundFrame
    taxonomy: Taxonomy
    units: str


def load_map(source: str | Path) -> MapView:
    """A reefmap run folder (cloud.ply, trajectory.csv, summary.json) or a plain .ply/.pcd file."""
    source = Path(source)
    if source.is_dir():
        ply = source / "cloud.ply"
        if not ply.exists():
            raise UsageError(f"{source} has no cloud.ply: point at a finished `reefmap process` folder or a .ply/.pcd file")
    elif source.suffix.lower() in (".ply", ".pcd") and source.exists():
        ply = source
    else:
        raise UsageError(f"cannot show {source}: give a `reefmap process` folder or an existing .ply/.pcd file")
    cloud = read_ply(ply)
    if len(cloud) < 3:
        raise UsageError(f"{ply} holds {len(cloud)} points: nothing to show")
    trajectory = ply.parent / "trajectory.csv"
    if source.is_dir() and trajectory.exists():
        cameras = read_poses_csv(trajectory)[1][:, :3, 3]
        ground = fit_ground_frame(cloud.points.astype(np.float64), cameras)
    else:
        centre = cloud.points.mean(axis=0).astype(np.float64)
        ground = fit_ground_frame(cloud.points.astype(np.float64), np.array([centre + [0, 0, 1e3], centre + [1, 0, 1e3]]))
    has_summary = source.is_dir() and (ply.parent / "summary.json").exists()
    units = load_summary(ply.parent).units if has_summary else "map units"
    return MapView(cloud, ground, default_taxonomy(), units)


def point_colours(view: MapView, colouring: str) -> np.ndarray:
    """(N, 3) uint8 colours: class colours, true colour, vote confidence (red low, green high) or view count."""
    if colouring == "labels":
        lut = view.taxonomy.colour_lut()
        labels = np.clip(view.cloud.labels, 0, len(lut) - 1)
        return np.where((view.cloud.labels > 0)[:, None], lut[labels], 128).astype(np.uint8)
    if colouring == "rgb":
        return view.cloud.colours
    if colouring == "confidence":
        c = np.clip(view.cloud.confidence, 0.0, 1.0)[:, None]
        return np.rint(np.hstack([1.0 - c, c, np.zeros_like(c)]) * 255).astype(np.uint8)
    if colouring == "views":
        views = view.cloud.n_views * 255 // max(1, int(view.cloud.n_views.max()))
        return cv2.applyColorMap(views.astype(np.uint8)[:, None], cv2.COLORMAP_VIRIDIS)[:, 0, ::-1]
    raise UsageError(f"unknown colouring '{colouring}'; use one of {COLOURINGS}")


def _camera_directions(ground: GroundFrame, view: str) -> tuple[np.ndarray, np.ndarray]:
    """(front, up) for Open3D's view control: `front` points from the scene towards the camera."""
    u, v, n = ground.axes
    if view == "top":
        return n, v
    if view == "oblique":
        front = n - 0.9 * v
        return front / np.linalg.norm(front), n
    if view == "side":
        return -v, n
    raise UsageError(f"unknown view '{view}'; use one of {VIEWS}")


def _aim(control, view: MapView, direction: str) -> None:
    """Point an Open3D view control at the map's centre from the preset `direction`."""
    front, up = _camera_directions(view.ground, direction)
    control.set_lookat(view.cloud.points.mean(axis=0).astype(np.float64))
    control.set_front(front)
    control.set_up(up)
    control.set_zoom(0.7)


def render_snapshot(view: MapView, out: str | Path, direction: str = "top", colouring: str = "labels",
                    size: tuple[int, int] = (1600, 900), point_size: float = 2.0) -> Path:
    """Render offscreen (EGL, no display needed) and composite a legend and a scale bar; returns the PNG path."""
    _ensure_runtime_dir()
    o3d = open3d()
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(view.cloud.points.astype(np.float64)))
    pc.colors = o3d.utility.Vector3dVector(point_colours(view, colouring).astype(np.float64) / 255.0)
    vis = o3d.visualization.Visualizer()
    if not vis.create_window(visible=False, width=size[0], height=size[1]):
        raise UsageError("no offscreen rendering context could be created (Open3D needs EGL or a display)")
    try:
        vis.add_geometry(pc)
        options = vis.get_render_option()
        options.point_size = point_size
        options.background_color = np.array(BACKGROUND) / 255.0
        control = vis.get_view_control()
        control.change_field_of_view(step=-10)  # 60 to 10 degrees (5 per step): near-orthographic, still a pinhole
        _aim(control, view, direction)
        vis.poll_events()
        vis.update_renderer()
        image = np.asarray(vis.capture_screen_float_buffer(do_render=True))
        camera = control.convert_to_pinhole_camera_parameters()
    finally:
        vis.destroy_window()
    bgr = np.ascontiguousarray((np.clip(image, 0, 1) * 255).astype(np.uint8)[..., ::-1])
    if colouring == "labels":
        _draw_legend(bgr, view)
    _draw_scale_bar(bgr, view, camera)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as partial:
        if not cv2.imwrite(str(partial), bgr):
            raise UsageError(f"cannot write {out}; choose a folder you can write to")
    return out


def _ensure_runtime_dir() -> None:
    """GLFW complains on stderr when XDG_RUNTIME_DIR is unset (containers, CI): give it a private one."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="reefmap-runtime-")


def _draw_legend(bgr: np.ndarray, view: MapView, max_rows: int = 12) -> None:
    labels = view.cloud.labels[view.cloud.labels > 0]
    if len(labels) == 0:
        return
    ids, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts)[:max_rows]
    x, y = 16, 16
    for k in order:
        cls = view.taxonomy.by_id(int(ids[k]))
        share = 100.0 * counts[k] / len(labels)
        cv2.rectangle(bgr, (x, y), (x + 22, y + 22), tuple(int(c) for c in cls.colour[::-1]), -1)
        cv2.rectangle(bgr, (x, y), (x + 22, y + 22), (0, 0, 0), 1)
        cv2.putText(bgr, f"{cls.name} ({share:.1f} % of points)", (x + 30, y + 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (0, 0, 0), 1, cv2.LINE_AA)
        y += 28


def _draw_scale_bar(bgr: np.ndarray, view: MapView, camera) -> None:
    """A bar of a round length, measured by projecting two points along the transect at the scene centre."""
    K = camera.intrinsic.intrinsic_matrix
    world_to_camera = camera.extrinsic
    centre = view.cloud.points.mean(axis=0).astype(np.float64)
    u = view.ground.axes[0]
    extent = float(np.ptp(view.ground.to_local(view.cloud.points.astype(np.float64))[:, 0]))
    length = 10 ** np.floor(np.log10(max(extent / 4, 1e-6)))
    length *= 5 if extent / 4 >= 5 * length else 2 if extent / 4 >= 2 * length else 1
    ends = np.stack([centre, centre + length * u])
    cam = (world_to_camera[:3, :3] @ ends.T + world_to_camera[:3, 3:]).T
    pixels = (K @ cam.T).T
    pixels = pixels[:, :2] / pixels[:, 2:3]
    bar_px = int(round(np.linalg.norm(pixels[1] - pixels[0])))
    if bar_px < 4:
        return
    h, w = bgr.shape[:2]
    x0, y0 = w - bar_px - 40, h - 40
    cv2.rectangle(bgr, (x0, y0), (x0 + bar_px, y0 + 8), (0, 0, 0), -1)
    unit = "m" if view.units.startswith("metres") else "units"
    cv2.putText(bgr, f"{length:g} {unit}", (x0, y0 - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)


KEY_HELP = """keys:  L labels  R true colour  C confidence  V view count
       T top  O oblique  S side  P camera path on/off  + / - point size
       1-9 toggle the legend's classes  A all classes  H this help  Q close"""


class InteractiveViewer:
    """An Open3D window over a map with keys for colourings, class toggles, preset views and the camera path."""

    def __init__(self, view: MapView, path: np.ndarray | None, colouring: str = "labels", point_size: float = 2.0):
        self.view, self.path, self.colouring, self.point_size = view, path, colouring, point_size
        labels = view.cloud.labels[view.cloud.labels > 0]
        ids, counts = np.unique(labels, return_counts=True)
        self.legend = [int(i) for i in ids[np.argsort(-counts)][:9]]
        self.hidden: set[int] = set()
        self.show_path = path is not None
        o3d = open3d()
        self.cloud = o3d.geometry.PointCloud()
        self.lines = o3d.geometry.LineSet()
        self.vis = o3d.visualization.VisualizerWithKeyCallback()

    def legend_text(self) -> str:
        rows = []
        for k, class_id in enumerate(self.legend, start=1):
            state = "hidden" if class_id in self.hidden else "shown"
            rows.append(f"  {k}  {self.view.taxonomy.by_id(class_id).name} ({state})")
        return "classes:\n" + "\n".join(rows)

    def _refresh(self, vis=None) -> bool:
        self._fill()
        self.vis.update_geometry(self.cloud)
        self.vis.update_geometry(self.lines)
        self.vis.get_render_option().point_size = self.point_size
        return True

    def _fill(self) -> None:
        """Put the visible points, their colours and the camera path into the window's geometries."""
        o3d = open3d()
        keep = ~np.isin(self.view.cloud.labels, list(self.hidden))
        colours = point_colours(self.view, self.colouring)
        self.cloud.points = o3d.utility.Vector3dVector(self.view.cloud.points[keep].astype(np.float64))
        self.cloud.colors = o3d.utility.Vector3dVector(colours[keep].astype(np.float64) / 255.0)
        if self.path is not None and self.show_path:
            self.lines.points = o3d.utility.Vector3dVector(self.path)
            self.lines.lines = o3d.utility.Vector2iVector(np.stack([np.arange(len(self.path) - 1),
                                                                    np.arange(1, len(self.path))], 1))
            self.lines.paint_uniform_color([1.0, 0.2, 0.2])
        else:
            self.lines.clear()

    def _set_view(self, direction: str) -> bool:
        _aim(self.vis.get_view_control(), self.view, direction)
        return True

    def _colour(self, colouring: str):
        def handler(vis):
            self.colouring = colouring
            return self._refresh()
        return handler

    def _toggle(self, index: int):
        def handler(vis):
            if index < len(self.legend):
                self.hidden ^= {self.legend[index]}
                print(self.legend_text())
            return self._refresh()
        return handler

    def _resize(self, factor: float):
        def handler(vis):
            self.point_size = float(np.clip(self.point_size * factor, 1.0, 20.0))
            return self._refresh()
        return handler

    def _toggle_path(self, vis) -> bool:
        self.show_path = not self.show_path
        return self._refresh()

    def _show_all(self, vis) -> bool:
        self.hidden.clear()
        return self._refresh()

    def press(self, key: str) -> None:
        """Apply one key as if typed in the window (for scripted sessions and tests)."""
        self._handlers()[key.upper()](self.vis)

    def _handlers(self) -> dict:
        handlers = {"L": self._colour("labels"), "R": self._colour("rgb"), "C": self._colour("confidence"),
                    "V": self._colour("views"), "T": lambda vis: self._set_view("top"),
                    "O": lambda vis: self._set_view("oblique"), "S": lambda vis: self._set_view("side"),
                    "P": self._toggle_path, "+": self._resize(1.5), "-": self._resize(1 / 1.5), "A": self._show_all,
                    "H": lambda vis: print(KEY_HELP + "\n" + self.legend_text()) or False,
                    "Q": lambda vis: self.vis.close() or False}
        handlers |= {str(k + 1): self._toggle(k) for k in range(9)}
        return handlers

    def run(self, keys: str = "", screenshot: str | Path | None = None, width: int = 1600, height: int = 900) -> None:
        """Open the window; with `keys` apply them, with `screenshot` save the view and close instead of waiting."""
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UsageError("no display to open a window on; use `reefmap snapshot` for pictures, or run under a "
                             "desktop session or Xvfb")
        _ensure_runtime_dir()
        if not self.vis.create_window("reefmap", width=width, height=height):
            raise UsageError("the viewer window could not be opened on this display; use `reefmap snapshot` instead")
        for key, handler in self._handlers().items():
            self.vis.register_key_callback(ord(key), handler)
        self.vis.register_key_callback(ord("="), self._resize(1.5))
        self._fill()
        self.vis.add_geometry(self.cloud)
        self.vis.add_geometry(self.lines, reset_bounding_box=False)
        self._refresh()
        self._set_view("top")
        print(KEY_HELP + "\n" + self.legend_text())
        for key in keys:
            self.press(key)
        if screenshot is not None:
            self.vis.poll_events()
            self.vis.update_renderer()
            self.vis.capture_screen_image(str(screenshot), do_render=True)
        else:
            self.vis.run()
        self.vis.destroy_window()


def camera_path(source: str | Path) -> np.ndarray | None:
    """(N, 3) camera centres of a run folder, or None for a plain cloud."""
    trajectory = Path(source) / "trajectory.csv"
    return read_poses_csv(trajectory)[1][:, :3, 3] if Path(source).is_dir() and trajectory.exists() else None
