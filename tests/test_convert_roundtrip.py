"""Every format in, npz cases out and masks back: the source's geometry exactly and its labels voxel for voxel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from convert.__main__ import main
from convert.geometry import Geometry
from tests.convert_data import (
    LEFT_LABEL,
    RIGHT_LABEL,
    XY_FLIPPED,
    Volume,
    histology_rgb,
    mni_volume,
    nuclei_2d,
    write_dicom,
    write_dicom_series,
)

SERIES_UID = "1.2.826.0.1.3680043.8.498.101"
SHORT_SERIES_UID = "1.2.826.0.1.3680043.8.498.102"
FORMATS = ["nii.gz", "nii", "nrrd", "nhdr", "mha", "mhd", "dicom"]
# What the mask goes back as, for each source format.
OUTPUTS = {"nii.gz": "nii.gz", "nii": "nrrd", "nrrd": "nrrd", "nhdr": "mha", "mha": "mha", "mhd": "nii.gz",
           "dicom": "nrrd"}


@pytest.fixture(scope="module")
def volumes() -> dict[str, Volume]:
    """The real MR volume: on the x-flipped grid (files) and on the x- and y-flipped grid (DICOM)."""
    return {"files": mni_volume(), "dicom": mni_volume(XY_FLIPPED)}


@pytest.fixture(scope="module")
def sources(volumes: dict[str, Volume], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Format -> (scan, label image): the volume in each format, and a folder holding two DICOM series."""
    folder = tmp_path_factory.mktemp("sources")
    written = {}
    for ending in FORMATS[:-1]:
        stem = ending.replace(".", "-")  # .nhdr and .mhd name a data file after the header: keep them apart
        sitk.WriteImage(volumes["files"].image, str(folder / f"mr-{stem}.{ending}"))
        written[ending] = folder / f"mr-{stem}.{ending}"
    labels = folder / "labels.nii.gz"
    sitk.WriteImage(volumes["files"].labels, str(labels))
    written = {ending: (path, labels) for ending, path in written.items()}
    series = folder / "series"
    write_dicom_series(volumes["dicom"].image, series, SERIES_UID)
    write_dicom_series(volumes["dicom"].image[:, :, :10], series, SHORT_SERIES_UID)
    sitk.WriteImage(volumes["dicom"].labels, str(folder / "series-labels.nrrd"))
    written["dicom"] = (series, folder / "series-labels.nrrd")
    return written


def write_image(image: sitk.Image, path: Path) -> None:
    sitk.WriteImage(image, str(path))


def read(path: Path) -> np.lib.npyio.NpzFile:
    return np.load(path, allow_pickle=False)


@pytest.mark.parametrize("ending", FORMATS)
def test_a_real_volume_goes_to_npz_and_back_with_its_exact_geometry(
    ending: str, sources: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    scan, labels = sources[ending]
    modality = [] if ending == "dicom" else ["--modality", "MR"]  # DICOM: from the Modality tag
    assert main(["to-npz", str(scan), "--labels", str(labels), *modality, "--name", "3DBox_MR_0001",
                 "--out", str(tmp_path / "case")]) == 0
    imgs, gts = read(tmp_path / "case/imgs/3DBox_MR_0001.npz"), read(tmp_path / "case/gts/3DBox_MR_0001.npz")
    assert sorted(imgs.files) == ["boxes", "imgs", "spacing"] and sorted(gts.files) == ["gts", "spacing"]
    source = sitk.ReadImage(str(scan)) if ending != "dicom" else read_series(scan, SERIES_UID)
    label_array = sitk.GetArrayFromImage(sitk.ReadImage(str(labels)))
    # Native array order and the spacing in that order: (z, y, x) = (3, 2, 1) mm.
    assert imgs["imgs"].shape == source.GetSize()[::-1] == (63, 117, 197) and imgs["imgs"].dtype == np.uint8
    assert imgs["spacing"].tolist() == gts["spacing"].tolist() == [3.0, 2.0, 1.0]
    assert np.array_equal(gts["gts"] == 1, label_array == LEFT_LABEL)
    assert np.array_equal(gts["gts"] == 2, label_array == RIGHT_LABEL)
    boxes = imgs["boxes"]
    for k, box in enumerate(boxes, 1):
        z, y, x = np.nonzero(gts["gts"] == k)
        assert box.tolist() == [x.min(), y.min(), z.min(), x.max(), y.max(), z.max()]

    segs = tmp_path / "3DBox_MR_0001.npz"
    np.savez_compressed(segs, segs=gts["gts"])
    out = tmp_path / f"mask.{OUTPUTS[ending]}"
    assert main(["from-npz", str(segs), "--like", str(scan), "--sidecar", str(tmp_path / "case/3DBox_MR_0001.json"),
                 "--source-labels", "--out", str(out)]) == 0
    mask = sitk.ReadImage(str(out))
    assert Geometry.of(mask) == Geometry.of(source)  # exactly: size, spacing, origin and direction
    assert np.array_equal(sitk.GetArrayFromImage(mask), label_array)


def read_series(folder: Path, uid: str) -> sitk.Image:
    return sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))


