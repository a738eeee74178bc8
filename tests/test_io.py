"""Inference's side of the case files: reading and validating inputs (cases, admission), label maps (labelmap), writing them (outputs)."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from casefiles import CaseError, discover_cases
from inference import outputs
from inference.admission import WORKING_MEMORY
from inference.cases import Case, load_case
from inference.labelmap import new_label_map, paint
from inference.outputs import write_segmentation

IMAGE_2D = np.arange(20 * 30 * 3, dtype=np.uint32).reshape(20, 30, 3).astype(np.uint8)
IMAGE_3D = np.arange(5 * 20 * 30, dtype=np.uint32).reshape(5, 20, 30).astype(np.uint8)
BOXES_2D = np.array([[1, 2, 10, 12], [0, 0, 29, 19]], dtype=np.int64)
BOXES_3D = np.array([[1, 2, 0, 10, 12, 4], [3, 4, 2, 8, 9, 2]], dtype=np.int64)


def save_case(folder: Path, name: str, **arrays: object) -> Path:
    """Write an npz case file the way the organizers do (np.savez_compressed)."""
    path = folder / name
    np.savez_compressed(path, **arrays)
    return path


def assert_case_error(path: Path, *fragments: str, memory: int | None = None) -> CaseError:
    """Loading ``path`` (with ``memory`` bytes available) fails with a CaseError that starts with the file name."""
    with pytest.raises(CaseError) as caught:
        load_case(path, memory_available=memory)
    message = str(caught.value)
    assert message.startswith(f"{path.name}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


# --- valid cases ------------------------------------------------------------------------


def test_load_2d_case(tmp_path: Path) -> None:
    path = save_case(tmp_path, "2DBox_US_0525.npz", imgs=IMAGE_2D, boxes=BOXES_2D)
    case = load_case(path)
    assert case.name == "2DBox_US_0525.npz"
    assert not case.is_3d
    assert case.spatial_shape == (20, 30)
    assert case.spacing is None
    np.testing.assert_array_equal(case.image, IMAGE_2D)
    assert case.boxes.dtype == np.int64
    np.testing.assert_array_equal(case.boxes, BOXES_2D)


def test_load_3d_case_with_spacing(tmp_path: Path) -> None:
    path = save_case(
        tmp_path, "3DBox_CT_0566.npz", imgs=IMAGE_3D, boxes=BOXES_3D, spacing=[2.5, 0.7, 0.7]
    )
    case = load_case(path)
    assert case.is_3d
    assert case.spatial_shape == (5, 20, 30)
    assert case.spacing == (2.5, 0.7, 0.7)
    assert all(isinstance(value, float) for value in case.spacing)
    np.testing.assert_array_equal(case.boxes, BOXES_3D)


def test_spacing_is_optional_for_3d(tmp_path: Path) -> None:
    path = save_case(tmp_path, "3DBox_MR_0001.npz", imgs=IMAGE_3D, boxes=BOXES_3D)
    assert load_case(path).spacing is None


def test_float_boxes_holding_integers_are_accepted(tmp_path: Path) -> None:
    path = save_case(tmp_path, "2DBox_X_1.npz", imgs=IMAGE_2D, boxes=BOXES_2D.astype(np.float32))
    boxes = load_case(path).boxes
    assert boxes.dtype == np.int64
    np.testing.assert_array_equal(boxes, BOXES_2D)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint32, np.float64])
def test_other_numeric_box_dtypes_become_int64(tmp_path: Path, dtype: type) -> None:
    path = save_case(tmp_path, "3DBox_X_1.npz", imgs=IMAGE_3D, boxes=BOXES_3D.astype(dtype))
    boxes = load_case(path).boxes
    assert boxes.dtype == np.int64
    np.testing.assert_array_equal(boxes, BOXES_3D)


def test_degenerate_boxes_are_accepted(tmp_path: Path) -> None:
    # A 3D box on a single slice (z_min == z_max) and a one-pixel-wide box.
    boxes = np.array([[1, 2, 3, 10, 12, 3], [4, 4, 0, 4, 9, 4]])
    path = save_case(tmp_path, "3DBox_CT_1.npz", imgs=IMAGE_3D, boxes=boxes)
    np.testing.assert_array_equal(load_case(path).boxes, boxes)


@pytest.mark.parametrize(
    ("name", "image", "boxes", "ncols"),
    [
        ("2DBox_X_1.npz", IMAGE_2D, np.zeros((0, 4)), 4),
        ("3DBox_X_1.npz", IMAGE_3D, np.zeros((0, 6), dtype=np.int64), 6),
        ("3DBox_X_1.npz", IMAGE_3D, np.array([]), 6),
    ],
)
def test_zero_boxes_are_accepted(
    tmp_path: Path, name: str, image: np.ndarray, boxes: np.ndarray, ncols: int
) -> None:
    case = load_case(save_case(tmp_path, name, imgs=image, boxes=boxes))
    assert case.boxes.shape == (0, ncols)
    assert case.boxes.dtype == np.int64


def test_boxes_on_the_last_pixel_are_kept(tmp_path: Path) -> None:
    boxes = np.array([[29, 19, 4, 29, 19, 4]])
    path = save_case(tmp_path, "3DBox_X_1.npz", imgs=IMAGE_3D, boxes=boxes)
    np.testing.assert_array_equal(load_case(path).boxes, boxes)


@pytest.mark.parametrize(
    ("raw", "clipped"),
    [
        # max == size: an exclusive bound written as inclusive.
        ([0, 0, 0, 30, 20, 5], [0, 0, 0, 29, 19, 4]),
        # a few pixels of overshoot on both sides.
        ([-5, -2, -1, 34, 24, 9], [0, 0, 0, 29, 19, 4]),
    ],
)
def test_small_overshoots_are_clipped(tmp_path: Path, raw: list[int], clipped: list[int]) -> None:
    path = save_case(tmp_path, "3DBox_X_1.npz", imgs=IMAGE_3D, boxes=np.array([raw]))
    np.testing.assert_array_equal(load_case(path).boxes, [clipped])


def test_2d_overshoot_is_clipped_per_axis(tmp_path: Path) -> None:
    # x is bounded by the width (30), y by the height (20).
    path = save_case(tmp_path, "2DBox_X_1.npz", imgs=IMAGE_2D, boxes=np.array([[3, 4, 30, 20]]))
    np.testing.assert_array_equal(load_case(path).boxes, [[3, 4, 29, 19]])


# --- invalid cases ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Box_US_0001.npz", "2dBox_US_0001.npz", "case.npz", "4DBox_X_1.npz"]
)
def test_name_must_start_with_2d_or_3d(tmp_path: Path, name: str) -> None:
    path = save_case(tmp_path, name, imgs=IMAGE_2D, boxes=BOXES_2D)
    assert_case_error(path, "'2D' or '3D'")


@pytest.mark.parametrize(
    ("name", "image", "boxes", "fragment"),
    [
        ("2DBox_X_1.npz", IMAGE_3D, BOXES_2D, "a (D, H, W) volume is a 3D case"),
        ("2DBox_X_1.npz", np.zeros((20, 30, 4), np.uint8), BOXES_2D, "(H, W, 3)"),
        ("3DBox_X_1.npz", IMAGE_2D[..., 0], BOXES_3D, "3D case: imgs must be (D, H, W)"),
        ("3DBox_X_1.npz", IMAGE_3D[None], BOXES_3D, "3D case: imgs must be (D, H, W)"),
        # An RGB image under a 3D name reads as a (D, H, 3) volume; its 2D boxes give it away.
        ("3DBox_X_1.npz", IMAGE_2D, BOXES_2D, "boxes must be (N, 6)"),
        ("2DBox_X_1.npz", IMAGE_2D, BOXES_3D, "6 columns are 3D boxes"),
    ],
)
def test_kind_from_name_must_match_shapes(
    tmp_path: Path, name: str, image: np.ndarray, boxes: np.ndarray, fragment: str
) -> None:
    path = save_case(tmp_path, name, imgs=image, boxes=boxes)
    assert_case_error(path, fragment)


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        (IMAGE_2D.astype(np.int16) - 1, "int16 with values -1..254"),
        (IMAGE_2D.astype(np.uint16) * 2, "uint16 with values 0..510"),
        (IMAGE_2D / 255.0, "float64 with values 0..1 (not whole numbers)"),
        (np.where(IMAGE_2D > 9, np.nan, 1.0), "NaN or infinity"),
        (IMAGE_2D.astype(np.complex64), "complex64"),
    ],
)
def test_images_that_are_not_uint8_values_are_refused(tmp_path: Path, image: np.ndarray, fragment: str) -> None:
    path = save_case(tmp_path, "2DBox_X_1.npz", imgs=image, boxes=BOXES_2D)
    assert_case_error(path, "imgs must be uint8", fragment)


@pytest.mark.parametrize("dtype", [np.int16, np.uint32, np.float32, np.bool_])
def test_whole_values_in_0_255_are_read_as_uint8_with_a_warning(tmp_path: Path, dtype: type) -> None:
    image = IMAGE_2D > 100 if dtype is np.bool_ else IMAGE_2D.astype(dtype)
    case = load_case(save_case(tmp_path, "2DBox_X_1.npz", imgs=image, boxes=BOXES_2D))
    assert case.image.dtype == np.uint8
    np.testing.assert_array_equal(case.image, image.astype(np.uint8))
    assert case.warnings == (f"imgs is {np.dtype(dtype).name} with values {image.min():g}..{image.max():g}: read as uint8",)


@pytest.mark.parametrize("image", [IMAGE_2D[..., 0], IMAGE_2D[..., :1]])
def test_grey_2d_images_are_segmented_as_grey(tmp_path: Path, image: np.ndarray) -> None:
    case = load_case(save_case(tmp_path, "2DBox_X_1.npz", imgs=image, boxes=BOXES_2D))
    np.testing.assert_array_equal(case.image, IMAGE_2D[..., 0])
    assert case.spatial_shape == (20, 30)
    assert "grey image" in case.warnings[0]


def test_empty_image_is_rejected(tmp_path: Path) -> None:
    path = save_case(tmp_path, "3DBox_X_1.npz", imgs=np.zeros((0, 20, 30), np.uint8), boxes=[])
    assert_case_error(path, "imgs is empty")


@pytest.mark.parametrize(
    ("arrays", "missing"),
    [
        ({"boxes": BOXES_2D}, "'imgs'"),
        ({"imgs": IMAGE_2D}, "'boxes'"),
        ({"image": IMAGE_2D, "box": BOXES_2D}, "'imgs', 'boxes'"),
    ],
)
def test_missing_keys(tmp_path: Path, arrays: dict[str, np.ndarray], missing: str) -> None:
    path = save_case(tmp_path, "2DBox_X_1.npz", **arrays)
    assert_case_error(path, "missing key(s)", missing)


@pytest.mark.parametrize(
    ("boxes", "fragment"),
    [
        (np.array([1, 2, 10, 12]), "boxes must be (N, 4)"),
        (np.zeros((2, 5)), "boxes must be (N, 4)"),
        (np.zeros((1, 2, 4)), "boxes must be (N, 4)"),
        (np.array([[True, False, True, True]]), "integer or float"),
        (np.array([["1", "2", "3", "4"]]), "integer or float"),
        (np.zeros((65_536, 4), np.int16), "65,536 boxes: at most 65,535 objects"),
    ],
)
def test_boxes_of_the_wrong_form_fail_the_case(tmp_path: Path, boxes: np.ndarray, fragment: str) -> None:
    path = save_case(tmp_path, "2DBox_X_1.npz", imgs=IMAGE_2D, boxes=boxes)
    assert_case_error(path, fragment)


@pytest.mark.parametrize(
    ("boxes", "kept", "labels", "warning"),
    [
        ([[1.0, 2.0, np.nan, 4.0], [1, 2, 3, 4]], [[1, 2, 3, 4]], [2], "box 1 (1-based): NaN or infinity: skipped"),
        ([[1, 2, 3, 4], [1.0, 2.0, np.inf, 4.0]], [[1, 2, 3, 4]], [1], "box 2 (1-based): NaN"),
        ([[1.0, 2.5, 10.4, 12.0]], [[1, 2, 10, 12]], [1], "box 1 (1-based): not whole pixels: rounded"),
        ([[1, 2, 10, 12], [11, 2, 10, 12]], [[1, 2, 10, 12]], [1], "box 2 (1-based): a min above its max"),
        ([[30, 0, 31, 5], [0, -3, 5, -1], [0, 0, 4, 4]], [[0, 0, 4, 4]], [3],
         "boxes 1, 2 (1-based): wholly outside the image of shape (20, 30): skipped"),
        ([[-20, -30, 70, 70]], [[0, 0, 29, 19]], [1], "more than 5 px past the image of shape (20, 30): clipped"),
        ([[0, 0, 1e30, 5]], [[0, 0, 29, 5]], [1], "more than 5 px past"),
        ([[1, 2, 10, 12], [0, 0, 4, 4], [1, 2, 10, 12]], [[1, 2, 10, 12], [0, 0, 4, 4], [1, 2, 10, 12]], [1, 2, 3],
         "box 1 (1-based): repeated by a later box"),
    ],
)
def test_unusable_boxes_are_skipped_or_repaired_with_a_warning(
    tmp_path: Path, boxes: list[list[float]], kept: list[list[int]], labels: list[int], warning: str
) -> None:
    case = load_case(save_case(tmp_path, "2DBox_X_1.npz", imgs=IMAGE_2D, boxes=np.array(boxes, dtype=np.float64)))
    np.testing.assert_array_equal(case.boxes, kept)
    np.testing.assert_array_equal(case.box_labels, labels)
    assert any(warning in note for note in case.warnings), case.warnings


def test_many_skipped_boxes_are_counted_not_all_listed(tmp_path: Path) -> None:
    boxes = np.array([[40, 0, 45, 5]] * 25 + [[0, 0, 4, 4]])
    case = load_case(save_case(tmp_path, "2DBox_X_1.npz", imgs=IMAGE_2D, boxes=boxes))
    assert case.box_labels.tolist() == [26]
    assert case.warnings[0].startswith("boxes 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 15 more (1-based): wholly outside")


@pytest.mark.parametrize(
    ("boxes", "labels", "warning"),
    [
        ([[0, 0, 3, 5, 5, 2]], [], "min above its max"),
        ([[0, 0, 5, 5, 5, 5]], [], "wholly outside the image of shape (5, 20, 30)"),
        ([[0, 0, 0, 5, 5, 10]], [1], "more than 5 px past"),
        ([[0.25, 0, 0, 5, 5, 2]], [1], "rounded to the nearest pixel"),
    ],
)
def test_unusable_3d_boxes(tmp_path: Path, boxes: list[list[float]], labels: list[int], warning: str) -> None:
    case = load_case(save_case(tmp_path, "3DBox_X_1.npz", imgs=IMAGE_3D, boxes=np.array(boxes)))
    assert case.box_labels.tolist() == labels
    assert warning in case.warnings[0]


@pytest.mark.parametrize(
    ("spacing", "fragment"),
    [
        ([1.0, 1.0], "3 numbers"),
        ([1.0, 1.0, 1.0, 1.0], "3 numbers"),
        (["1", "1", "1"], "3 numbers"),
        ([1.0, 0.0, 1.0], "positive and finite"),
        ([1.0, -1.0, 1.0], "positive and finite"),
        ([1.0, np.nan, 1.0], "positive and finite"),
        ([np.inf, 1.0, 1.0], "positive and finite"),
    ],
)
def test_unusable_spacing_is_ignored_with_a_warning(tmp_path: Path, spacing: list[object], fragment: str) -> None:
    case = load_case(save_case(tmp_path, "3DBox_X_1.npz", imgs=IMAGE_3D, boxes=BOXES_3D, spacing=spacing))
    assert case.spacing is None
    [warning] = case.warnings
    assert warning.startswith("spacing ignored (inference does not use it)") and fragment in warning


def test_a_case_too_large_for_the_memory_given_is_refused_before_reading(tmp_path: Path) -> None:
    path = save_case(tmp_path, "3DBox_X_1.npz", imgs=np.zeros((300, 512, 512), np.uint8), boxes=BOXES_3D)
    # 300x512x512 uint8 plus a uint16 label map is 225 MiB, plus the working memory.
    assert load_case(path, memory_available=WORKING_MEMORY + 240 * 2**20).image.shape == (300, 512, 512)
    assert_case_error(path, "too large for the memory given", "(300, 512, 512) uint8", "0.4 GiB available",
                      memory=WORKING_MEMORY + 200 * 2**20)


def test_object_arrays_are_refused_not_unpickled(tmp_path: Path) -> None:
    boxes = np.empty(1, dtype=object)
    boxes[0] = [1, 2, 10, 12]
    path = save_case(tmp_path, "2DBox_X_1.npz", imgs=IMAGE_2D, boxes=boxes)
    assert_case_error(path, "cannot read 'boxes'", "allow_pickle")


def test_pickled_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "2DBox_X_1.npz"
    np.save(path.with_suffix(".npy"), np.array([{"imgs": 1}], dtype=object))
    path.with_suffix(".npy").rename(path)
    assert_case_error(path, "cannot read the npz file")


def test_single_npy_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "2DBox_X_1.npz"
    np.save(path.with_suffix(".npy"), IMAGE_2D)
    path.with_suffix(".npy").rename(path)
    assert_case_error(path, "not an npz archive")


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "2DBox_X_1.npz"
    path.write_bytes(b"PK\x03\x04 this is not really a zip file")
    assert_case_error(path, "cannot read")


def test_truncated_npz_is_refused(tmp_path: Path) -> None:
    path = save_case(tmp_path, "2DBox_X_1.npz", imgs=IMAGE_2D, boxes=BOXES_2D)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_case_error(path, "cannot read")


def test_corrupt_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "2DBox_X_1.npz"
    # A valid zip whose "imgs" member is not an .npy stream.
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("imgs.npy", b"not an npy header")
        archive.writestr("boxes.npy", b"")
    assert_case_error(path, "cannot read 'imgs'")


def test_missing_file_is_a_case_error(tmp_path: Path) -> None:
    assert_case_error(tmp_path / "2DBox_X_1.npz", "missing")


# --- label maps -------------------------------------------------------------------------


def test_new_label_map_shapes() -> None:
    case_2d = Case("2DBox_X_1.npz", IMAGE_2D, BOXES_2D, None)
    case_3d = Case("3DBox_X_1.npz", IMAGE_3D, BOXES_3D, (1.0, 1.0, 1.0))
    for case, shape in [(case_2d, (20, 30)), (case_3d, (5, 20, 30))]:
        labels = new_label_map(case.spatial_shape)
        assert labels.shape == shape
        assert labels.dtype == np.uint16
        assert not labels.any()


def test_paint_later_boxes_overwrite_earlier() -> None:
    labels = np.zeros((4, 6), dtype=np.uint16)
    first = np.zeros((4, 6), dtype=bool)
    first[0:3, 0:4] = True
    second = np.zeros((4, 6), dtype=bool)
    second[1:4, 2:6] = True
    paint(labels, first, 1)
    paint(labels, second, 2)
    expected = np.array(
        [
            [1, 1, 1, 1, 0, 0],
            [1, 1, 2, 2, 2, 2],
            [1, 1, 2, 2, 2, 2],
            [0, 0, 2, 2, 2, 2],
        ]
    )
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize(
    ("mask", "label", "fragment"),
    [
        (np.ones((4, 6), dtype=np.uint8), 1, "boolean"),
        (np.ones((4, 5), dtype=bool), 1, "shape"),
        (np.ones((4, 6), dtype=bool), 0, "outside 1..65535"),
        (np.ones((4, 6), dtype=bool), 65536, "outside 1..65535"),
    ],
)
def test_paint_rejects_bad_input(mask: np.ndarray, label: int, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        paint(np.zeros((4, 6), dtype=np.uint16), mask, label)


# --- writing ----------------------------------------------------------------------------


def read_segs(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        assert data.files == ["segs"]
        return data["segs"]


def test_write_round_trip_past_255_labels(tmp_path: Path) -> None:
    # 300 objects: the baseline's uint8 output would wrap or crash here.
    segs = (np.arange(20 * 30) % 301).reshape(20, 30).astype(np.int64)
    path = write_segmentation(tmp_path, "2DBox_X_1.npz", segs)
    assert path == tmp_path / "2DBox_X_1.npz"
    read = read_segs(path)
    assert read.dtype == np.uint16
    assert read.max() == 300
    np.testing.assert_array_equal(read, segs)


def test_write_is_compressed(tmp_path: Path) -> None:
    path = write_segmentation(tmp_path, "3DBox_X_1.npz", np.zeros((5, 20, 30), np.uint16))
    with zipfile.ZipFile(path) as archive:
        assert [info.compress_type for info in archive.infolist()] == [zipfile.ZIP_DEFLATED]


def test_write_creates_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    path = write_segmentation(out, "2DBox_X_1.npz", np.ones((2, 3), np.uint8))
    np.testing.assert_array_equal(read_segs(path), np.ones((2, 3)))


def test_write_replaces_existing_output(tmp_path: Path) -> None:
    write_segmentation(tmp_path, "2DBox_X_1.npz", np.ones((2, 3), np.uint16))
    path = write_segmentation(tmp_path, "2DBox_X_1.npz", np.full((2, 3), 7, np.uint16))
    np.testing.assert_array_equal(read_segs(path), np.full((2, 3), 7))
    assert os.listdir(tmp_path) == ["2DBox_X_1.npz"]


def test_written_file_is_world_readable(tmp_path: Path) -> None:
    # Even under a strict umask the host user must be able to read the result.
    old_umask = os.umask(0o077)
    try:
        path = write_segmentation(tmp_path, "2DBox_X_1.npz", np.zeros((2, 3), np.uint16))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_write_keeps_previous_output_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = np.full((2, 3), 5, np.uint16)
    path = write_segmentation(tmp_path, "2DBox_X_1.npz", previous)
    before = path.read_bytes()
    seen_during_write: list[list[str]] = []

    def failing_savez(file: object, **arrays: np.ndarray) -> None:
        seen_during_write.append(sorted(os.listdir(tmp_path)))
        file.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(outputs.np, "savez_compressed", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        write_segmentation(tmp_path, "2DBox_X_1.npz", np.zeros((2, 3), np.uint16))

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["2DBox_X_1.npz"]
    # While writing, the temporary file sat beside the output without an .npz ending.
    [during] = seen_during_write
    temp_names = [name for name in during if name != "2DBox_X_1.npz"]
    assert len(temp_names) == 1
    assert not temp_names[0].endswith(".npz")
    assert [p.name for p in discover_cases(tmp_path)] == ["2DBox_X_1.npz"]


@pytest.mark.parametrize(
    ("name", "segs", "fragment"),
    [
        ("2DBox_X_1.npz", np.full((2, 3), 65536, np.int64), "0..65535"),
        ("2DBox_X_1.npz", np.full((2, 3), -1, np.int32), "0..65535"),
        ("2DBox_X_1.npz", np.zeros((2, 3), np.float32), "integer label map"),
        ("2DBox_X_1.npz", np.zeros((5, 2, 3), np.uint16), "2 dimensions"),
        ("3DBox_X_1.npz", np.zeros((2, 3), np.uint16), "3 dimensions"),
        ("sub/2DBox_X_1.npz", np.zeros((2, 3), np.uint16), "bare file name"),
        ("2DBox_X_1", np.zeros((2, 3), np.uint16), "ending in .npz"),
        ("Box_X_1.npz", np.zeros((2, 3), np.uint16), "'2D' or '3D'"),
    ],
)
def test_write_rejects_bad_segs(
    tmp_path: Path, name: str, segs: np.ndarray, fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment.replace(".", r"\.")):
        write_segmentation(tmp_path, name, segs)
    assert os.listdir(tmp_path) == []


def test_write_checks_expected_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="case shape"):
        write_segmentation(
            tmp_path, "2DBox_X_1.npz", np.zeros((2, 3), np.uint16), expected_shape=(3, 2)
        )
    path = write_segmentation(
        tmp_path, "2DBox_X_1.npz", np.zeros((2, 3), np.uint16), expected_shape=(2, 3)
    )
    assert read_segs(path).shape == (2, 3)


def test_load_paint_write_round_trip(tmp_path: Path) -> None:
    case = load_case(save_case(tmp_path, "3DBox_CT_1.npz", imgs=IMAGE_3D, boxes=BOXES_3D))
    labels = new_label_map(case.spatial_shape)
    for label, (x0, y0, z0, x1, y1, z1) in enumerate(case.boxes, start=1):
        mask = np.zeros(case.spatial_shape, dtype=bool)
        mask[z0 : z1 + 1, y0 : y1 + 1, x0 : x1 + 1] = True
        paint(labels, mask, label)
    path = write_segmentation(
        tmp_path / "out", case.name, labels, expected_shape=case.spatial_shape
    )
    segs = read_segs(path)
    assert segs[2, 4, 3] == 2  # inside both boxes: the later one wins
    assert segs[0, 2, 1] == 1
    assert segs[4, 19, 29] == 0
