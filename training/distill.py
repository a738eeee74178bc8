"""The distillation pipeline: teacher cache, stage-local training, encoder fine-tuning, decoder, export.

Each stage is one function over a shared `Run`, listed once in `stages`. Each
writes into its own folder of the run and starts from the last finished stage's
`student.pt` (the first from the teacher's blocks, or from `init`, an earlier
student); with `resume`, finished stages are skipped and an interrupted one
continues from its last checkpoint. Between encoder and decoder the
student-cache stage stores the trained encoder's embeddings for the decoder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import distributed as dist
from torch import nn

from checkpoints.manifest import sha256_of
from common.atomic import write_atomic
from inference.build import build_model
from inference.modeling.lite_medsam import LiteMedSAM
from training.cache import TeacherCache, build_cache, build_student_embeddings, open_student_embeddings
from training.data import SliceDataset, discover_slices
from training.init import BlockMap, changed_stages, initialise_student
from training.loop import CHECKPOINT, STUDENT, TrainConfig, save_atomic, train, world
from training.stages import DecoderTask, EncoderTask, LocalStageTask

# float16 weights are kept only if at most this share of mask pixels changes.
FP16_MIN_AGREEMENT = 0.9995


@dataclass(frozen=True)
class DistillConfig:
    """What to distil and how long each stage trains: the one place of these defaults (the CLI's too)."""

    student: str = "swiftmedsam-v2"
    views: int = 1
    views_2d: int | None = None
    max_items: int | None = None
    cache_batch: int = 2
    local: TrainConfig = field(default_factory=lambda: TrainConfig(steps=60, batch_size=2, lr=2e-5))
    encoder: TrainConfig = field(default_factory=lambda: TrainConfig(steps=40, batch_size=2, lr=1e-5))
    decoder: TrainConfig = field(default_factory=lambda: TrainConfig(steps=120, batch_size=1, lr=3e-5))
    boxes_per_image: int = 8
    object_rate: float = 0.5
    gt_weight: float = 0.0
    decoder_input: str = "student"  # whose embeddings the student decoder learns from: "student" or "teacher"
    init: str | None = None
    export_items: int = 4
    calibration_items: int = 32
    block_map: BlockMap = field(default_factory=dict)


@dataclass
class Run:
    """What the stages of one distillation share; stages fill in `cache`, `previous` and `embeddings_at`."""

    folder: Path
    cfg: DistillConfig
    teacher: LiteMedSAM
    student: LiteMedSAM
    dataset: SliceDataset
    items: list[int]
    summary: dict
    resume: bool
    only: list[str] | None
    progress: bool
    rank: int
    world_size: int
    cache: TeacherCache | None = None
    previous: Path | None = None  # weights of the last finished stage
    embeddings_at: tuple[Path, str] | None = None  # student-cache folder and the encoder weights' sha256

    def wanted(self, name: str) -> bool:
        """Whether stage `name` is to run (`only` names it, or there is no `only`)."""
        return self.only is None or name in self.only


Stage = Callable[[Run, str], None]


def select_items(total: int, limit: int | None) -> list[int]:
    """Evenly spaced dataset items (every source represented), or all of them."""
    if limit is None or limit >= total:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, limit).round()})


def output_name(student: str) -> str:
    """File name of the exported state dict: `swiftmedsam_v2.pth` for swiftmedsam-v2."""
    return student.replace("-", "_") + ".pth"


def export_state(student: LiteMedSAM, cache: TeacherCache, path: Path, items: int = 4) -> dict:
    """Write the student's state dict, in float16 if masks of cached items stay identical, else float32."""
    state = student.state_dict()
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    rounded = build_model(student.config.name)
    rounded.load_state_dict(half)
    rows = list(range(min(items, len(cache))))
    images = cache.get("image", rows)
    boxes = torch.tensor([[32.0, 32.0, 224.0, 224.0], [64.0, 96.0, 160.0, 200.0]])
    with torch.no_grad():
        full, low = (
            m.decode(m.image_encoder(images).repeat_interleave(len(boxes), 0), boxes.repeat(len(rows), 1))[0]
            for m in (student.eval(), rounded)
        )
    agreement = float(((full > 0) == (low > 0)).float().mean())
    worst = float((full - low).abs().max())
    lossless = agreement >= FP16_MIN_AGREEMENT
    chosen = half if lossless else state
    save_atomic(chosen, path)
    return {"dtype": "float16" if lossless else "float32", "mask_agreement_fp16": agreement,
            "max_abs_logit_change_fp16": worst, "bytes": path.stat().st_size}


def _build_on_rank0(run: Run, name: str, seconds_key: str, build: Callable[[], object]) -> None:
    """Rank 0 runs `build` if stage `name` is wanted, timing it in the summary; under torchrun the others wait."""
    if run.wanted(name) and run.rank == 0:
        start = time.perf_counter()
        build()
        run.summary[seconds_key] = round(run.summary.get(seconds_key, 0) + time.perf_counter() - start, 1)
    if run.world_size > 1:
        dist.barrier()


def _train(run: Run, name: str, train_cfg: TrainConfig, make_task: Callable[[], nn.Module]) -> None:
    """Train `make_task()` in the stage's folder unless skipped or finished; finished weights start the next stage."""
    folder = run.folder / name
    done = folder / STUDENT
    if run.wanted(name) and not (run.resume and done.is_file()):
        run.summary.setdefault("stages", {})[name] = train(make_task(), len(run.cache), train_cfg, folder, run.resume)
    if done.is_file():
        run.previous = done


