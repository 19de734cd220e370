"""Per-stage throughput and peak memory of `reefmap process` on a video.

Networks are the installed defaults, or (with --random-weights) randomly initialised networks of
the given architecture: their outputs are meaningless but their cost is the real one.

    python tools/bench.py ../shared/realdata/deepreefmap_video/reef_clip.mp4 --random-weights
    python tools/bench.py ../shared/realdata/deepreefmap_video/reef_clip.mp4 --random-weights \
        --seg-architecture segformer-b2 --seg-input-width 2048 --end 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def random_segformer(folder: Path, args) -> Path:
    """A randomly initialised SegFormer of the published size, with the Coralscapes labels, installed the way
    `reefmap weights install` converts a hub snapshot (same card, same windows)."""
    import transformers

    from reefmap.models.hub import Snapshot, convert_snapshot
    from reefmap.models.segformer import MIT_CONFIGS, coralscapes_hub_labels

    labels = coralscapes_hub_labels()
    config = transformers.SegformerConfig(**MIT_CONFIGS[args.seg_architecture], num_labels=len(labels),
                                          id2label=dict(enumerate(labels)))
    snapshot = folder / "snapshot"
    transformers.SegformerForSemanticSegmentation(config).save_pretrained(snapshot)
    files = {p.name: p for p in snapshot.iterdir()}
    return convert_snapshot(Snapshot(f"random {args.seg_architecture}", files, None), folder / "seg.safetensors",
                            args.seg_input_width, tuple(args.seg_window), tuple(args.seg_stride))


def random_weights(folder: Path, args) -> tuple[Path, Path]:
    import torch

    from reefmap.models.unet import DEFAULT_DECODER_CHANNELS
    from reefmap.models.weights import build_model, depth_pose_card, save_weights, segmentation_card
    from reefmap.taxonomy import default_taxonomy

    torch.manual_seed(0)
    training = {"data": "none: random initialisation, benchmark only"}
    dp = depth_pose_card(args.depth_encoder, args.depth_encoder, (args.depth_input_width, args.depth_input_width * 9 // 16),
                         (128, 64, 32, 16, 16), training, max_depth=1e3)
    depth_path = save_weights(build_model(dp), dp, folder / "dp.safetensors")
    if args.seg_architecture != "unet":
        return random_segformer(folder, args), depth_path
    seg = segmentation_card(args.seg_encoder, default_taxonomy(), (args.seg_input_width, args.seg_input_width * 9 // 16),
                            DEFAULT_DECODER_CHANNELS, training)
    return save_weights(build_model(seg), seg, folder / "seg.safetensors"), depth_path


def network_gflops(seg_path: Path, depth_path: Path, processing_size: list[int]) -> dict[str, float]:
    """GFLOPs per frame of each network at the size the run fed it (a multiply-add counts as 2 FLOPs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from reefmap.models.weights import load_weights
    from reefmap.perception.networks import network_size, sliding_window_logits

    device = torch.device("cpu")
    seg, dp = load_weights(seg_path, "segmentation", device), load_weights(depth_path, "depth_pose", device)
    windows = seg.card.get("sliding_window")
    segment = (lambda m, x: sliding_window_logits(m, x, windows["window"], windows["stride"])) if windows else (
        lambda m, x: m(x))
    out = {}
    for name, weights, call, channels in (("segmentation", seg, segment, 3),
                                          ("depth", dp, lambda m, x: m.depth(x), 3),
                                          ("pose", dp, lambda m, x: m.pose(x), 6)):
        w, h = network_size(tuple(processing_size), weights.card["input_size"][0])
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            call(weights.model.float().eval(), torch.zeros(1, channels, h, w))
        out[name] = counter.get_total_flops() / 1e9
    return out


def measured_gflops_per_s(seconds: float = 2.0) -> float:
    """The fp32 matrix-multiply rate this machine reaches with all its threads (the best a network can hope for)."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * 1024 ** 3 * count / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--end", default=None, help="end time (s or mm:ss)")
    parser.add_argument("--width", type=int, default=640, help="processing width")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--seg-architecture", choices=["unet", "segformer-b2", "segformer-b5"], default="unet",
                        help="with --random-weights: a U-Net on --seg-encoder, or a SegFormer run by windows")
    parser.add_argument("--seg-encoder", default="resnext50_32x4d")
    parser.add_argument("--seg-input-width", type=int, default=512,
                        help="with --random-weights: the frame width the segmentation sees (SegFormer: 2048)")
    parser.add_argument("--seg-window", type=int, nargs=2, default=[1024, 1024], metavar=("W", "H"))
    parser.add_argument("--seg-stride", type=int, nargs=2, default=[768, 768], metavar=("W", "H"))
    parser.add_argument("--depth-encoder", default="resnet18")
    parser.add_argument("--depth-input-width", type=int, default=384)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import reefmap

    with tempfile.TemporaryDirectory() as tmp:
        weights = {}
        if args.random_weights:
            seg, dp = random_weights(Path(tmp), args)
            weights = {"seg_weights": seg, "depth_weights": dp}
        start = time.perf_counter()
        result = reefmap.process(args.video, Path(tmp) / "run", fps=args.fps, end_s=args.end, width=args.width,
                                 device=args.device, batch_size=args.batch_size, quiet=True, **weights)
        wall_s = time.perf_counter() - start
        peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        summary = result.summary.to_dict()
        gflops = network_gflops(Path(summary["weights"]["segmentation"]["path"]),
                                Path(summary["weights"]["depth_pose"]["path"]), summary["processing_size"])
    frames = summary["frames_processed"]
    stages = summary["timings"]["stages"]
    machine_rate = measured_gflops_per_s()
    print(f"video {args.video}  frames {frames}  processing {summary['processing_size']}  device {summary['device']}")
    print(f"{'stage':<14}{'seconds':>10}{'frames/s':>12}{'ms/frame':>12}")
    for name, entry in stages.items():
        rate = f"{frames / entry['seconds']:>12.2f}" if entry.get("items") else f"{'(once)':>12}"
        print(f"{name:<14}{entry['seconds']:>10.2f}{rate}{1000 * entry['seconds'] / frames:>12.1f}")
    print(f"{'end to end':<14}{wall_s:>10.2f}{frames / wall_s:>12.2f}{1000 * wall_s / frames:>12.1f}  (incl. model loading)")
    print(f"peak RSS {peak_rss_mib:.0f} MiB")
    network_ms = sum(1000 * stages[k]["seconds"] / frames for k in gflops if k in stages)
    floor_ms = 1000 * sum(gflops.values()) / machine_rate
    print(f"arithmetic floor: {' + '.join(f'{k} {v:.2f}' for k, v in gflops.items())} = {sum(gflops.values()):.2f} "
          f"GFLOP per frame at {machine_rate:.0f} GFLOP/s (fp32 matmul, all threads) = {floor_ms:.1f} ms/frame; the networks "
          f"took {network_ms:.1f} ms/frame ({network_ms / floor_ms:.1f}x the floor)")
    if args.json:
        args.json.write_text(json.dumps({"frames": frames, "wall_s": wall_s, "peak_rss_mib": peak_rss_mib,
                                         "stages": stages, "settings": vars(args) | {"json": str(args.json)},
                                         "device": summary["device"], "gflops_per_frame": gflops,
                                         "machine_gflops_per_s": machine_rate, "floor_ms_per_frame": floor_ms},
                                        indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
