"""Peak memory on real-size cases, each a fresh process on one thread: `python -m benchmarks.memory`.

Two cases are built from real images (the demo's pinned wheels, see demo/):

- 3D: the whole MNI152 T1 brain template, resampled to a CT-sized 300 x 512 x 512
  volume, with six boxes around real structures (the brain, each hemisphere, the
  white matter, the posterior fossa, the cerebrum above the ventricles). Their
  middle slices are far apart, so the downward sweep needs more slice embeddings
  than the cache budget (inference.volume.CACHE_BYTES) holds;
- 2D: the 2018 Data Science Bowl nuclei image tiled 2 x 2 and scaled up to
  2048 x 2048, with 300 of its real nuclei boxes.

For each: `python -m inference -i DIR -o OUT --threads 1 --no-progress` (OpenVINO f32),
its peak RSS (the child's max RSS), seconds and encoder calls (from --profile).
On a shared machine only the peak RSS is comparable between runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from casefiles import is_3d
from demo.build import boxes_from_labels, write_input
from demo.sources import TISSUE_THRESHOLD, mask_bounds, ras_to_dhw, read_nifti, nuclei_2d, window_mr_uint8
from demo.wheels import NILEARN, STARDIST, default_cache_dir, fetch_wheel
from evaluation.runtime.harness import run_local
from inference.volume import CACHE_BYTES, sweep_slices

VOLUME_SHAPE = (300, 512, 512)
QUICK_DEPTH = 60
NUCLEI_TILES, NUCLEI_SCALE, NUCLEI_BOXES = 2, 2, 300
TARGET_PEAK_MB = 1024.0
# LiteMedSAM's image embedding: 256 x 64 x 64 float32.
EMBEDDING_BYTES = 256 * 64 * 64 * 4
# Margin (voxels) of background kept around the brain.
MARGIN = 8


@dataclass(frozen=True)
class LargeCase:
    """A challenge input case: uint8 image, boxes in the challenge layout, optional spacing."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    spacing: tuple[float, float, float] | None = None

    def write(self, folder: Path) -> Path:
        """Write the case as `folder/name` (imgs, boxes[, spacing])."""
        return write_input(folder, self.name, self.image, self.boxes, self.spacing)


