"""SegFormer backend: hub install (loopback stand-in for the hub, then its cache offline), class mapping by name,
sliding windows, and a whole `reefmap process` on the installed network."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from reefmap.errors import ReefmapError
from reefmap.models.segformer import coralscapes_hub_labels
from reefmap.perception.networks import sliding_window_logits, window_starts
from reefmap.taxonomy import default_taxonomy, taxonomy_for_labels

transformers = pytest.importorskip("transformers")

COMMIT = "c0ffee" + "0" * 34
TINY = dict(hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1],
            decoder_hidden_size=16)
README = "---\nlicense: cc-by-nc-4.0\ntags:\n- coral\n---\n# tiny stand-in\n"


def write_snapshot(folder: Path, labels: list[str], seed: int = 0) -> Path:
    """A randomly initialised tiny SegFormer saved the way hub repositories hold it."""
    torch.manual_seed(seed)
    config = transformers.SegformerConfig(**TINY, num_labels=len(labels),
                                          id2label=dict(enumerate(labels)), label2id={v: k for k, v in enumerate(labels)})
    transformers.SegformerForSemanticSegmentation(config).save_pretrained(folder)
    (folder / "README.md").write_text(README)
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5, 0.5, 0.5],
                                                                 "image_std": [0.25, 0.25, 0.25]}))
    return folder


class HubStandIn(http.server.BaseHTTPRequestHandler):
    """Answers the hub's file requests (HEAD and GET of /OWNER/NAME/resolve/REVISION/FILE) from local folders."""

    repos: dict[str, Path] = {}

    def log_message(self, *args):
        pass

    def _answer(self) -> tuple[int, dict, bytes]:
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return 404, {}, b""
        repo, name = "/".join(parts[:2]), "/".join(parts[4:])
        if repo not in self.repos:
            return 404, {"X-Error-Code": "RepoNotFound"}, b""
        path = self.repos[repo] / name
        if not path.is_file():
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}, b""
        data = path.read_bytes()
        return 200, {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}, data

    def _reply(self, with_body: bool) -> None:
        code, headers, data = self._answer()
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def do_HEAD(self):
        self._reply(False)

    def do_GET(self):
        self._reply(True)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A loopback stand-in for huggingface.co holding owner/tiny-coralscapes and owner/tiny-cityscapes."""
    root = tmp_path_factory.mktemp("hub")
    HubStandIn.repos = {
        "owner/tiny-coralscapes": write_snapshot(root / "coralscapes", coralscapes_hub_labels()),
        "owner/tiny-cityscapes": write_snapshot(root / "cityscapes", ["road", "sidewalk", "sand", "building"]),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HubStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def reefmap_cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """`reefmap ARGS` in a fresh interpreter, with `env` over this one's (a None value: the variable unset)."""
    merged = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "reefmap", *args], env=merged, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_labels_are_matched_to_classes_by_name():
    reference = default_taxonomy()
    taxonomy = taxonomy_for_labels(["Unlabeled", "SAND", "branching_alive", "massive/meandering-alive"], reference, "m")
    assert [c.name for c in taxonomy.classes] == ["unlabeled", "sand", "branching alive", "massive/meandering alive"]
    assert taxonomy.classes[0].roles == {"ignore_in_cover", "ignore_in_cloud"}
    assert taxonomy.classes[0].id not in {c.id for c in reference.classes}
    with pytest.raises(ReefmapError, match=r"2 output labels match no class.*'road', 'building'"):
        taxonomy_for_labels(["road", "sand", "building"], reference, "m")
    with pytest.raises(ReefmapError, match="same class"):
        taxonomy_for_labels(["sand", "Sand"], reference, "m")


def test_windows_cover_the_frame_and_end_at_its_edge():
    assert window_starts(100, 100, 50) == [0]
    assert window_starts(80, 100, 50) == [0]
    assert window_starts(256, 128, 96) == [0, 96, 128]
    assert window_starts(320, 128, 128) == [0, 128, 192]


