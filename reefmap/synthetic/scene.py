"""Procedural reef scene: a labelled triangle mesh of seabed, colonies, urchins, tape and fish.

World frame: x along the transect tape (metres from its start), y to the left, z up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# Coralscapes class ids used by the scene
SEAGRASS, SAND, OTHER_CORAL_ALIVE, FISH, ALGAE_SUBSTRATE = 1, 5, 6, 9, 10
HARD_SUBSTRATE, DARK, TRANSECT_LINE, MASSIVE_BLEACHED, MASSIVE_ALIVE = 12, 14, 15, 16, 17
RUBBLE, BRANCHING_DEAD, BRANCHING_ALIVE, MASSIVE_DEAD, ACROPORA_ALIVE = 18, 20, 22, 23, 25
TABLE_ACROPORA_ALIVE, SEA_URCHIN = 28, 35

BASE_COLOURS = {
    SAND: (205, 190, 150), RUBBLE: (165, 150, 125), HARD_SUBSTRATE: (120, 115, 100), ALGAE_SUBSTRATE: (110, 125, 85),
    SEAGRASS: (70, 140, 60), DARK: (35, 32, 30), TRANSECT_LINE: (235, 225, 120), MASSIVE_ALIVE: (185, 140, 70),
    MASSIVE_DEAD: (120, 100, 80), MASSIVE_BLEACHED: (235, 230, 215), BRANCHING_ALIVE: (190, 110, 140),
    BRANCHING_DEAD: (110, 85, 85), ACROPORA_ALIVE: (170, 120, 190), TABLE_ACROPORA_ALIVE: (150, 130, 185),
    OTHER_CORAL_ALIVE: (210, 120, 110), SEA_URCHIN: (25, 20, 35), FISH: (230, 200, 40),
}
# texture frequency (rad/m) and contrast per class: fine grain on sand, coarse blotches on rock
TEXTURE = {SAND: (160.0, 0.18), RUBBLE: (70.0, 0.35), HARD_SUBSTRATE: (45.0, 0.3), ALGAE_SUBSTRATE: (55.0, 0.3),
           SEAGRASS: (120.0, 0.35), DARK: (30.0, 0.2), TRANSECT_LINE: (10.0, 0.05)}
DEFAULT_TEXTURE = (90.0, 0.25)


@dataclass(frozen=True)
class SceneSettings:
    """What a reef looks like; fractions are of the seabed area, densities per square metre."""

    length_m: float = 20.0
    half_width_m: float = 4.0
    grid_m: float = 0.05
    relief_m: float = 0.15
    rubble_fraction: float = 0.15
    rock_fraction: float = 0.15
    seagrass_fraction: float = 0.05
    massive_per_m2: float = 0.12
    branching_per_m2: float = 0.10
    table_per_m2: float = 0.01
    urchins_per_m2: float = 0.1
    fish_per_m2: float = 0.0
    crevices: bool = True


NAMED_SCENES = {
    "mixed": SceneSettings(),
    "sandy": SceneSettings(rubble_fraction=0.05, rock_fraction=0.05, seagrass_fraction=0.1, massive_per_m2=0.04,
                           branching_per_m2=0.03, table_per_m2=0.0, urchins_per_m2=0.05, relief_m=0.08),
    "dense-coral": SceneSettings(rubble_fraction=0.1, rock_fraction=0.2, seagrass_fraction=0.0, massive_per_m2=0.3,
                                 branching_per_m2=0.35, table_per_m2=0.04, urchins_per_m2=0.2, relief_m=0.25),
    "rubble": SceneSettings(rubble_fraction=0.55, rock_fraction=0.1, seagrass_fraction=0.0, massive_per_m2=0.05,
                            branching_per_m2=0.05, urchins_per_m2=0.3, relief_m=0.12),
    "fishy": SceneSettings(fish_per_m2=0.15),
}


@dataclass
class Scene:
    """A labelled triangle mesh plus the seabed height field it was built on."""

    vertices: np.ndarray  # (V, 3) float32 metres
    triangles: np.ndarray  # (T, 3) int32
    labels: np.ndarray  # (T,) int32 Coralscapes class id per triangle
    colours: np.ndarray  # (V, 3) float32 albedo 0..1
    texture: np.ndarray  # (T, 2) float32 texture frequency (rad/m) and contrast per triangle
    ground_height: callable = field(repr=False)  # (x, y) arrays -> z, the seabed without colonies
    tape_length_m: float = 0.0

    def surface_areas(self) -> np.ndarray:
        """(T,) area of each triangle in m²."""
        a, b, c = (self.vertices[self.triangles[:, i]].astype(np.float64) for i in range(3))
        return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


class _MeshBuilder:
    def __init__(self):
        self.vertices, self.triangles, self.labels, self.colours, self.texture = [], [], [], [], []
        self.count = 0

    def add(self, vertices, triangles, labels, colours, texture) -> None:
        self.vertices.append(np.asarray(vertices, np.float32))
        self.triangles.append(np.asarray(triangles, np.int64) + self.count)
        n_tri = len(triangles)
        self.labels.append(np.broadcast_to(np.asarray(labels, np.int32), (n_tri,)))
        self.colours.append(np.broadcast_to(np.asarray(colours, np.float32), (len(vertices), 3)))
        self.texture.append(np.broadcast_to(np.asarray(texture, np.float32), (n_tri, 2)))
        self.count += len(vertices)

    def build(self, ground_height, tape_length_m) -> Scene:
        return Scene(np.concatenate(self.vertices), np.concatenate(self.triangles).astype(np.int32),
                     np.concatenate(self.labels).copy(), np.concatenate(self.colours).copy(),
                     np.concatenate(self.texture).copy(), ground_height, tape_length_m)


def _smooth_noise(rng, shape, sigma_cells) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma_cells)
    return noise / (noise.std() + 1e-9)


def _vary(rng, colour, amount=0.12) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) / 255.0 * (1 + rng.uniform(-amount, amount, 3)), 0, 1)


def build_scene(settings: SceneSettings, seed: int) -> Scene:
    """Seabed height field with class patches, then colonies, urchins, the tape and fish on top."""
    rng = np.random.default_rng(seed)
    s = settings
    x0, x1 = -3.0, s.length_m + 3.0
    nx = int(round((x1 - x0) / s.grid_m)) + 1
    ny = int(round(2 * s.half_width_m / s.grid_m)) + 1
    xs = np.linspace(x0, x1, nx)
    ys = np.linspace(-s.half_width_m, s.half_width_m, ny)
    height = s.relief_m * (0.7 * _smooth_noise(rng, (ny, nx), 1.0 / s.grid_m)
                           + 0.3 * _smooth_noise(rng, (ny, nx), 0.25 / s.grid_m))
    height += 0.05 * np.sin(xs[None, :] * rng.uniform(0.2, 0.5) + rng.uniform(0, 6))
    classes = np.full((ny, nx), SAND, np.int32)
    for cls, fraction, sigma in ((RUBBLE, s.rubble_fraction, 0.8), (HARD_SUBSTRATE, s.rock_fraction, 0.6),
                                 (ALGAE_SUBSTRATE, s.rock_fraction / 3, 0.4), (SEAGRASS, s.seagrass_fraction, 0.7)):
        if fraction <= 0:
            continue
        field_ = _smooth_noise(rng, (ny, nx), sigma / s.grid_m)
        patch = field_ > np.quantile(field_, 1.0 - fraction)
        classes[patch] = cls
        if cls in (HARD_SUBSTRATE, ALGAE_SUBSTRATE):
            height += patch * np.clip(field_ - np.quantile(field_, 1.0 - fraction), 0, None) * 0.12
    if s.crevices:
        crack = _smooth_noise(rng, (ny, nx), 0.3 / s.grid_m)
        crevice = (np.abs(crack) < 0.06) & (classes == HARD_SUBSTRATE)
        classes[crevice] = DARK
        height -= crevice * 0.08
    height = cv2.GaussianBlur(height.astype(np.float32), (0, 0), 0.6)

    def ground_height(x, y):
        fx = np.clip((np.asarray(x) - x0) / s.grid_m, 0, nx - 1.001)
        fy = np.clip((np.asarray(y) + s.half_width_m) / s.grid_m, 0, ny - 1.001)
        ix, iy = fx.astype(int), fy.astype(int)
        tx, ty = fx - ix, fy - iy
        return ((1 - tx) * (1 - ty) * height[iy, ix] + tx * (1 - ty) * height[iy, ix + 1]
                + (1 - tx) * ty * height[iy + 1, ix] + tx * ty * height[iy + 1, ix + 1])

    builder = _MeshBuilder()
    gx, gy = np.meshgrid(xs, ys)
    vertices = np.stack([gx, gy, height], axis=-1).reshape(-1, 3)
    idx = np.arange(ny * nx).reshape(ny, nx)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    triangles = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    cell_class = classes[:-1, :-1].ravel()
    tri_labels = np.concatenate([cell_class, cell_class])
    patch_tint = 1 + 0.15 * _smooth_noise(rng, (ny, nx), 0.5 / s.grid_m)[..., None]
    vertex_colours = np.stack([np.array(BASE_COLOURS[k], np.float32) / 255 for k in classes.ravel()])
    vertex_colours = np.clip(vertex_colours * patch_tint.reshape(-1, 1), 0, 1)
    builder.add(vertices, triangles, tri_labels, vertex_colours,
                np.array([TEXTURE.get(int(k), DEFAULT_TEXTURE) for k in tri_labels], np.float32))

    area = (x1 - x0) * 2 * s.half_width_m
    _scatter(rng, builder, ground_height, s, x0, x1, int(rng.poisson(s.massive_per_m2 * area)), _massive)
    _scatter(rng, builder, ground_height, s, x0, x1, int(rng.poisson(s.branching_per_m2 * area)), _branching)
    _scatter(rng, builder, ground_height, s, x0, x1, int(rng.poisson(s.table_per_m2 * area)), _table)
    _scatter(rng, builder, ground_height, s, x0, x1, int(rng.poisson(s.urchins_per_m2 * area)), _urchin)
    _tape(builder, ground_height, s.length_m)
    for _ in range(int(rng.poisson(s.fish_per_m2 * area))):
        centre = np.array([rng.uniform(x0, x1), rng.uniform(-s.half_width_m, s.half_width_m), 0.0])
        centre[2] = ground_height(centre[0], centre[1]) + rng.uniform(0.3, 1.0)
        v, t = _ellipsoid(centre, np.array([0.12, 0.04, 0.05]) * rng.uniform(0.6, 1.6), rng.uniform(0, np.pi), 8)
        builder.add(v, t, FISH, _vary(rng, BASE_COLOURS[FISH], 0.3), DEFAULT_TEXTURE)
    return builder.build(ground_height, s.length_m)


def _scatter(rng, builder, ground_height, s, x0, x1, count, make) -> None:
    for _ in range(count):
        x, y = rng.uniform(x0, x1), rng.uniform(-s.half_width_m, s.half_width_m)
        make(rng, builder, np.array([x, y, float(ground_height(x, y))]))


def _ellipsoid(centre, radii, yaw, resolution) -> tuple[np.ndarray, np.ndarray]:
    """UV-sphere triangles scaled to `radii` and turned by `yaw` about z."""
    lat = np.linspace(0, np.pi, resolution + 1)
    lon = np.linspace(0, 2 * np.pi, 2 * resolution, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    unit = np.stack([np.sin(la) * np.cos(lo), np.sin(la) * np.sin(lo), np.cos(la)], -1).reshape(-1, 3)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    vertices = (unit * radii) @ rot.T + centre
    n_lon = 2 * resolution
    tris = []
    for i in range(resolution):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            c_, d = a + n_lon, b + n_lon
            tris += [(a, c_, d), (a, d, b)]
    return vertices, np.array(tris)


def _massive(rng, builder, base) -> None:
    radius = rng.uniform(0.15, 0.7)
    radii = np.array([radius * rng.uniform(0.8, 1.3), radius * rng.uniform(0.8, 1.3), radius * rng.uniform(0.45, 0.9)])
    vertices, tris = _ellipsoid(base - [0, 0, radii[2] * 0.25], radii, rng.uniform(0, np.pi), 14)
    bumps = 1 + 0.08 * np.sin(vertices @ rng.normal(0, 25, 3)) * np.sin(vertices @ rng.normal(0, 25, 3))
    vertices = base + (vertices - base) * bumps[:, None]
    cls = rng.choice([MASSIVE_ALIVE, MASSIVE_ALIVE, MASSIVE_DEAD, MASSIVE_BLEACHED, OTHER_CORAL_ALIVE])
    builder.add(vertices, tris, cls, _vary(rng, BASE_COLOURS[cls]), (rng.uniform(60, 140), rng.uniform(0.2, 0.4)))


def _cone(base, tip, radius, sides=6) -> tuple[np.ndarray, np.ndarray]:
    axis = tip - base
    axis_n = axis / np.linalg.norm(axis)
    helper = np.array([1.0, 0, 0]) if abs(axis_n[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(axis_n, helper)
    u /= np.linalg.norm(u)
    v = np.cross(axis_n, u)
    angles = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    ring = base + radius * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)
    vertices = np.vstack([ring, tip])
    tris = np.array([(i, (i + 1) % sides, sides) for i in range(sides)])
    return vertices, tris


def _branching(rng, builder, base) -> None:
    cls = rng.choice([BRANCHING_ALIVE, BRANCHING_ALIVE, BRANCHING_DEAD, ACROPORA_ALIVE])
    colour = _vary(rng, BASE_COLOURS[cls])
    spread = rng.uniform(0.15, 0.45)
    for _ in range(int(rng.integers(12, 40))):
        foot = base + [rng.normal(0, spread / 2), rng.normal(0, spread / 2), -0.03]
        direction = np.array([rng.normal(0, 0.5), rng.normal(0, 0.5), 1.0])
        tip = foot + direction / np.linalg.norm(direction) * rng.uniform(0.12, 0.4)
        v, t = _cone(foot, tip, rng.uniform(0.015, 0.035))
        builder.add(v, t, cls, colour, (150.0, 0.2))


def _table(rng, builder, base) -> None:
    colour = _vary(rng, BASE_COLOURS[TABLE_ACROPORA_ALIVE])
    top = base + [0, 0, rng.uniform(0.25, 0.5)]
    v, t = _cone(base, top, 0.05)
    builder.add(v, t, TABLE_ACROPORA_ALIVE, colour, (150.0, 0.2))
    v, t = _ellipsoid(top, np.array([1.0, 1.0, 0.08]) * rng.uniform(0.3, 0.7), 0.0, 12)
    builder.add(v, t, TABLE_ACROPORA_ALIVE, colour, (200.0, 0.3))


def _urchin(rng, builder, base) -> None:
    r = rng.uniform(0.04, 0.07)
    centre = base + [0, 0, r * 0.6]
    v, t = _ellipsoid(centre, np.array([r, r, r]), 0.0, 6)
    builder.add(v, t, SEA_URCHIN, _vary(rng, BASE_COLOURS[SEA_URCHIN]), DEFAULT_TEXTURE)
    for _ in range(14):
        d = rng.normal(0, 1, 3)
        d[2] = abs(d[2])
        d /= np.linalg.norm(d)
        v, t = _cone(centre + d * r * 0.8, centre + d * r * rng.uniform(2.2, 3.2), r * 0.12, 4)
        builder.add(v, t, SEA_URCHIN, _vary(rng, BASE_COLOURS[SEA_URCHIN]), DEFAULT_TEXTURE)


def _tape(builder, ground_height, length_m, width_m=0.025, step_m=0.02) -> None:
    """A flat tape draped 1 cm above the seabed along y=0 from x=0 to `length_m`; dark marks every metre."""
    xs = np.arange(0.0, length_m + 1e-9, step_m)
    left = np.stack([xs, np.full_like(xs, width_m / 2), ground_height(xs, np.full_like(xs, width_m / 2)) + 0.01], 1)
    right = np.stack([xs, np.full_like(xs, -width_m / 2), ground_height(xs, np.full_like(xs, -width_m / 2)) + 0.01], 1)
    vertices = np.vstack([left, right])
    n = len(xs)
    tris = np.array([t for i in range(n - 1) for t in ((i, n + i, n + i + 1), (i, n + i + 1, i + 1))])
    colours = np.tile(np.array(BASE_COLOURS[TRANSECT_LINE], np.float32) / 255, (2 * n, 1))
    near_mark = np.abs(xs - np.round(xs)) < 0.015
    colours[np.concatenate([near_mark, near_mark])] = (0.1, 0.1, 0.1)
    builder.add(vertices, tris, TRANSECT_LINE, colours, TEXTURE[TRANSECT_LINE])
