import functools
import http.server
import threading

import pytest

from reefmap.errors import WeightsError
from reefmap.models.install import install_weights, installed_weights
from reefmap.models.weights import default_weights, load_weights, sha256_file


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user_weights"
    monkeypatch.setenv("REEFMAP_WEIGHTS", str(folder))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return folder


@pytest.fixture
def loopback_server(tiny_weights):
    """An HTTP server on 127.0.0.1 serving the fixture weights folder; stopped after the test."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tiny_weights["segmentation"].parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_install_from_a_file_becomes_the_default(tiny_weights, user_dir):
    source = tiny_weights["segmentation"]
    target = install_weights(str(source), sha256=sha256_file(source))
    assert target == user_dir / "segmentation.safetensors"
    assert default_weights("segmentation") == target
    assert load_weights(target, "segmentation").sha256 == sha256_file(source)
    listed = [w for w in installed_weights() if w.path == target]
    assert listed and listed[0].is_default


def test_install_from_a_loopback_url(tiny_weights, user_dir, loopback_server):
    target = install_weights(f"{loopback_server}/depth_pose.safetensors", name="reef-depth")
    assert target == user_dir / "reef-depth.safetensors"
    assert load_weights(target, "depth_pose").card["task"] == "depth_pose"


def test_install_refuses_a_wrong_hash_and_leaves_nothing(tiny_weights, user_dir, loopback_server):
    with pytest.raises(WeightsError, match="SHA-256"):
        install_weights(f"{loopback_server}/segmentation.safetensors", sha256="0" * 64)
    assert not user_dir.exists() or not list(user_dir.iterdir())
    with pytest.raises(WeightsError, match="cannot fetch"):
        install_weights(f"{loopback_server}/missing.safetensors")


def test_a_damaged_file_fails_its_card_hash(tiny_weights, tmp_path):
    import shutil

    target = tmp_path / "seg.safetensors"
    shutil.copy(tiny_weights["segmentation"], target)
    shutil.copy(tiny_weights["segmentation"].with_suffix(".json"), target.with_suffix(".json"))
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256 in its card"):
        load_weights(target, "segmentation")