def cache_teacher(run: Run, name: str) -> None:
    """Cache the teacher's activations once (one process writes; under torchrun the others then read)."""
    folder, cfg = run.folder / name, run.cfg
    _build_on_rank0(run, name, "cache_seconds", lambda: build_cache(
        run.teacher, run.dataset, run.items, changed_stages(cfg.student), folder, cfg.cache_batch, run.progress))
    run.cache = TeacherCache(folder)


def train_local_stage(run: Run, name: str) -> None:
    """Train encoder stage N (`stageN`) alone, its batch norm recalibrated first unless it resumes a checkpoint."""
    def task() -> LocalStageTask:
        local = LocalStageTask(run.student, run.cache, int(name.removeprefix("stage")))
        if not (run.resume and (run.folder / name / CHECKPOINT).is_file()):
            local.recalibrate(select_items(len(run.cache), run.cfg.calibration_items))
        return local

    _train(run, name, run.cfg.local, task)


def train_encoder(run: Run, name: str) -> None:
    """Train the whole encoder on the teacher's final embedding."""
    _train(run, name, run.cfg.encoder, lambda: EncoderTask(run.student, run.cache))


def cache_student(run: Run, name: str) -> None:
    """Store the current encoder's embeddings of the cached images, keyed by its weights' sha256."""
    folder = run.folder / name
    source = sha256_of(run.previous) if run.previous is not None else f"init:{run.cfg.init}"
    _build_on_rank0(run, name, "student_cache_seconds", lambda: build_student_embeddings(
        run.student, run.cache, folder, source, run.cfg.cache_batch, run.progress))
    run.embeddings_at = (folder, source)


def train_decoder(run: Run, name: str) -> None:
    """Train the mask decoder on the teacher's masks and IoU (from the student-cache embeddings where there are)."""
    def task() -> DecoderTask:
        embeddings = open_student_embeddings(*run.embeddings_at) if run.embeddings_at else None
        return DecoderTask(run.student, run.teacher, run.cache, boxes_per_image=run.cfg.boxes_per_image,
                           object_rate=run.cfg.object_rate, gt_weight=run.cfg.gt_weight, student_embeddings=embeddings)

    _train(run, name, run.cfg.decoder, task)


def export(run: Run, name: str) -> None:
    """Write the student's weights (rank 0)."""
    if run.wanted(name) and run.rank == 0:
        path = run.folder / output_name(run.cfg.student)
        exported = export_state(run.student.cpu(), run.cache, path, run.cfg.export_items)
        run.summary["export"] = {"path": str(path), **exported}


def stages(student: str, decoder_input: str = "student") -> list[tuple[str, Stage]]:
    """Stages in order: cache, each changed encoder stage, encoder, student-cache (when the decoder learns
    from the student's embeddings), decoder, export."""
    embeddings = [("student-cache", cache_student)] if decoder_input == "student" else []
    local = [(f"stage{i}", train_local_stage) for i in changed_stages(student)]
    return [("cache", cache_teacher), *local, ("encoder", train_encoder), *embeddings, ("decoder", train_decoder),
            ("export", export)]


def stage_names(student: str, decoder_input: str = "student") -> list[str]:
    """Names of `stages`, in order."""
    return [name for name, _ in stages(student, decoder_input)]


def _initial_student(teacher: LiteMedSAM, cfg: DistillConfig) -> tuple[LiteMedSAM, str]:
    """The student from the teacher's blocks (or `cfg.init`'s weights), and the initialisation report."""
    student, report = initialise_student(teacher.state_dict(), cfg.student, cfg.block_map)
    if cfg.init is not None:
        # load_state_dict casts a float16 checkpoint into the float32 parameters.
        student.load_state_dict(torch.load(cfg.init, map_location="cpu", weights_only=True))
    return student, report.summary()


def _open_run(data: list[Path], folder: Path, teacher_checkpoint: Path, cfg: DistillConfig, resume: bool,
              only: list[str] | None, progress: bool, device: torch.device) -> Run:
    """Teacher and student on `device`, the data and the summary (an interrupted run's, with `resume`)."""
    folder.mkdir(parents=True, exist_ok=True)
    rank, world_size = world()
    teacher = build_model("litemedsam", teacher_checkpoint).to(device)
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if resume and summary_path.is_file() else {}
    summary.update({"student": cfg.student, "data": [str(d) for d in data], "config": asdict(cfg)})
    refs = [ref for source in data for ref in discover_slices(source)]
    dataset = SliceDataset(refs, views=cfg.views, views_2d=cfg.views_2d)
    items = select_items(len(dataset), cfg.max_items)
    summary["slices"], summary["cache_items"] = len(refs), len(items)
    student, report = _initial_student(teacher, cfg)
    if rank == 0:
        write_atomic(folder / "init_report.txt", report + "\n")
    return Run(folder, cfg, teacher, student.to(device), dataset, items, summary, resume, only, progress, rank,
               world_size)


def run_distillation(
    data: list[Path],
    run_dir: Path,
    teacher_checkpoint: Path,
    cfg: DistillConfig,
    resume: bool = False,
    only: list[str] | None = None,
    progress: bool = True,
    device: torch.device = torch.device("cpu"),
) -> dict:
    """Run (or resume) every stage, or only the named ones, with teacher and student on `device`; return the summary."""
    if cfg.decoder_input not in ("student", "teacher"):
        raise ValueError(f"decoder_input must be 'student' or 'teacher', got {cfg.decoder_input!r}")
    run = _open_run(data, Path(run_dir), teacher_checkpoint, cfg, resume, only, progress, device)
    for name, stage in stages(cfg.student, cfg.decoder_input):
        if run.previous is not None:
            run.student.load_state_dict(torch.load(run.previous, map_location="cpu", weights_only=True))
        stage(run, name)
    if run.rank == 0:
        write_atomic(run.folder / "summary.json", json.dumps(run.summary, indent=1))
    return run.summary
