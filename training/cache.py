"""Teacher activations computed once and kept on disk (float16 memory maps) for every training stage.

Per item: the pre-processed image, the output of every encoder stage that a
changed student stage reads or imitates, the final 256x64x64 embedding, and the
sample's model-space labels and boxes. Stage i's input is stage i-1's output;
stage 0's input is the image (the patch embedding before it is shared and frozen).
Writing resumes at the first item not yet recorded in `progress.json`.
The student's own embeddings of the same images are cached the same way, once its
encoder is trained, for the decoder stage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from tqdm import tqdm

from common.atomic import write_atomic
from inference.modeling.lite_medsam import LiteMedSAM
from training.data import INPUT_SIZE, MAX_BOXES, SliceDataset


def needed_layers(stages: Sequence[int]) -> list[int]:
    """Encoder layer outputs to keep: each changed stage's output and its input."""
    return sorted({i for s in stages for i in (s - 1, s) if i >= 0})


class TeacherCache:
    """Read-only view of a finished cache."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())
        if _done(self.folder) < self.meta["items"]:
            raise RuntimeError(f"{folder}: cache is incomplete; run the cache stage again with --resume")
        self.arrays = {name: np.load(self.folder / f"{name}.npy", mmap_mode="r") for name in self.meta["arrays"]}

    def __len__(self) -> int:
        return int(self.meta["items"])

    def get(self, name: str, indices: Sequence[int]) -> torch.Tensor:
        """Rows of one array as a float32 (or integer) tensor."""
        return read_rows(self.arrays[name], indices)


def read_rows(array: np.ndarray, indices: Sequence[int]) -> torch.Tensor:
    """Rows of a cached (memory-mapped) array: float16 as a float32 tensor, integers as int64."""
    rows = np.stack([array[i] for i in indices])
    return torch.from_numpy(rows.astype(np.float32) if rows.dtype == np.float16 else rows.astype(np.int64))


def _done(folder: Path) -> int:
    path = folder / "progress.json"
    return json.loads(path.read_text())["done"] if path.is_file() else 0


def _shapes(model: LiteMedSAM, layers: list[int]) -> dict[str, tuple[tuple[int, ...], str]]:
    probe = _activations(model, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), layers)
    shapes = {"image": ((3, INPUT_SIZE, INPUT_SIZE), "float16")}
    shapes.update({name: (tuple(t.shape[1:]), "float16") for name, t in probe.items()})
    shapes.update({
        "labels": ((INPUT_SIZE, INPUT_SIZE), "uint16"),
        "boxes": ((MAX_BOXES, 4), "float16"),
        "box_labels": ((MAX_BOXES,), "int32"),
        "n_boxes": ((), "int32"),
    })
    return shapes


@torch.no_grad()
def _activations(model: LiteMedSAM, images: torch.Tensor, layers: list[int]) -> dict[str, torch.Tensor]:
    """The teacher's embedding and `layers` outputs for `images`, computed on its device and returned on the CPU."""
    images = images.to(next(model.parameters()).device)
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        model.image_encoder.layers[i].register_forward_hook(
            lambda _m, _inp, out, i=i: captured.__setitem__(f"layer{i}", out)
        )
        for i in layers
    ]
    try:
        captured["embedding"] = model.image_encoder(images)
    finally:
        for hook in hooks:
            hook.remove()
    return {name: tensor.cpu() for name, tensor in captured.items()}