def test_the_mr_case_follows_the_percentile_rule(sources: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    scan, labels = sources["nii.gz"]
    main(["to-npz", str(scan), "--labels", str(labels), "--modality", "MR", "--out", str(tmp_path)])
    imgs = read(tmp_path / "imgs/3DBox_MR_mr-nii-gz.npz")["imgs"]
    t1 = sitk.GetArrayFromImage(sitk.ReadImage(str(scan))).astype(np.float64)
    low, high = np.percentile(t1[t1 > 0], [0.5, 99.5])
    expected = np.floor((np.clip(t1, low, high) - low) / (high - low) * 255)
    expected[t1 == 0] = 0
    assert np.array_equal(imgs, expected)


def test_the_series_with_the_most_slices_is_read_unless_one_is_named(
    sources: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    series, _ = sources["dicom"]
    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"coordinates": "voxel", "boxes": [[10, 10, 2, 100, 100, 8]]}')
    assert main(["to-npz", str(series), "--boxes", str(boxes), "--out", str(tmp_path / "a")]) == 0
    assert main(["to-npz", str(series), "--boxes", str(boxes), "--series", SHORT_SERIES_UID, "--out",
                 str(tmp_path / "b")]) == 0
    assert read(tmp_path / "a/imgs/3DBox_MR_series.npz")["imgs"].shape[0] == 63
    assert read(tmp_path / "b/imgs/3DBox_MR_series.npz")["imgs"].shape[0] == 10
    assert main(["to-npz", str(series), "--boxes", str(boxes), "--series", "1.2.3", "--out", str(tmp_path / "c")]) == 1
    assert not (tmp_path / "c").exists()


def test_a_crop_is_undone_on_the_way_back(sources: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    scan, labels = sources["mha"]
    main(["to-npz", str(scan), "--labels", str(labels), "--modality", "MR", "--name", "3DBox_MR_0002",
          "--crop-margin", "2", "--out", str(tmp_path)])
    case = read(tmp_path / "imgs/3DBox_MR_0002.npz")
    gts = read(tmp_path / "gts/3DBox_MR_0002.npz")["gts"]
    # The objects span z 1..51, y 14..103, x 27..169 (x, y: 117 and 197 voxels); 2 more each side, within the image.
    assert case["imgs"].shape == gts.shape == (54, 94, 147)
    assert case["boxes"][:, :3].min(axis=0).tolist() == [2, 2, 1]
    np.savez_compressed(tmp_path / "imgs/segs.npz", segs=gts)
    (tmp_path / "imgs/segs.npz").rename(tmp_path / "imgs/3DBox_MR_0002.npz")  # a prediction in the case's place
    assert main(["from-npz", str(tmp_path / "imgs/3DBox_MR_0002.npz"), "--like", str(scan), "--out",
                 str(tmp_path / "mask.nii.gz")]) == 0  # the sidecar is found in the case folder
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "mask.nii.gz")))
    label_array = sitk.GetArrayFromImage(sitk.ReadImage(str(labels)))
    assert np.array_equal(mask == 1, label_array == LEFT_LABEL) and np.array_equal(mask == 2, label_array == RIGHT_LABEL)


@pytest.mark.parametrize("ending", ["png", "tif", "bmp", "jpg", "dcm"])
def test_a_real_2d_image_goes_to_npz_and_back(ending: str, tmp_path: Path) -> None:
    image, instances = nuclei_2d()
    # BMP and JPEG hold 8 bits: their nuclei are the uint8 image.
    stored = image if ending in ("png", "tif", "dcm") else image.astype(np.uint8)
    picture = sitk.GetImageFromArray(stored)
    if ending == "dcm":
        picture.SetMetaData("0008|0060", "SM")
    (write_dicom if ending == "dcm" else write_image)(picture, tmp_path / f"nuclei.{ending}")
    sitk.WriteImage(sitk.GetImageFromArray(instances), str(tmp_path / "mask.png"))
    modality = [] if ending == "dcm" else ["--modality", "Microscope"]
    assert main(["to-npz", str(tmp_path / f"nuclei.{ending}"), "--labels", str(tmp_path / "mask.png"), *modality,
                 "--out", str(tmp_path / "case")]) == 0
    name = "2DBox_Microscope_nuclei"
    case = read(tmp_path / f"case/imgs/{name}.npz")
    assert sorted(case.files) == ["boxes", "imgs"] and case["imgs"].shape == (512, 512, 3)
    assert case["boxes"].shape == (len(np.unique(instances)) - 1, 4)
    gts = read(tmp_path / f"case/gts/{name}.npz")["gts"]
    np.savez_compressed(tmp_path / "segs.npz", segs=gts)
    main(["from-npz", str(tmp_path / "segs.npz"), "--like", str(tmp_path / f"nuclei.{ending}"), "--sidecar",
          str(tmp_path / f"case/{name}.json"), "--source-labels", "--out", str(tmp_path / "back.nrrd")])
    back = sitk.ReadImage(str(tmp_path / "back.nrrd"))
    assert back.GetSize() == sitk.ReadImage(str(tmp_path / f"nuclei.{ending}")).GetSize()
    assert np.array_equal(sitk.GetArrayFromImage(back).reshape(instances.shape), instances)