def brain_structures(nilearn_wheel: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """The MNI152 T1 template and six structure masks, all (D, H, W).

    The brain, each hemisphere (cut at the midline, x = 0), the white matter, the
    posterior fossa (the cerebellum: behind y = -40 and below z = -25 MNI mm) and
    the cerebrum above the lateral ventricles (z > 40 mm).
    """
    t1, affine = read_nifti(nilearn_wheel, "t1")
    grey = read_nifti(nilearn_wheel, "gm")[0] > TISSUE_THRESHOLD
    white = read_nifti(nilearn_wheel, "wm")[0] > TISSUE_THRESHOLD
    x, y, z = (affine[axis, axis] * np.arange(n) + affine[axis, 3] for axis, n in enumerate(t1.shape))
    x, y, z = x[:, None, None], y[None, :, None], z[None, None, :]
    tissue = grey | white
    masks = [tissue, tissue & (x < 0), tissue & (x >= 0), white, tissue & (y < -40) & (z < -25), tissue & (z > 40)]
    return ras_to_dhw(t1), [ras_to_dhw(mask) for mask in masks]


def brain_volume_case(nilearn_wheel: Path, depth: int, name: str = "3DBox_MR_9001.npz") -> LargeCase:
    """The T1 brain, cropped around the brain and resampled to (depth, 512, 512), with its six structure boxes."""
    t1, masks = brain_structures(nilearn_wheel)
    low, high = mask_bounds(t1 > 0, MARGIN)
    crop = np.s_[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
    image = window_mr_uint8(t1[crop])
    boxes = np.concatenate([boxes_from_labels(mask[crop].astype(np.uint16)) for mask in masks])
    side = VOLUME_SHAPE[1]
    plane_scale = side / max(image.shape[1:])
    # Keep the in-plane aspect: scale the longer side to 512 and centre it on a zero background.
    offsets = [(side - round(n * plane_scale)) // 2 for n in image.shape[1:]]
    scales = (depth / image.shape[0], plane_scale, plane_scale)
    volume = resample(image, depth, plane_scale, offsets)
    spacing = tuple(1.0 / s for s in scales)
    return LargeCase(name, volume, scale_boxes(boxes, scales, (0, *offsets), volume.shape), spacing)


def resample(image: np.ndarray, depth: int, plane_scale: float, offsets: list[int]) -> np.ndarray:
    """Linear resampling of a (D, H, W) uint8 volume to `depth` slices and square 512-pixel slices."""
    _, height, width = image.shape
    deep = np.stack([cv2.resize(image[:, row, :], (width, depth), interpolation=cv2.INTER_LINEAR)
                     for row in range(height)], axis=1)
    h, w = round(height * plane_scale), round(width * plane_scale)
    side = VOLUME_SHAPE[1]
    volume = np.zeros((depth, side, side), dtype=np.uint8)
    for z, plane in enumerate(deep):
        volume[z, offsets[0] : offsets[0] + h, offsets[1] : offsets[1] + w] = cv2.resize(
            plane, (w, h), interpolation=cv2.INTER_LINEAR)
    return volume


def scale_boxes(
    boxes: np.ndarray, scales: tuple[float, ...], offsets: tuple[int, ...], shape: tuple[int, ...]
) -> np.ndarray:
    """Inclusive (N, 2k) boxes (x first; `scales`, `offsets`, `shape` array order) covering the scaled pixels."""
    k = len(shape)
    scale = np.array(scales[::-1])
    offset = np.array(offsets[::-1])
    low = np.floor(boxes[:, :k] * scale).astype(np.int64) + offset
    high = np.ceil((boxes[:, k:] + 1) * scale).astype(np.int64) - 1 + offset
    return np.concatenate([low, np.minimum(high, np.array(shape[::-1]) - 1)], axis=1)


def nuclei_case(stardist_wheel: Path, name: str = "2DBox_Microscope_9002.npz") -> LargeCase:
    """The nuclei image tiled and scaled up, with `NUCLEI_BOXES` of its real nuclei boxes spread over the tiles."""
    demo = nuclei_2d(stardist_wheel, name)
    height, width = demo.labels.shape
    tiled = np.tile(demo.image, (NUCLEI_TILES, NUCLEI_TILES, 1))
    image = cv2.resize(tiled, None, fx=NUCLEI_SCALE, fy=NUCLEI_SCALE, interpolation=cv2.INTER_LINEAR)
    one_tile = boxes_from_labels(demo.labels)
    boxes = np.concatenate([one_tile + [col * width, row * height] * 2
                            for row in range(NUCLEI_TILES) for col in range(NUCLEI_TILES)])
    keep = np.linspace(0, len(boxes) - 1, NUCLEI_BOXES).round().astype(int)
    scales = (NUCLEI_SCALE, NUCLEI_SCALE)
    return LargeCase(name, image, scale_boxes(boxes[keep], scales, (0, 0), image.shape[:2]))


def build_cases(depth: int, cache_dir: Path | None = None) -> list[LargeCase]:
    """The 3D case with `depth` slices and the 2D case, from the demo's pinned wheels."""
    cache_dir = cache_dir or default_cache_dir()
    return [brain_volume_case(fetch_wheel(NILEARN, cache_dir), depth), nuclei_case(fetch_wheel(STARDIST, cache_dir))]


def measure(case: LargeCase, folder: Path, python: str) -> dict:
    """Run the default path on one case in a fresh process; its peak RSS, seconds and encoder work."""
    path = case.write(folder / "inputs")
    profile = folder / "profiles" / f"{path.stem}.json"
    run = run_local(path, f"{python} -m inference -i {{inputs}} -o {{outputs}} --threads 1 --no-progress "
                          f"--profile {profile}")
    if not run.timing.ok:
        raise RuntimeError(f"{case.name}: the run failed ({run.message})")
    [record] = json.loads(profile.read_text())["cases"]
    if is_3d(case.name):
        upward, downward = sweep_slices(case.boxes, len(case.image))
        visited, kept = int((upward | downward).sum()), int((upward & downward).sum())
    else:
        visited, kept = 1, 0
    encoded = record["encoder"]["calls"]
    return {
        "case": case.name, "shape": list(case.image.shape), "boxes": len(case.boxes),
        "peak_mb": run.timing.peak_mb, "seconds": run.timing.seconds,
        "encoder_calls": encoded, "slices": visited, "reencoded": encoded - visited,
        "kept_between_sweeps": kept,
        "decoder_calls": record["decoder"]["calls"],
    }


def report(rows: list[dict]) -> str:
    """Markdown table of the runs and the peak-RSS target."""
    budget = CACHE_BYTES / 2**20
    lines = [f"Slice-embedding cache budget: {budget:.0f} MiB ({CACHE_BYTES // EMBEDDING_BYTES} embeddings)", "",
             "| case | shape | boxes | peak RSS MB | seconds | encoder calls | re-encoded | "
             "embeddings kept between sweeps, unbounded (MiB) | decoder calls |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        kept_mib = r["kept_between_sweeps"] * EMBEDDING_BYTES / 2**20
        lines.append(f"| {r['case']} | {'x'.join(map(str, r['shape']))} | {r['boxes']} | {r['peak_mb']:.0f} | "
                     f"{r['seconds']:.1f} | {r['encoder_calls']} | {r['reencoded']} | "
                     f"{r['kept_between_sweeps']} ({kept_mib:.0f}) | {r['decoder_calls']} |")
    peak = max(r["peak_mb"] for r in rows)
    met = "yes" if peak <= TARGET_PEAK_MB else "no"
    lines += ["", f"Peak RSS <= {TARGET_PEAK_MB:.0f} MB: max {peak:.0f} MB, met: {met}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Build the cases, run each, print the table and save it (with JSON) under --out."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/memory"))
    parser.add_argument("--quick", action="store_true",
                        help=f"a {QUICK_DEPTH}-slice volume instead of {VOLUME_SHAPE[0]} (a smoke test)")
    args = parser.parse_args(argv)
    depth = QUICK_DEPTH if args.quick else VOLUME_SHAPE[0]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out) as scratch:
        rows = [measure(case, Path(scratch) / case.name.removesuffix(".npz"), sys.executable)
                for case in build_cases(depth)]
    text = report(rows)
    (args.out / "memory.md").write_text(text)
    (args.out / "memory.json").write_text(json.dumps(
        {"cache_bytes": CACHE_BYTES, "target_peak_mb": TARGET_PEAK_MB, "cases": rows}, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