def build_cache(
    teacher: LiteMedSAM,
    dataset: SliceDataset,
    items: Sequence[int],
    stages: Sequence[int],
    folder: Path,
    batch_size: int = 2,
    progress: bool = True,
) -> TeacherCache:
    """Run the teacher over `dataset[items]` and store what training needs; resumes a partial cache."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layers = needed_layers(stages)
    shapes = _shapes(teacher, layers)
    meta = {"items": len(items), "dataset_items": [int(i) for i in items], "stages": list(stages),
            "arrays": sorted(shapes)}
    meta_path = folder / "meta.json"
    start = _done(folder)
    if meta_path.is_file() and json.loads(meta_path.read_text()) != meta:
        raise RuntimeError(f"{folder} holds a cache of other items or stages; use another folder")
    if start == 0:
        arrays = {n: open_memmap(folder / f"{n}.npy", "w+", np.dtype(d), (len(items), *s)) for n, (s, d) in shapes.items()}
        write_atomic(meta_path, json.dumps(meta))
    else:
        arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r+") for n in shapes}
    bar = tqdm(total=len(items), initial=start, desc="teacher cache", unit="img", disable=not progress)
    for begin in range(start, len(items), batch_size):
        rows = list(range(begin, min(begin + batch_size, len(items))))
        samples = [dataset[items[r]] for r in rows]
        acts = _activations(teacher, torch.stack([s["image"] for s in samples]), layers)
        for j, (row, sample) in enumerate(zip(rows, samples)):
            arrays["image"][row] = sample["image"].numpy()
            for name, tensor in acts.items():
                arrays[name][row] = tensor[j].numpy()
            count = min(len(sample["boxes"]), MAX_BOXES)
            arrays["labels"][row] = sample["labels"].numpy()
            arrays["boxes"][row] = 0
            arrays["boxes"][row, :count] = sample["boxes"][:count].numpy()
            arrays["box_labels"][row] = 0
            arrays["box_labels"][row, :count] = sample["box_labels"][:count].numpy()
            arrays["n_boxes"][row] = count
        for array in arrays.values():
            array.flush()
        _write_progress(folder, rows[-1] + 1)
        bar.update(len(rows))
    bar.close()
    return TeacherCache(folder)


def _write_progress(folder: Path, done: int) -> None:
    write_atomic(folder / "progress.json", json.dumps({"done": done}))


@torch.no_grad()
def build_student_embeddings(
    student: LiteMedSAM, cache: TeacherCache, folder: Path, source: str, batch_size: int = 2, progress: bool = True
) -> np.ndarray:
    """The student encoder's embedding of every cached image (float16), for its decoder to learn from.

    The decoder then meets the embeddings it will get at inference, errors and all,
    while its targets stay the teacher's masks. `source` names the encoder weights
    (their sha256): a cache made with other weights is rebuilt; a partial one resumes.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"items": len(cache), "source": source}
    meta_path = folder / "meta.json"
    if not meta_path.is_file() or json.loads(meta_path.read_text()) != meta:
        _write_progress(folder, 0)
        shape = (len(cache), *cache.arrays["embedding"].shape[1:])
        open_memmap(folder / "embedding.npy", "w+", np.float16, shape).flush()
        write_atomic(meta_path, json.dumps(meta))
    start = _done(folder)
    array = np.load(folder / "embedding.npy", mmap_mode="r+")
    encoder = student.image_encoder.eval()
    device = next(student.parameters()).device
    bar = tqdm(total=len(cache), initial=start, desc="student embeddings", unit="img", disable=not progress)
    for begin in range(start, len(cache), batch_size):
        rows = list(range(begin, min(begin + batch_size, len(cache))))
        array[rows] = encoder(cache.get("image", rows).to(device)).cpu().numpy().astype(np.float16)
        array.flush()
        _write_progress(folder, rows[-1] + 1)
        bar.update(len(rows))
    bar.close()
    return open_student_embeddings(folder, source)


def open_student_embeddings(folder: Path, source: str) -> np.ndarray:
    """A finished student-embedding cache made with the encoder weights `source`, memory-mapped."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise RuntimeError(f"{folder}: no student embeddings; run the student-cache stage first")
    meta = json.loads(meta_path.read_text())
    if meta["source"] != source:
        raise RuntimeError(f"{folder}: embeddings of other encoder weights; run the student-cache stage again")
    if _done(folder) < meta["items"]:
        raise RuntimeError(f"{folder}: student embeddings are incomplete; run the student-cache stage again")
    return np.load(folder / "embedding.npy", mmap_mode="r")