def test_sliding_windows_agree_with_one_pass_of_a_local_network():
    """A network without context beyond its pixels (1x1 convolution then 4x4 pooling) gives the same logits window
    by window as on the whole image, overlaps averaged."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 1), torch.nn.AvgPool2d(4))
    batch = torch.randn(2, 3, 96, 160)
    with torch.no_grad():
        whole = model(batch)
        windowed = sliding_window_logits(model, batch, (64, 64), (32, 48))
    assert windowed.shape == whole.shape == (2, 5, 24, 40)
    assert torch.allclose(windowed, whole, atol=1e-5)


def test_overlaps_are_averaged():
    """A network that reports where its window lies: overlapped pixels get the mean of the windows over them."""
    calls = []

    def model(window):
        calls.append(window.shape)
        return torch.full((1, 1, *window.shape[2:]), float(len(calls)))

    logits = sliding_window_logits(model, torch.zeros(1, 3, 32, 96), (64, 64), (32, 32))
    assert len(calls) == 2  # windows at x = 0 and 32
    assert logits[0, 0, 0, :32].eq(1).all() and logits[0, 0, 0, 32:64].eq(1.5).all() and logits[0, 0, 0, 64:].eq(2).all()


def test_install_from_the_hub_then_offline_from_its_cache(hub, tmp_path):
    env = {"HF_ENDPOINT": hub, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": None,  # as a user's shell has it
           "REEFMAP_WEIGHTS": str(tmp_path / "weights"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    done = reefmap_cli(["weights", "install", "hf:owner/tiny-coralscapes", "--input-width", "256", "--window",
                        "128x128", "--stride", "96x96"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    target = tmp_path / "weights" / "segmentation.safetensors"
    card = json.loads(target.with_suffix(".json").read_text())
    assert card["architecture"] == "segformer"
    assert card["source"]["model"] == "hf:owner/tiny-coralscapes" and card["source"]["revision"] == COMMIT
    assert card["source"]["licence"] == "cc-by-nc-4.0"
    assert card["source"]["files"]["config.json"] == hashlib.sha256(
        (HubStandIn.repos["owner/tiny-coralscapes"] / "config.json").read_bytes()).hexdigest()
    assert card["sliding_window"] == {"window": [128, 128], "stride": [96, 96]} and card["input_size"] == [256, 128]
    assert card["normalisation"] == {"mean": [0.5] * 3, "std": [0.25] * 3}
    assert card["class_mapping"]["unlabeled"] == "unlabeled" and card["class_mapping"]["sand"] == "sand"
    assert card["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()

    offline = {**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    again = reefmap_cli(["weights", "install", "hf:owner/tiny-coralscapes", "--name", "again"], offline, tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "weights" / "again.safetensors").exists()


@pytest.mark.parametrize("source, endpoint, message", [
    ("hf:owner/missing", "hub", "no model owner/missing on the Hugging Face hub"),
    ("hf:owner/tiny-cityscapes", "hub", "3 output labels match no class"),
    ("hf:owner/tiny-coralscapes", "closed", "cannot reach the Hugging Face hub"),
    ("hf:not-a-repo-id", "hub", "is not a hub model id"),
])
def test_install_errors_are_one_line(hub, tmp_path, source, endpoint, message):
    env = {"HF_ENDPOINT": hub if endpoint == "hub" else "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "0", "REEFMAP_WEIGHTS": str(tmp_path / "weights"), "HF_HUB_ETAG_TIMEOUT": "2",
           "HF_HUB_DOWNLOAD_TIMEOUT": "2"}
    done = reefmap_cli(["weights", "install", source], env, tmp_path)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "weights").exists() or not list((tmp_path / "weights").iterdir())


@pytest.fixture(scope="module")
def installed_segformer(hub, tmp_path_factory) -> Path:
    """The tiny SegFormer installed from a local snapshot folder (as a user without network would)."""
    from reefmap.models.hub import install_segformer

    folder = tmp_path_factory.mktemp("segformer_weights")
    os.environ["REEFMAP_WEIGHTS"] = str(folder)
    try:
        return install_segformer(str(HubStandIn.repos["owner/tiny-coralscapes"]), input_width=256, window=(128, 128),
                                 stride=(96, 96))
    finally:
        del os.environ["REEFMAP_WEIGHTS"]


def test_segmenter_runs_the_segformer_by_windows(installed_segformer, hub):
    """reefmap's probabilities equal the hub model's own softmax where one window covers the frame, come at a
    quarter of the input size, and sum to one over the classes."""
    from reefmap.models.weights import load_weights
    from reefmap.perception.networks import Segmenter

    weights = load_weights(installed_segformer, "segmentation")
    assert weights.card["source"]["revision"] is None and len(weights.taxonomy) == 40
    segmenter = Segmenter(weights, torch.device("cpu"))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (144, 256, 3), dtype=np.uint8) for _ in range(2)]
    probabilities = segmenter.probabilities(frames)
    assert probabilities.shape == (2, 40, 32, 64)  # 256x128: multiples of 32
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)

    reference = transformers.SegformerForSemanticSegmentation.from_pretrained(
        HubStandIn.repos["owner/tiny-coralscapes"]).eval()
    one_window = Segmenter(weights, torch.device("cpu"), input_width=128)
    small = [frames[0][:64, :128]]
    x = (torch.from_numpy(small[0]).permute(2, 0, 1).float()[None] / 255 - 0.5) / 0.25
    with torch.no_grad():
        expected = torch.softmax(reference(pixel_values=x).logits, dim=1).numpy()
    assert np.allclose(one_window.probabilities(small), expected, atol=2e-3)  # fp16 storage of the weights


def test_process_runs_end_to_end_on_the_installed_segformer(installed_segformer, tiny_weights, synthetic_transect,
                                                            tmp_path):
    env = {"REEFMAP_WEIGHTS": str(installed_segformer.parent), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "run"
    done = reefmap_cli(["process", str(synthetic_transect / "video.mp4"), "--out", str(out), "--fps", "2",
                        "--depth-weights", str(tiny_weights["depth_pose"]), "--mapping", "learned", "--quiet"],
                       env, tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["weights"]["segmentation"]["card"]["architecture"] == "segformer"
    assert (out / "cover.csv").exists()


def test_a_segformer_with_other_classes_cannot_teach(installed_segformer, synthetic_transect, tmp_path):
    done = reefmap_cli(["train", "segmentation", str(synthetic_transect), "--out", str(tmp_path / "s.safetensors"),
                        "--teacher", str(installed_segformer), "--iterations", "1", "--encoder-weights", "random"],
                       {"HF_HUB_OFFLINE": "1"}, tmp_path)
    assert done.returncode == 2 and "40 outputs), not the 39 that training uses" in done.stderr, done.stderr
    assert not (tmp_path / "s.safetensors").exists()


def test_the_python_api_installs_a_snapshot_folder(hub, tmp_path, monkeypatch):
    import reefmap

    monkeypatch.setenv("REEFMAP_WEIGHTS", str(tmp_path / "weights"))
    path = reefmap.install_weights(str(HubStandIn.repos["owner/tiny-coralscapes"]), name="coralscapes-tiny",
                                   input_width=512, window=(256, 256), stride=(192, 192))
    assert path == tmp_path / "weights" / "coralscapes-tiny.safetensors"
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["input_size"] == [512, 256] and card["sliding_window"]["stride"] == [192, 192]
    with pytest.raises(ReefmapError, match="pinned with hf:OWNER/NAME@REVISION"):
        reefmap.install_weights("hf:owner/tiny-coralscapes", sha256="0" * 64)


def test_an_endpoint_that_refuses_connections_counts_as_offline():
    import socket

    from reefmap.models.hub import endpoint_reachable

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        assert endpoint_reachable(f"http://127.0.0.1:{listening.getsockname()[1]}")
    assert not endpoint_reachable("http://127.0.0.1:9")
