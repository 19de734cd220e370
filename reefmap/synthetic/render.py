"""Ray-cast rendering of the reef scene with underwater light: exact depth, labels and a realistic image."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reefmap.io.camera import CameraProfile
from reefmap.runtime.o3d import open3d
from reefmap.synthetic.scene import BASE_COLOURS, Scene
from reefmap.synthetic.texture import TRIPLANAR_AXES, ClassTextures, triplanar_colour, triplanar_weights

BACKGROUND = 13  # Coralscapes "background": open water


@dataclass(frozen=True)
class WaterSettings:
    """Per-channel (R, G, B) attenuation (1/m) and veiling light; `turbidity` scales attenuation."""

    attenuation: tuple[float, float, float] = (0.30, 0.07, 0.05)
    backscatter: tuple[float, float, float] = (0.10, 0.42, 0.62)
    turbidity: float = 1.0
    caustics: float = 0.35
    vignetting: float = 0.35
    noise_sigma: float = 0.012


@dataclass
class Rendered:
    """One rendered frame: (H, W, 3) uint8 RGB, (H, W) float32 z-depth in metres (0 = water), (H, W) uint8 labels."""

    rgb: np.ndarray
    depth_m: np.ndarray
    labels: np.ndarray


def pixel_rays(camera: CameraProfile) -> np.ndarray:
    """(H, W, 3) ray directions in the camera frame with z = 1, through each (distorted) pixel centre."""
    w, h = camera.image_size
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pixels = np.stack([u.ravel(), v.ravel()], axis=1)[:, None, :]
    if camera.is_distorted:
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-9)
        normalised = cv2.undistortPoints(pixels, camera.K, camera.dist_coeffs, criteria=criteria)[:, 0]
    else:
        normalised = (pixels[:, 0] - [camera.cx, camera.cy]) / [camera.fx, camera.fy]
    return np.concatenate([normalised, np.ones((len(normalised), 1))], axis=1).reshape(h, w, 3).astype(np.float32)


class Renderer:
    """Casts one ray per pixel into the scene with Open3D's RaycastingScene; classes with a tile in `textures` take
    their colour from it (real photographs) instead of the procedural albedo, keeping its brightness changes."""

    def __init__(self, scene: Scene, camera: CameraProfile, water: WaterSettings, seed: int,
                 textures: ClassTextures | None = None):
        o3d = open3d()
        self.scene = scene
        self.textures = textures
        self.camera = camera
        self.water = water
        self.raycaster = o3d.t.geometry.RaycastingScene()
        self.raycaster.add_triangles(o3d.core.Tensor(scene.vertices.astype(np.float32)),
                                     o3d.core.Tensor(scene.triangles.astype(np.uint32)))
        self.rays_cam = pixel_rays(camera)
        w, h = camera.image_size
        r = np.hypot(*np.meshgrid((np.arange(w) - w / 2) / (w / 2), (np.arange(h) - h / 2) / (h / 2)))
        self.vignette = (1.0 - water.vignetting * (r / np.sqrt(2)) ** 2).astype(np.float32)[..., None]
        rng = np.random.default_rng(seed + 7919)
        self.noise_texture = tileable_noise(rng, 512)
        self.caustic_dirs = rng.normal(size=(2, 2)).astype(np.float32) * 9.0
        self.sun = np.array([0.25, 0.15, 1.0], np.float32) / np.linalg.norm([0.25, 0.15, 1.0])
        self.seed = seed

    def cast(self, pose: np.ndarray) -> dict:
        """Raw hits for a camera-to-world `pose`: t (z-depth), triangle ids, barycentrics, normals, points."""
        o3d = open3d()
        h, w = self.rays_cam.shape[:2]
        dirs = self.rays_cam.reshape(-1, 3) @ pose[:3, :3].T.astype(np.float32)
        origins = np.broadcast_to(pose[:3, 3].astype(np.float32), dirs.shape)
        hits = self.raycaster.cast_rays(o3d.core.Tensor(np.concatenate([origins, dirs], axis=1)))
        t = hits["t_hit"].numpy()
        hit = np.isfinite(t)
        return {"t": np.where(hit, t, 0.0).astype(np.float32), "hit": hit, "dirs": dirs, "origins": origins,
                "ids": hits["primitive_ids"].numpy(), "uvs": hits["primitive_uvs"].numpy(),
                "normals": hits["primitive_normals"].numpy(), "shape": (h, w)}

    def render(self, pose: np.ndarray, time_s: float, frame_index: int = 0,
               subframes: list[np.ndarray] | None = None) -> Rendered:
        """Image, depth and labels at `pose`; extra `subframes` poses are averaged in as motion blur.

        Sensor noise is drawn from (seed, frame_index), so frames can be rendered in any order.
        """
        raw = self.cast(pose)
        h, w = raw["shape"]
        image = self._shade(raw, time_s)
        for extra in subframes or []:
            image += self._shade(self.cast(extra), time_s)
        image /= 1 + len(subframes or [])
        image = image.reshape(h, w, 3) * self.vignette
        noise = np.random.default_rng((self.seed, frame_index)).standard_normal(image.shape, dtype=np.float32)
        image += self.water.noise_sigma * noise
        rgb = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        labels = np.where(raw["hit"], self.scene.labels[np.where(raw["hit"], raw["ids"], 0)], BACKGROUND)
        return Rendered(rgb, raw["t"].reshape(h, w), labels.reshape(h, w).astype(np.uint8))

    def _shade(self, raw: dict, time_s: float) -> np.ndarray:
        hit, ids = raw["hit"], np.where(raw["hit"], raw["ids"], 0)
        tri = self.scene.triangles[ids]
        uv = raw["uvs"]
        c = self.scene.colours
        albedo = (1 - uv[:, :1] - uv[:, 1:]) * c[tri[:, 0]] + uv[:, :1] * c[tri[:, 1]] + uv[:, 1:] * c[tri[:, 2]]
        points = raw["origins"] + raw["dirs"] * raw["t"][:, None]
        normals = raw["normals"]
        albedo *= 1 + self.scene.texture[ids, 1:2] * self._triplanar(points, normals, self.scene.texture[ids, 0], raw["shape"])[:, None]
        if self.textures is not None:
            albedo = self._real_albedo(albedo, hit, self.scene.labels[ids], points, normals)
        facing = np.sign(np.einsum("ij,ij->i", normals, raw["dirs"]))[:, None]
        diffuse = np.clip((normals @ self.sun)[:, None] * -np.where(facing == 0, -1, facing), 0, None)
        xy = points[:, :2]
        caustic = (np.clip(np.sin(xy @ self.caustic_dirs[0] + 1.3 * time_s), 0, None)
                   * np.clip(np.sin(xy @ self.caustic_dirs[1] - 1.1 * time_s), 0, None)) ** 2
        light = 0.45 + 0.8 * diffuse * (1 + self.water.caustics * caustic[:, None])
        distance = raw["t"][:, None] * np.sqrt(np.einsum("ij,ij->i", raw["dirs"], raw["dirs"]))[:, None]
        beta = np.array(self.water.attenuation, np.float32) * self.water.turbidity
        transmission = np.exp(-beta * distance)
        veil = np.array(self.water.backscatter, np.float32)
        colour = albedo * light * transmission + veil * (1 - transmission)
        return np.where(hit[:, None], colour, veil).astype(np.float32)

    def _real_albedo(self, albedo: np.ndarray, hit: np.ndarray, labels: np.ndarray, points: np.ndarray,
                     normals: np.ndarray) -> np.ndarray:
        """The tiles' colours where a class has one, scaled by the square root of the procedural albedo's brightness
        against its class's base colour (colony-to-colony and texture variation, damped)."""
        for class_id, tile in self.textures.tiles.items():
            mask = hit & (labels == class_id)
            if not mask.any() or class_id not in BASE_COLOURS:
                continue
            base = np.mean(BASE_COLOURS[class_id]) / 255.0
            brightness = np.clip(albedo[mask].mean(axis=1, keepdims=True) / base, 0.25, 4.0) ** 0.5
            albedo[mask] = triplanar_colour(tile, points[mask], normals[mask], self.textures.texel_m) * brightness
        return albedo

    def _triplanar(self, points: np.ndarray, normals: np.ndarray, texels_per_m: np.ndarray, shape) -> np.ndarray:
        """(N,) texture value in about [-1, 1] from the noise tile projected along x, y and z, blended by the normal."""
        weights = triplanar_weights(normals)
        out = np.zeros(len(points), np.float32)
        size = self.noise_texture.shape[0]
        for axis, (a, b) in enumerate(TRIPLANAR_AXES):
            u = np.mod(points[:, a] * texels_per_m, size).astype(np.float32).reshape(shape)
            v = np.mod(points[:, b] * texels_per_m, size).astype(np.float32).reshape(shape)
            sampled = cv2.remap(self.noise_texture, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
            out += weights[:, axis] * sampled.ravel()
        return out


def tileable_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size) float32 tileable noise with a 1/f spectrum, scaled to unit standard deviation."""
    f = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(f, f))
    spectrum = np.where(radius > 0, 1.0 / np.maximum(radius, 1.0 / size), 0.0)
    phases = np.exp(2j * np.pi * rng.uniform(size=(size, size)))
    noise = np.real(np.fft.ifft2(spectrum * phases))
    return (noise / noise.std()).astype(np.float32)
