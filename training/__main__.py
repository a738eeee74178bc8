"""`python -m training --data DIR [--data DIR ...] --run-dir DIR [--resume]`: distil a SwiftMedSAM student.

Runs the stages in order (teacher cache, each changed encoder stage, encoder,
student-cache, decoder, export); `--only` runs some of them. Under `torchrun` every stage but the
cache and the export trains with DistributedDataParallel (NCCL between GPUs, gloo
between CPU processes). `--device auto` trains on a GPU where torch sees one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from checkpoints.manifest import checkpoint_for
from inference.config import MODEL_CONFIGS
from training.distill import DistillConfig, run_distillation, stage_names
from training.init import parse_block_map
from training.loop import TrainConfig, init_distributed, training_device

DEFAULTS = DistillConfig()


def _stage_args(parser: argparse.ArgumentParser, name: str) -> None:
    stage: TrainConfig = getattr(DEFAULTS, name)
    parser.add_argument(f"--{name}-steps", type=int, default=stage.steps)
    parser.add_argument(f"--{name}-batch", type=int, default=stage.batch_size)
    parser.add_argument(f"--{name}-lr", type=float, default=stage.lr)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", required=True,
                        help="folder of case .npz files (labels from a sibling gts/ folder); repeatable")
    parser.add_argument("--run-dir", type=Path, required=True, help="run folder (cache, stages, exported weights)")
    parser.add_argument("--student", default=DEFAULTS.student,
                        choices=[m for m in MODEL_CONFIGS if m != "litemedsam"])
    parser.add_argument("--teacher", type=Path, help="LiteMedSAM weights (default: the manifest's)")
    parser.add_argument("--resume", action="store_true", help="skip finished stages, continue the interrupted one")
    parser.add_argument("--only", nargs="+", help="run only these stages (default: all)")
    parser.add_argument("--views", type=int, default=DEFAULTS.views,
                        help="versions of each slice in the cache (1 = no augmentation)")
    parser.add_argument("--views-2d", type=int, help="versions of each 2D image (default: --views)")
    parser.add_argument("--max-items", type=int, help="cache at most this many samples, evenly spread")
    parser.add_argument("--block-map", default="", help="teacher blocks per student stage, e.g. '0:1 2:0,5'")
    for stage in ("local", "encoder", "decoder"):
        _stage_args(parser, stage)
    parser.add_argument("--boxes-per-image", type=int, default=DEFAULTS.boxes_per_image)
    parser.add_argument("--object-rate", type=float, default=DEFAULTS.object_rate,
                        help="share of decoder prompts that are (jittered) object boxes; the rest are random boxes")
    parser.add_argument("--decoder-input", choices=("student", "teacher"), default=DEFAULTS.decoder_input,
                        help="embeddings the student decoder learns from (student: its own encoder's, as at inference)")
    parser.add_argument("--init", type=Path,
                        help="start from an earlier student's weights instead of the teacher's blocks")
    parser.add_argument("--gt-weight", type=float, default=DEFAULTS.gt_weight,
                        help="weight of Dice + BCE against labels")
    parser.add_argument("--schedule", choices=["cosine", "plateau"], default=TrainConfig.schedule)
    parser.add_argument("--checkpoint-every", type=int, default=TrainConfig.checkpoint_every)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for the student: faster on this CPU, but it moves the encoder loss by about 7%%")
    parser.add_argument("--threads", type=int, help="torch threads per process")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: this rank's GPU where torch sees one, else the CPU")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> DistillConfig:
    """The distillation settings the options describe (the rest keep `DistillConfig`'s defaults)."""
    def stage(name: str) -> TrainConfig:
        return dataclasses.replace(
            getattr(DEFAULTS, name), steps=getattr(args, f"{name}_steps"), batch_size=getattr(args, f"{name}_batch"),
            lr=getattr(args, f"{name}_lr"), schedule=args.schedule, checkpoint_every=args.checkpoint_every,
            seed=args.seed, bf16=args.bf16, progress=not args.no_progress,
        )

    return DistillConfig(
        student=args.student, views=args.views, views_2d=args.views_2d, max_items=args.max_items, local=stage("local"),
        encoder=stage("encoder"), decoder=stage("decoder"), boxes_per_image=args.boxes_per_image,
        object_rate=args.object_rate, gt_weight=args.gt_weight, decoder_input=args.decoder_input,
        init=None if args.init is None else str(args.init), block_map=parse_block_map(args.block_map),
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    stages = stage_names(args.student, args.decoder_input)
    if args.only and (unknown := set(args.only) - set(stages)):
        raise SystemExit(f"unknown stage(s) {sorted(unknown)}; stages: {' '.join(stages)}")
    device = training_device(args.device)
    init_distributed(device)
    teacher = args.teacher or checkpoint_for("litemedsam").path
    summary = run_distillation(args.data, args.run_dir, teacher, config_from_args(args), args.resume, args.only,
                               not args.no_progress, device)
    print(json.dumps({k: summary[k] for k in ("stages", "export") if k in summary}, indent=1))


if __name__ == "__main__":
    main()
