"""One resumable training loop for every stage: AdamW, schedule, clipping, checkpoints, CSV, DDP.

A stage is a `Task`: an nn.Module holding the student (`task.student`) whose
trainable parameters have requires_grad set, with `batch(indices, generator)`
building a batch and `forward(batch)` returning named losses ('loss' is optimised).
Batches are built on the CPU and moved to the device of the student's weights.
Data order, augmentation and box sampling are functions of (seed, step, rank),
so a run resumed from a checkpoint repeats the uninterrupted run bit for bit (on
the CPU; GPU kernels need not be deterministic).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from common.atomic import atomic_path, write_atomic

CHECKPOINT = "checkpoint.pt"
STUDENT = "student.pt"
METRICS = "metrics.csv"
SUMMARY = "summary.json"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one stage."""

    steps: int
    batch_size: int = 2
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: int = 0
    schedule: str = "cosine"  # or "plateau"
    clip: float = 1.0
    checkpoint_every: int = 25
    seed: int = 0
    bf16: bool = False
    progress: bool = True


def world() -> tuple[int, int]:
    """(rank, world size) of the process group, or (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def training_device(name: str = "auto") -> torch.device:
    """The device to train on: 'cpu', 'cuda' (this torchrun rank's GPU) or 'auto' (a GPU where there is one)."""
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("--device cuda, but torch sees no GPU here")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device: torch.device) -> None:
    """Join the torchrun process group when WORLD_SIZE > 1: NCCL between GPUs, gloo between CPU processes."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch built on the CPU, on `device`."""
    return {name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()}


def batch_indices(step: int, batch_size: int, n_items: int, seed: int, rank: int, world_size: int) -> list[int]:
    """Items of one rank at one step: consecutive slices of per-epoch permutations seeded by (seed, epoch)."""
    global_batch = batch_size * world_size
    positions = range(step * global_batch + rank * batch_size, step * global_batch + (rank + 1) * batch_size)
    out, perms = [], {}
    for pos in positions:
        epoch, offset = divmod(pos, n_items)
        if epoch not in perms:
            perms[epoch] = torch.randperm(n_items, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        out.append(int(perms[epoch][offset]))
    return out


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The random stream of one step on one rank (box sampling and jitter)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_009 + rank)


def _scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(cfg.steps // 10, 1))

    def factor(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        progress = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def save_atomic(obj: object, path: Path) -> None:
    """torch.save `obj` to `path` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _keep_rows(path: Path, last_step: int) -> None:
    """Drop CSV rows after the checkpoint, so a resumed run appends exactly where it left off."""
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with path.open("w", newline="") as handle:
        if rows:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(r for r in rows if int(r["step"]) <= last_step)


def train(
    task: nn.Module, n_items: int, cfg: TrainConfig, folder: Path, resume: bool = False, stop_after: int | None = None
) -> dict:
    """Train `task` for cfg.steps steps, checkpointing into `folder`; return the stage summary.

    `stop_after` pauses at that step (with a checkpoint) as an interruption would; resume continues it.
    """
    folder = Path(folder)
    rank, world_size = world()
    folder.mkdir(parents=True, exist_ok=True)
    params = [p for p in task.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _scheduler(optimizer, cfg)
    task.eval()  # batch norm keeps its running statistics
    device = params[0].device
    if world_size == 1:
        model = task
    else:
        model = DistributedDataParallel(task, device_ids=[device.index] if device.type == "cuda" else None)
    step, elapsed = 0, 0.0
    checkpoint_path = folder / CHECKPOINT
    if resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        task.student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
    if rank == 0:
        _keep_rows(folder / METRICS, step if resume else -1)

    def save(at_step: int) -> None:
        if rank == 0:
            save_atomic({
                "step": at_step, "student": task.student.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), "elapsed": elapsed,
            }, checkpoint_path)

    bar = tqdm(total=cfg.steps, initial=step, desc=folder.name, unit="step", disable=not cfg.progress or rank > 0)
    recent: list[float] = []
    end = cfg.steps if stop_after is None else min(stop_after, cfg.steps)
    while step < end:
        start = time.perf_counter()
        generator = step_generator(cfg.seed, step, rank)
        batch = task.batch(batch_indices(step, cfg.batch_size, n_items, cfg.seed, rank, world_size), generator)
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            losses = model(batch)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        values = {k: v.detach().float() for k, v in losses.items()}
        if world_size > 1:
            stacked = torch.stack(list(values.values()))
            dist.all_reduce(stacked)
            values = dict(zip(values, (stacked / world_size).tolist()))
        else:
            values = {k: v.item() for k, v in values.items()}
        if cfg.schedule == "plateau":
            scheduler.step(values["loss"])
        else:
            scheduler.step()
        seconds = time.perf_counter() - start
        elapsed += seconds
        step += 1
        images_per_s = cfg.batch_size * world_size / seconds
        recent = (recent + [values["loss"]])[-20:]
        if rank == 0:
            _append_row(folder / METRICS, {"step": step, "lr": lr, **values, "grad_norm": float(grad_norm),
                                           "images_per_s": images_per_s, "elapsed_s": elapsed})
        bar.set_postfix(loss=f"{values['loss']:.4f}", img_s=f"{images_per_s:.2f}")
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == end:
            save(step)
    bar.close()
    if step < cfg.steps:
        return {"stopped_at": step}
    summary = {"steps": cfg.steps, "seconds": round(elapsed, 1), "images": cfg.steps * cfg.batch_size * world_size,
               "images_per_s": round(cfg.steps * cfg.batch_size * world_size / max(elapsed, 1e-9), 3),
               "final_loss": sum(recent) / max(len(recent), 1), "config": asdict(cfg), "world_size": world_size}
    if rank == 0:
        save_atomic(task.student.state_dict(), folder / STUDENT)
        write_atomic(folder / SUMMARY, json.dumps(summary, indent=1))
    if world_size > 1:
        dist.barrier()
    return summary


def _append_row(path: Path, row: dict) -> None:
    new = not path.is_file() or path.stat().st_size == 0
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
