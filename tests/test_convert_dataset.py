"""A folder of real scans (files and a DICOM series) to imgs/, gts/ and sources.csv; a bad file is named and skipped."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from casefiles import discover_cases
from convert.__main__ import main
from tests.convert_data import XY_FLIPPED, mni_volume, write_dicom_series


def test_a_folder_is_converted_and_a_bad_file_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    upper, lower = mni_volume(z_range=slice(30, 40)), mni_volume(z_range=slice(15, 25))
    sitk.WriteImage(upper.image, str(images / "brain_upper_0000.nii.gz"))  # nnU-Net names: case_0000 and case
    sitk.WriteImage(upper.labels, str(labels / "brain_upper.nii.gz"))
    sitk.WriteImage(lower.image, str(images / "brain_lower.nrrd"))
    sitk.WriteImage(lower.labels, str(labels / "brain_lower.nrrd"))
    series = mni_volume(XY_FLIPPED, z_range=slice(20, 26))
    write_dicom_series(series.image, images / "patient7", "1.2.826.0.1.3680043.8.498.7")
    sitk.WriteImage(series.labels, str(labels / "patient7.nii.gz"))
    (images / "broken.mha").write_text("ObjectType = Image\nNDims = 3\n")
    sitk.WriteImage(lower.labels, str(labels / "broken.mha"))

    status = main(["dataset", "--images", str(images), "--labels", str(labels), "--modality", "MR",
                   "--out", str(tmp_path / "out"), "--no-progress"])
    assert status == 1
    failures = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(failures) == 1 and "broken.mha" in failures[0] and "cannot read as MetaImage" in failures[0]

    names = ["3DBox_MR_brain-lower", "3DBox_MR_brain-upper-0000", "3DBox_MR_patient7"]
    assert [p.stem for p in discover_cases(tmp_path / "out/imgs")] == names
    assert [p.stem for p in discover_cases(tmp_path / "out/gts")] == names
    with open(tmp_path / "out/sources.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["case"] for row in rows] == names
    assert rows[2] == {"case": "3DBox_MR_patient7", "source": str(images / "patient7"), "shape": "6x117x197",
                       "spacing": "3.0 2.0 1.0", "objects": "2"}
    gts = np.load(tmp_path / "out/gts/3DBox_MR_brain-upper-0000.npz")["gts"]
    assert np.array_equal(gts > 0, sitk.GetArrayFromImage(upper.labels) > 0)
