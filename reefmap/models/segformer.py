"""SegFormer segmentation networks (Hugging Face `transformers`), e.g. the Coralscapes models, in reefmap's weights
format: the card holds the network's configuration, its class mapping and how it is run (window, stride, width)."""

from __future__ import annotations

from torch import nn

from reefmap.errors import WeightsError

INSTALL_HINT = "pip install 'reefmap[hub]'"
# The Coralscapes models were trained on 1024x1024 crops of frames about 2048 pixels wide (their scripts run them
# window by window at that width); overlapping windows let every pixel be seen away from a window's edge.
DEFAULT_WINDOW = (1024, 1024)
DEFAULT_STRIDE = (768, 768)
DEFAULT_INPUT_WIDTH = 2048
# The encoder sizes of the published SegFormers (Xie et al. 2021), e.g. for measuring their cost with random weights.
MIT_CONFIGS = {
    "segformer-b2": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 4, 6, 3], "num_attention_heads": [1, 2, 5, 8],
                     "decoder_hidden_size": 768},
    "segformer-b5": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 6, 40, 3], "num_attention_heads": [1, 2, 5, 8],
                     "decoder_hidden_size": 768},
}


def transformers_module():
    try:
        import transformers
    except ImportError:
        raise WeightsError(f"SegFormer weights need the transformers package; install it with {INSTALL_HINT}") from None
    return transformers


class SegformerLogits(nn.Module):
    """(B, 3, H, W) normalised RGB -> (B, C, H/4, W/4) class logits, the SegFormer's own output resolution."""

    def __init__(self, config: dict):
        super().__init__()
        transformers = transformers_module()
        self.network = transformers.SegformerForSemanticSegmentation(transformers.SegformerConfig(**config))

    def forward(self, x):
        return self.network(pixel_values=x).logits


def segformer_config(config: dict) -> dict:
    """The parts of a hub `config.json` that rebuild the network (labels and bookkeeping left out)."""
    keys = ("num_channels", "num_encoder_blocks", "depths", "sr_ratios", "hidden_sizes", "patch_sizes", "strides",
            "num_attention_heads", "mlp_ratios", "hidden_act", "layer_norm_eps", "decoder_hidden_size",
            "reshape_last_stage")
    missing = [k for k in ("hidden_sizes", "depths", "num_attention_heads", "decoder_hidden_size") if k not in config]
    if config.get("model_type") != "segformer" or missing:
        raise WeightsError(f"config.json describes a '{config.get('model_type')}' model, not a SegFormer "
                           f"(missing {', '.join(missing) or 'nothing'}); only SegFormer repositories can be installed")
    return {k: config[k] for k in keys if k in config}


def output_labels(config: dict) -> list[str]:
    """The class name of each output channel, from the hub config's `id2label`."""
    id2label = config.get("id2label") or {}
    try:
        labels = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        labels = {}
    if not labels or sorted(labels) != list(range(len(labels))):
        raise WeightsError("config.json has no id2label naming each output 0..N-1; reefmap matches a model's classes "
                           "to its own by these names")
    return [labels[k] for k in range(len(labels))]


def coralscapes_hub_labels() -> list[str]:
    """The output labels of the Coralscapes models on the hub: "unlabeled", then the 39 classes by id."""
    from reefmap.taxonomy import default_taxonomy

    return ["unlabeled"] + [c.name for c in sorted(default_taxonomy().classes, key=lambda c: c.id)]


def build_segformer(card: dict) -> nn.Module:
    """The untrained SegFormer a card describes, with one output per taxonomy class."""
    config = {**card["segformer_config"], "num_labels": len(card["taxonomy"]["classes"])}
    return SegformerLogits(config)
