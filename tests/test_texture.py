import json

import cv2
import numpy as np
import pytest

from reefmap.errors import UsageError
from reefmap.io.points import validation_images
from reefmap.synthetic.scene import SAND, NAMED_SCENES, build_scene
from reefmap.synthetic.render import Renderer, WaterSettings
from reefmap.synthetic.texture import (
    ClassTextures, class_textures, cut_patch, quilt_tile, sample_tile, triplanar_colour, typical_patches,
)
from reefmap.taxonomy import default_taxonomy

TAX = default_taxonomy()


def test_cut_patch_stays_inside_the_image_near_its_edges():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :10] = 255
    corner = cut_patch(image, 0, 0, 20, 10)
    assert corner.shape == (10, 10, 3) and corner.dtype == np.float32
    assert corner[:, :5].min() == pytest.approx(1.0) and corner[:, 5:].max() == 0.0  # square moved to x 0..20
    assert cut_patch(image, 20, 59, 20, 10).max() == 0.0


def test_quilt_tile_of_one_colour_is_that_colour_everywhere():
    patch = np.full((12, 12, 3), (0.2, 0.5, 0.7), np.float32)
    tile = quilt_tile([patch, patch.copy()], 48, np.random.default_rng(0))
    assert tile.shape == (48, 48, 3)
    assert np.allclose(tile, (0.2, 0.5, 0.7), atol=1e-5)


def test_quilt_tile_blends_patches_without_hard_seams():
    dark, light = np.zeros((16, 16, 3), np.float32), np.ones((16, 16, 3), np.float32)
    tile = quilt_tile([dark, light], 64, np.random.default_rng(3))
    assert 0.2 < tile.mean() < 0.8 and tile.min() >= 0.0 and tile.max() <= 1.0
    wrapped = np.concatenate([tile, tile], axis=1)  # tileable: no jump where it repeats either
    jumps = np.abs(np.diff(wrapped, axis=1)).max(axis=(0, 2))
    assert jumps[63] <= jumps.max() and jumps.max() < 0.5


def test_typical_patches_drops_a_square_that_caught_something_else():
    rng = np.random.default_rng(0)
    sand = [np.full((4, 4, 3), 0.6, np.float32) + rng.normal(0, 0.01, 3).astype(np.float32) for _ in range(20)]
    frame = np.zeros((4, 4, 3), np.float32)  # a black quadrat frame
    kept = typical_patches(sand + [frame])
    assert len(kept) >= 18 and not any(p.mean() < 0.3 for p in kept)


def test_sample_tile_interpolates_and_wraps():
    tile = np.zeros((4, 4, 3), np.float32)
    tile[:, 1] = 1.0
    values = sample_tile(tile, np.array([0.5, 1.0, 5.0, -3.0]), np.array([0.0, 2.0, 1.0, 3.0]))
    assert values[:, 0] == pytest.approx([0.5, 1.0, 1.0, 1.0])


def test_triplanar_colour_uses_the_plane_facing_the_normal():
    tile = np.zeros((8, 8, 3), np.float32)
    tile[:, :, 0] = np.arange(8)[None, :] / 8  # red grows along the tile's u
    points = np.array([[0.003, 0.005, 0.0]])
    up = triplanar_colour(tile, points, np.array([[0.0, 0.0, 1.0]]), texel_m=0.001)  # x, y plane: u from x
    side = triplanar_colour(tile, points, np.array([[1.0, 0.0, 0.0]]), texel_m=0.001)  # y, z plane: u from y
    assert up[0, 0] == pytest.approx(3 / 8) and side[0, 0] == pytest.approx(5 / 8)


def _point_folder(tmp_path, count=8):
    """`count` flat-colour photos with 9 'Sand' points in their middle: red, except the fixed validation ones, green."""
    folder = tmp_path / "points"
    folder.mkdir()
    names = [f"quadrat{i}.png" for i in range(count)]
    held_out = validation_images(names)
    rows = ["Name,Row,Column,Label"]
    for name in names:
        cv2.imwrite(str(folder / name), np.full((100, 100, 3), (0, 200, 0) if name in held_out else (0, 0, 200), np.uint8))
        rows += [f"{name},{r},{c},Sand" for r in (40, 50, 60) for c in (40, 50, 60)]
    (folder / "annotations.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "labels.json").write_text('{"Sand": "sand"}')
    return folder, tmp_path / "labels.json"


def test_class_textures_never_use_the_validation_photographs(tmp_path):
    folder, label_map = _point_folder(tmp_path)
    textures = class_textures(folder, TAX, label_map, photo_width_m=1.0)
    assert set(textures.tiles) == {SAND} and textures.photos == 6
    tile = textures.tiles[SAND]
    assert tile[..., 0].min() > 0.75 and tile[..., 1].max() < 0.01  # all red, no green from the 2 held out
    assert textures.describe()["patches_by_class"] == {str(SAND): 6 * 9}


def test_class_textures_refuse_a_folder_without_points_or_enough_of_a_class(tmp_path):
    with pytest.raises(UsageError, match="not a folder of point-annotated photographs"):
        class_textures(tmp_path, TAX)
    folder, label_map = _point_folder(tmp_path, count=2)
    (folder / "annotations.csv").write_text("Name,Row,Column,Label\nquadrat0.png,50,50,Sand\n")
    with pytest.raises(UsageError, match="no class has 5 or more"):
        class_textures(folder, TAX, label_map, photo_width_m=1.0)


def test_renderer_paints_a_textured_class_with_its_tile():
    scene = build_scene(NAMED_SCENES["sandy"].__class__(length_m=3.0, half_width_m=1.5), 1)
    from reefmap.io.camera import CameraProfile
    from reefmap.synthetic.path import look_rotation

    camera = CameraProfile("pin", (64, 48), 60.0, 60.0, 31.5, 23.5)
    pose = np.eye(4)
    pose[:3, :3] = look_rotation(0.0)
    pose[:3, 3] = (1.5, 0.0, scene.ground_height(np.array([1.5]), np.array([0.0]))[0] + 1.0)
    water = WaterSettings(caustics=0.0, noise_sigma=0.0, vignetting=0.0)
    red = ClassTextures({SAND: np.full((8, 8, 3), (0.9, 0.05, 0.05), np.float32)}, {SAND: 9}, 1, "test")
    plain = Renderer(scene, camera, water, seed=1).render(pose, 0.0)
    textured = Renderer(scene, camera, water, seed=1, textures=red).render(pose, 0.0)
    sand = textured.labels == SAND
    assert sand.mean() > 0.3 and np.array_equal(plain.labels, textured.labels)
    redness = lambda im: im[..., 0].astype(float) - im[..., 2]  # noqa: E731
    assert redness(textured.rgb)[sand].mean() > redness(plain.rgb)[sand].mean() + 30
    assert np.array_equal(plain.rgb[~sand], textured.rgb[~sand])


def test_synth_records_its_texture_source(tmp_path):
    from reefmap.config import SynthSettings
    from reefmap.synthetic.dataset import synthesize

    folder, label_map = _point_folder(tmp_path)
    settings = SynthSettings(seed=3, length_m=1.0, fps=2.0, size=(64, 36), texture_photos=str(folder),
                             texture_label_map=str(label_map), texture_photo_width_m=1.0)
    synthesize(tmp_path / "out", settings, quiet=True)
    manifest = json.loads((tmp_path / "out" / "truth.json").read_text())
    assert manifest["texture"]["photos"] == 6 and manifest["settings"]["texture_photos"] == str(folder)
