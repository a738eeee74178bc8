"""The shared case-file contract: names, discovery, the safe npz loader and its errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from casefiles import CaseError, case_kind, discover_cases, is_3d, load_arrays, modality
from tests.helpers import corrupt_deflate


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("2DBox_Microscope_0016.npz", "2D", "Microscope"),
        ("3DBox_PET_0001.npz", "3D", "PET"),
        ("2DBox_Fundus_Extra_0001.npz", "2D", "Fundus_Extra"),
        ("3DBox_CT_0566", "3D", "CT"),
    ],
)
def test_kind_and_modality_from_the_name(name: str, kind: str, expected: str) -> None:
    assert case_kind(name) == kind
    assert is_3d(name) == (kind == "3D")
    assert modality(name) == expected


@pytest.mark.parametrize("name", ["Box_US_0001.npz", "2dBox_US_0001.npz", "case.npz", "4DBox_X_1.npz"])
def test_a_name_without_a_kind_is_a_case_error(name: str) -> None:
    with pytest.raises(CaseError, match=rf"^{name}: name must start with '2D' or '3D'"):
        case_kind(name)


@pytest.mark.parametrize("name", ["2D_case.npz", "3DBox_0001.npz", "2DBox__0001.npz"])
def test_a_name_without_a_modality_is_a_case_error(name: str) -> None:
    with pytest.raises(CaseError, match="no modality"):
        modality(name)


def test_case_error_names_the_case_and_survives_pickling() -> None:
    error = CaseError("2DBox_X_1.npz", "broken")
    assert isinstance(error, ValueError)
    assert (error.name, error.problem) == ("2DBox_X_1.npz", "broken")
    assert str(error) == "2DBox_X_1.npz: broken"
    assert str(pickle.loads(pickle.dumps(error))) == "2DBox_X_1.npz: broken"


def test_discovery_is_sorted_npz_files_without_hidden_ones(tmp_path: Path) -> None:
    for name in ["3DBox_CT_0002.npz", "2DBox_US_0010.npz", "2DBox_US_0002.npz"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a case")
    (tmp_path / "._2DBox_US_0002.npz").write_bytes(b"")  # macOS resource fork copy
    (tmp_path / ".2DBox_US_0003.npz.abc.tmp").write_bytes(b"")  # an unfinished output
    (tmp_path / "folder.npz").mkdir()
    assert [p.name for p in discover_cases(tmp_path)] == ["2DBox_US_0002.npz", "2DBox_US_0010.npz", "3DBox_CT_0002.npz"]
    assert discover_cases(tmp_path / "folder.npz") == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_cases(tmp_path / "nowhere")


def test_loader_reads_required_and_present_optional_keys(tmp_path: Path) -> None:
    path = tmp_path / "3DBox_CT_0001.npz"
    np.savez_compressed(path, imgs=np.arange(8, dtype=np.uint8).reshape(2, 2, 2), boxes=np.array([[0, 0, 0, 1, 1, 1]]))
    arrays = load_arrays(path, ("imgs", "boxes"), optional=("spacing",))
    assert sorted(arrays) == ["boxes", "imgs"]
    np.testing.assert_array_equal(arrays["imgs"], np.arange(8).reshape(2, 2, 2))
    with pytest.raises(CaseError, match=r"missing key\(s\) \['gts'\]; found \['boxes', 'imgs'\]"):
        load_arrays(path, ("gts",))


def test_loader_refuses_pickles_and_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "2DBox_X_1.npz"
    np.savez(path, segs=np.array([{"code": "runs on load"}], dtype=object))
    with pytest.raises(CaseError, match=r"^2DBox_X_1.npz: cannot read 'segs' \(ValueError: Object arrays"):
        load_arrays(path, ("segs",))
    with pytest.raises(CaseError, match=r"^2DBox_X_2.npz: missing$"):
        load_arrays(tmp_path / "2DBox_X_2.npz", ("segs",))


def test_corrupt_deflate_behind_an_intact_directory_is_a_case_error(tmp_path: Path) -> None:
    path = tmp_path / "2DBox_X_1.npz"
    np.savez_compressed(path, segs=np.ones((64, 64), np.uint16), other=np.zeros(3))
    corrupt_deflate(path, "segs.npy")
    with np.load(path) as data:
        assert data.files == ["segs", "other"]  # the zip directory still reads
    with pytest.raises(CaseError, match=r"^2DBox_X_1.npz: cannot read 'segs' \(zlib.error: .*invalid block type"):
        load_arrays(path, ("segs",))
