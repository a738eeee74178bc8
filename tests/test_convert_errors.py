"""Bad input: one clear error naming the file and the problem, and nothing written."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from convert.__main__ import main
from tests.convert_data import mni_volume


def scan_and_labels(folder: Path, labels: sitk.Image | None = None) -> tuple[Path, Path]:
    """The real volume and (by default) its labels, as NIfTI files of `folder`."""
    volume = mni_volume(z_range=slice(20, 30))
    sitk.WriteImage(volume.image, str(folder / "scan.nii.gz"))
    sitk.WriteImage(volume.labels if labels is None else labels, str(folder / "labels.nii.gz"))
    return folder / "scan.nii.gz", folder / "labels.nii.gz"


def unreadable(folder: Path) -> tuple[list[str], str, str]:
    (folder / "broken.nii.gz").write_bytes(b"\x1f\x8b not really a NIfTI file")
    return [str(folder / "broken.nii.gz"), "--boxes", str(folder / "none.json")], "broken.nii.gz", "cannot read as NIfTI"


def unsupported(folder: Path) -> tuple[list[str], str, str]:
    (folder / "scan.xyz").write_text("hello")
    return [str(folder / "scan.xyz"), "--boxes", str(folder / "none.json")], "scan.xyz", "unsupported file type"


def other_grid(folder: Path) -> tuple[list[str], str, str]:
    labels = mni_volume(z_range=slice(20, 30)).labels
    labels.SetOrigin((0.0, 0.0, 0.0))
    scan, path = scan_and_labels(folder, labels)
    return [str(scan), "--labels", str(path)], "labels.nii.gz", r"grid \(size .*origin \(0, 0, 0\).*differs .*origin \(12.5"


def empty_labels(folder: Path) -> tuple[list[str], str, str]:
    labels = mni_volume(z_range=slice(20, 30)).labels * 0
    scan, path = scan_and_labels(folder, labels)
    return [str(scan), "--labels", str(path)], "labels.nii.gz", "empty"


def fractional_labels(folder: Path) -> tuple[list[str], str, str]:
    labels = sitk.Cast(mni_volume(z_range=slice(20, 30)).labels, sitk.sitkFloat32) * 0.5
    scan, path = scan_and_labels(folder, labels)
    return [str(scan), "--labels", str(path)], "labels.nii.gz", "non-integer"


def box_outside(folder: Path) -> tuple[list[str], str, str]:
    scan, _ = scan_and_labels(folder)
    (folder / "boxes.json").write_text(json.dumps({"coordinates": "voxel", "boxes": [[0, 0, 0, 50, 50, 10]]}))
    return [str(scan), "--boxes", str(folder / "boxes.json")], "boxes.json", "box 1 .* outside the image"


def four_d(folder: Path) -> tuple[list[str], str, str]:
    volume = mni_volume(z_range=slice(20, 30)).image
    sitk.WriteImage(sitk.JoinSeries([volume, volume]), str(folder / "fmri.nii.gz"))
    return [str(folder / "fmri.nii.gz"), "--boxes", str(folder / "none.json")], "fmri.nii.gz", "4D image"


def no_modality(folder: Path) -> tuple[list[str], str, str]:
    scan, labels = scan_and_labels(folder)
    return [str(scan), "--labels", str(labels)], "scan.nii.gz", "no modality"


BAD_INPUTS: dict[str, Callable[[Path], tuple[list[str], str, str]]] = {
    "unreadable": unreadable, "unsupported": unsupported, "other grid": other_grid, "empty labels": empty_labels,
    "fractional labels": fractional_labels, "box outside": box_outside, "4D": four_d, "no modality": no_modality,
}


@pytest.mark.parametrize("make", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_one_error_naming_the_file_and_nothing_is_written(
    make: Callable[[Path], tuple[list[str], str, str]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args, file_name, problem = make(tmp_path)
    modality = [] if make is no_modality else ["--modality", "MR"]
    assert main(["to-npz", *args, *modality, "--out", str(tmp_path / "out")]) == 1
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1
    assert file_name in errors[0]
    assert re.search(problem, errors[0]), errors[0]
    assert not (tmp_path / "out").exists()


def test_a_mask_of_another_case_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scan, labels = scan_and_labels(tmp_path)
    main(["to-npz", str(scan), "--labels", str(labels), "--modality", "MR", "--name", "3DBox_MR_1", "--out",
          str(tmp_path / "case")])
    np.savez_compressed(tmp_path / "segs.npz", segs=np.zeros((5, 5, 5), dtype=np.uint16))
    out = tmp_path / "mask.nii.gz"
    args = ["from-npz", str(tmp_path / "segs.npz"), "--like", str(scan), "--sidecar",
            str(tmp_path / "case/3DBox_MR_1.json"), "--out", str(out)]
    assert main(args) == 1
    assert "segs.npz: segs has shape (5, 5, 5), the case has (10, 117, 197)" in caplog.text
    other = mni_volume(z_range=slice(0, 10)).image
    other.SetOrigin((0.0, 0.0, 0.0))
    sitk.WriteImage(other, str(tmp_path / "other.nii.gz"))
    assert main([*args[:3], str(tmp_path / "other.nii.gz"), *args[4:]]) == 1
    assert "other.nii.gz: not the source of this case" in caplog.text
    assert main([*args[:-1], str(tmp_path / "mask.mhd")]) == 1
    assert "mask.mhd: cannot write this format" in caplog.text
    assert not out.exists() and not (tmp_path / "mask.mhd").exists()
