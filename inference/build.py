"""Build models by name and load LiteMedSAM-format checkpoints strictly.

`python -m inference.build [--model NAME]` prints parameter counts per part.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import torch

from inference.config import MODEL_CONFIGS, get_config
from inference.modeling.lite_medsam import LiteMedSAM

MODEL_MODULES = ("image_encoder", "prompt_encoder", "mask_decoder")


class CheckpointError(ValueError):
    """A checkpoint does not match the model it is loaded into."""


def build_model(name: str, checkpoint: Path | None = None) -> LiteMedSAM:
    """Build the named model in eval mode, optionally loading a checkpoint strictly."""
    model = LiteMedSAM(get_config(name))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model.eval()


def extract_state_dict(obj: object, source: str) -> Mapping[str, torch.Tensor]:
    """Return the model state dict from a raw checkpoint object (plain, or under 'model')."""
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{source}: expected a state dict of tensors (or one under the key 'model')")
    return obj


def load_checkpoint(model: LiteMedSAM, path: Path) -> None:
    """Load weights from `path` into `model`; any missing or unexpected key is an error."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint file not found (python -m checkpoints fetch)") from None
    state = extract_state_dict(raw, str(path))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or mismatched:
        lines = [f"{path} does not fit model {model.config.name!r}:"]
        lines += [f"  missing: {k}" for k in missing]
        lines += [f"  unexpected: {k}" for k in unexpected]
        lines += [f"  shape mismatch: {k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in mismatched]
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state, strict=True)


def parameter_counts(model: LiteMedSAM) -> dict[str, int]:
    """Trainable parameter count per part, plus 'total' and 'state_dict' (buffers included)."""
    counts = {part: sum(p.numel() for p in getattr(model, part).parameters()) for part in MODEL_MODULES}
    counts["total"] = sum(p.numel() for p in model.parameters())
    counts["state_dict"] = sum(t.numel() for t in model.state_dict().values())
    return counts


def main(argv: list[str] | None = None) -> None:
    """Print parameter counts of one or all model configurations."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=sorted(MODEL_CONFIGS), help="default: every configuration")
    args = parser.parse_args(argv)
    names = [args.model] if args.model else list(MODEL_CONFIGS)
    print(f"{'model':<16}" + "".join(f"{k:>16}" for k in (*MODEL_MODULES, "total", "state_dict")))
    for name in names:
        counts = parameter_counts(LiteMedSAM(get_config(name)))
        print(f"{name:<16}" + "".join(f"{counts[k]:>16,}" for k in (*MODEL_MODULES, "total", "state_dict")))


if __name__ == "__main__":
    main()
