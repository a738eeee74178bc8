"""`python -m convert segment` on a real MR volume: a mask on the scan's exact grid that overlaps its labels."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from convert.__main__ import inference_options, main, parse_args
from convert.geometry import Geometry
from tests.convert_data import LEFT_LABEL, RIGHT_LABEL, SCANNER_LIKE, X_FLIPPED, XY_FLIPPED, mni_volume

# Measured 0.886 (left) and 0.847 (right) with --model auto (SwiftMedSAM-v2 for MR) on OpenVINO f32, one thread.
DICE_FLOOR = 0.80


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_segment_writes_a_mask_on_the_source_grid_that_overlaps_the_labels(
    exported_litemedsam: list[Path], tmp_path: Path
) -> None:
    # Twelve 3 mm axial slices through the middle of the brain, square 1 mm pixels; few slices keep it cheap.
    volume = mni_volume(X_FLIPPED, SCANNER_LIKE, z_range=slice(24, 36))
    sitk.WriteImage(volume.image, str(tmp_path / "brain.nii.gz"))
    sitk.WriteImage(volume.labels, str(tmp_path / "labels.nii.gz"))
    start = time.perf_counter()
    status = main(["segment", str(tmp_path / "brain.nii.gz"), "--labels", str(tmp_path / "labels.nii.gz"),
                   "--modality", "MR", "--source-labels", "--out", str(tmp_path / "mask.nii.gz"), "--threads", "1"])
    seconds = time.perf_counter() - start
    assert status == 0
    mask = sitk.ReadImage(str(tmp_path / "mask.nii.gz"))
    assert Geometry.of(mask) == Geometry.of(sitk.ReadImage(str(tmp_path / "brain.nii.gz")))
    predicted, labels = sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(volume.labels)
    scores = [dice(predicted == value, labels == value) for value in (LEFT_LABEL, RIGHT_LABEL)]
    assert min(scores) > DICE_FLOOR, (scores, seconds)
    # In physical space: the same labels stored the other way round (rows not reversed, y flipped in the
    # direction, the origin moved to the other end of y) are where the mask is, once resampled onto their grid.
    other = mni_volume(XY_FLIPPED, SCANNER_LIKE, z_range=slice(24, 36)).labels
    origin = np.array(other.GetOrigin())
    origin[1] += (other.GetSize()[1] - 1) * other.GetSpacing()[1]
    other.SetOrigin(origin.tolist())
    on_other = sitk.GetArrayFromImage(sitk.Resample(mask, other, sitk.Transform(), sitk.sitkNearestNeighbor))
    other_labels = sitk.GetArrayFromImage(other)
    assert min(dice(on_other == value, other_labels == value) for value in (LEFT_LABEL, RIGHT_LABEL)) > DICE_FLOOR


def test_segment_passes_the_inference_options_it_was_given_and_no_others() -> None:
    args = parse_args(["segment", "scan.nii.gz", "--labels", "labels.nii.gz", "--out", "mask.nii.gz",
                       "--slice-step", "3", "--threads", "1"])
    assert inference_options(args) == ["--slice-step", "3", "--threads", "1"]