def test_rgb_pictures_are_kept(tmp_path: Path) -> None:
    rgb = histology_rgb()
    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"coordinates": "voxel", "boxes": [[10, 20, 200, 220]]}')
    for ending in ("dcm", "png"):
        (write_dicom if ending == "dcm" else write_image)(sitk.GetImageFromArray(rgb, isVector=True),
                                                          tmp_path / f"histo.{ending}")
        assert main(["to-npz", str(tmp_path / f"histo.{ending}"), "--boxes", str(boxes), "--modality", "Microscope",
                     "--out", str(tmp_path)]) == 0
        case = read(tmp_path / "imgs/2DBox_Microscope_histo.npz")
        assert np.array_equal(case["imgs"], rgb) and case["boxes"].tolist() == [[10, 20, 200, 220]]


def test_monochrome1_dicom_is_inverted(tmp_path: Path) -> None:
    image, _ = nuclei_2d()
    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"coordinates": "voxel", "boxes": [[0, 0, 100, 100]]}')
    write_dicom(sitk.GetImageFromArray(image), tmp_path / "m2.dcm")
    dataset = pydicom.dcmread(tmp_path / "m2.dcm")
    dataset.PhotometricInterpretation = "MONOCHROME1"  # the same pixel values, shown inverted
    dataset.save_as(tmp_path / "m1.dcm")
    pictures = {}
    for name in ("m1", "m2"):
        main(["to-npz", str(tmp_path / f"{name}.dcm"), "--boxes", str(boxes), "--modality", "XRay", "--out",
              str(tmp_path)])
        pictures[name] = read(tmp_path / f"imgs/2DBox_XRay_{name}.npz")["imgs"][..., 0].astype(np.float64)
    correlation = np.corrcoef(pictures["m1"].ravel(), pictures["m2"].ravel())[0, 1]
    assert correlation < -0.95


def test_instances_and_seeded_jittered_boxes_from_the_command_line(tmp_path: Path) -> None:
    image, instances = nuclei_2d()
    sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / "nuclei.tif"))
    sitk.WriteImage(sitk.GetImageFromArray((instances > 0).astype(np.uint8) * 4), str(tmp_path / "mask.png"))
    cases = []
    for run in ("a", "b"):
        assert main(["to-npz", str(tmp_path / "nuclei.tif"), "--labels", str(tmp_path / "mask.png"), "--modality",
                     "Microscope", "--objects", "instances", "--min-size", "10", "--box-jitter", "5", "--seed", "3",
                     "--out", str(tmp_path / run)]) == 0
        cases.append(read(tmp_path / f"{run}/imgs/2DBox_Microscope_nuclei.npz")["boxes"])
    assert np.array_equal(cases[0], cases[1])
    gts = read(tmp_path / "a/gts/2DBox_Microscope_nuclei.npz")["gts"]
    sidecar = json.loads((tmp_path / "a/2DBox_Microscope_nuclei.json").read_text())
    assert len(sidecar["objects"]) == gts.max() == len(cases[0]) > 50
    assert {entry["source_label"] for entry in sidecar["objects"]} == {4}
    assert sidecar["boxes"] == {"from": "labels", "objects": "instances", "jitter": 5, "seed": 3}
    grown = []
    for k, box in enumerate(cases[0], 1):
        y, x = np.nonzero(gts == k)
        tight = np.array([x.min(), y.min(), x.max(), y.max()])
        grown.append(np.concatenate([tight[:2] - box[:2], box[2:] - tight[2:]]))
    assert 0 <= np.min(grown) and np.max(grown) == 10  # 0..5 model pixels of a 512-pixel image: 0..10 pixels
    assert np.array_equal(cases[0], [entry["box"] for entry in sidecar["objects"]])
