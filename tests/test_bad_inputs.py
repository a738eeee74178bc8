"""The bad-input corpus: every kind of broken or unusual input, run through the CLI in one folder.

Each kind is built from the real demo cases and has its expected behaviour: the case
fails with one log line naming it and the problem (no output, any earlier output
kept), or it is repaired or partly skipped with a warning naming it, or it is fine,
or the folder entry is not a case and is listed as ignored. The good cases around
the bad ones are all written, the exit status is 1, and no temporary file is left.
The decoder is scripted (each mask is its prompt box), so the labels are predictable.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import inference.__main__ as cli
from tests.helpers import Poison, corrupt_deflate, echo_segmenter

Check = Callable[[np.ndarray], bool]


@dataclass(frozen=True)
class Kind:
    """One kind of input: how to write it into the folder, and what must happen to it."""

    name: str  # the case file (or folder entry) it writes
    write: Callable[[Path, str], None]
    outcome: str  # "fails", "warns", "fine" or "ignored"
    fragment: str = ""  # in the FAILED / WARNING / ignored line
    check: Check | None = None  # on the output's segs


@pytest.fixture(scope="module")
def real(demo_data: Path) -> dict[str, np.ndarray]:
    """A 160x192 crop of the real nuclei image with the boxes that lie inside it, and the real 3D nuclei volume."""
    with np.load(demo_data / "inputs" / "2DBox_Microscope_0001.npz") as data:
        image, boxes = data["imgs"][:160, :192], data["boxes"]
    inside = boxes[(boxes[:, 2] < 192) & (boxes[:, 3] < 160)]
    with np.load(demo_data / "inputs" / "3DBox_Microscope_0002.npz") as data:
        volume, boxes_3d, spacing = data["imgs"], data["boxes"][:3], data["spacing"]
    assert len(inside) >= 5
    return {"image": image, "boxes": inside[:5], "volume": volume, "boxes_3d": boxes_3d, "spacing": spacing}


def header_only_npz(path: Path, shape: tuple[int, ...], boxes: int = 1) -> None:
    """An npz whose headers claim imgs of `shape` and `boxes` boxes but hold no data: they would inflate past any memory."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, descr, member_shape in (("imgs", "|u1", shape), ("boxes", "<i8", (boxes, 6))):
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array_header_2_0(
                    member, {"descr": descr, "fortran_order": False, "shape": member_shape})


def corpus(real: dict[str, np.ndarray], marker: Path) -> list[Kind]:
    """Every kind of input the corpus tries."""
    image, boxes, volume, boxes_3d = real["image"], real["boxes"], real["volume"], real["boxes_3d"]
    height, width = image.shape[:2]

    def case(**arrays: object) -> Callable[[Path, str], None]:
        return lambda folder, name: np.savez_compressed(folder / name, **arrays)

    def with_boxes(*extra: list[float]) -> Callable[[Path, str], None]:
        return case(imgs=image, boxes=np.array([*boxes[:2].tolist(), *extra], dtype=np.float64))

    def labels_are(*present: int) -> Check:
        return lambda segs: sorted(set(np.unique(segs).tolist()) - {0}) == list(present)

    def truncated(folder: Path, name: str) -> None:
        np.savez_compressed(folder / name, imgs=image, boxes=boxes)
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])

    def corrupt(folder: Path, name: str) -> None:
        np.savez_compressed(folder / name, imgs=image, boxes=boxes)
        corrupt_deflate(folder / name, "imgs.npy")

    def pickled(folder: Path, name: str) -> None:
        poison = np.empty(1, dtype=object)
        poison[0] = Poison(marker)
        np.savez(folder / name, imgs=image, boxes=poison)

    def pickled_file(folder: Path, name: str) -> None:
        (folder / name).write_bytes(pickle.dumps({"imgs": Poison(marker)}))

    def symlink_to_a_case(folder: Path, name: str) -> None:
        target = folder.parent / "elsewhere" / "2DBox_Microscope_9000.npz"
        target.parent.mkdir(exist_ok=True)
        np.savez_compressed(target, imgs=image, boxes=boxes)
        (folder / name).symlink_to(target)

    # 300 distinct boxes: each real one moved by 60 different (dx, dy) of up to 7 pixels.
    shifts = [(d % 8, d // 8) for d in range(60)]
    many = np.array([np.minimum(box + [dx, dy, dx, dy], [width - 1, height - 1] * 2)
                     for dx, dy in shifts for box in boxes])
    too_many = np.zeros((65_536, 4), dtype=np.int16)
    grey_volume = volume[:, :, :, None]
    return [
        Kind("2DBox_Microscope_0100.npz", case(imgs=image, boxes=boxes), "fine", check=labels_are(1, 2, 3, 4, 5)),
        Kind("3DBox_Microscope_0101.npz", case(imgs=volume, boxes=boxes_3d, spacing=real["spacing"]), "fine",
             check=labels_are(1, 2, 3)),
        # Missing keys and spacing.
        Kind("2DBox_Microscope_0001.npz", case(boxes=boxes), "fails", "missing key(s) ['imgs']"),
        Kind("2DBox_Microscope_0002.npz", case(imgs=image), "fails", "missing key(s) ['boxes']"),
        Kind("3DBox_Microscope_0003.npz", case(imgs=volume, boxes=boxes_3d), "fine", check=labels_are(1, 2, 3)),
        # Image dtypes and values.
        Kind("2DBox_Microscope_0004.npz", case(imgs=image / 255.0, boxes=boxes), "fails", "(not whole numbers)"),
        Kind("2DBox_Microscope_0005.npz", case(imgs=image.astype(np.int16), boxes=boxes), "warns",
             "imgs is int16 with values", labels_are(1, 2, 3, 4, 5)),
        Kind("2DBox_Microscope_0006.npz", case(imgs=image > 128, boxes=boxes), "warns", "imgs is bool",
             labels_are(1, 2, 3, 4, 5)),
        Kind("2DBox_Microscope_0007.npz", case(imgs=image.astype(np.uint16) * 4, boxes=boxes), "fails",
             "window it to 0..255 first"),
        Kind("2DBox_Microscope_0008.npz", case(imgs=np.where(image > 9, np.nan, 1.0), boxes=boxes), "fails",
             "NaN or infinity"),
        # Dimensions and channels.
        Kind("2DBox_Microscope_0009.npz", case(imgs=image[None], boxes=boxes), "fails", "imgs must be (H, W, 3)"),
        Kind("2DBox_Microscope_0010.npz", case(imgs=np.dstack([image, image[..., :1]]), boxes=boxes), "fails",
             "(H, W, 3), got shape (160, 192, 4)"),
        Kind("2DBox_Microscope_0011.npz", case(imgs=image[..., 0], boxes=boxes), "warns", "grey image",
             labels_are(1, 2, 3, 4, 5)),
        Kind("3DBox_Microscope_0012.npz", case(imgs=grey_volume, boxes=boxes_3d), "fails",
             "imgs must be (D, H, W)"),
        # A 2D name on a volume, a 3D name on an image.
        Kind("2DBox_Microscope_0013.npz", case(imgs=volume, boxes=boxes_3d), "fails", "is a 3D case"),
        Kind("3DBox_Microscope_0014.npz", case(imgs=image, boxes=boxes), "fails", "4 columns are 2D boxes"),
        # Boxes.
        Kind("2DBox_Microscope_0015.npz", with_boxes([-20, -30, width + 40, height + 50]), "warns",
             "box 3 (1-based): more than 5 px past the image of shape (160, 192): clipped",
             lambda segs: segs[80, 96] == 3 and (segs == 3).mean() > 0.9),
        Kind("2DBox_Microscope_0016.npz", with_boxes([width + 5, 0, width + 30, 20]), "warns",
             "box 3 (1-based): wholly outside", labels_are(1, 2)),
        Kind("2DBox_Microscope_0017.npz", with_boxes([50, 50, 40, 60]), "warns", "min above its max",
             labels_are(1, 2)),
        Kind("2DBox_Microscope_0018.npz", with_boxes([30, 40, 30, 60]), "fine",
             check=lambda segs: labels_are(1, 2, 3)(segs) and (segs == 3).any(axis=0).sum() == 1),
        Kind("2DBox_Microscope_0019.npz", with_boxes([np.nan, 0, 10, 10]), "warns", "NaN or infinity: skipped",
             labels_are(1, 2)),
        Kind("2DBox_Microscope_0020.npz", with_boxes([0, 0, np.inf, 10]), "warns", "NaN or infinity: skipped",
             labels_are(1, 2)),
        Kind("2DBox_Microscope_0021.npz", with_boxes([10.4, 10.6, 20.2, 30.9]), "warns", "rounded to the nearest",
             labels_are(1, 2, 3)),
        Kind("2DBox_Microscope_0022.npz", case(imgs=image, boxes=np.zeros((2, 5))), "fails",
             "boxes must be (N, 4)"),
        Kind("2DBox_Microscope_0023.npz", case(imgs=image, boxes=np.zeros((0, 4))), "warns", "no boxes",
             lambda segs: segs.shape == (160, 192) and not segs.any()),
        Kind("2DBox_Microscope_0024.npz", with_boxes(boxes[0].tolist()), "warns", "box 1 (1-based): repeated",
             labels_are(2, 3)),
        Kind("2DBox_Microscope_0025.npz", case(imgs=image, boxes=many), "fine",
             check=lambda segs: segs.dtype == np.uint16 and segs.max() == 300),
        Kind("2DBox_Microscope_0026.npz", case(imgs=image, boxes=too_many), "fails", "at most 65,535 objects"),
        Kind("2DBox_Microscope_0027.npz", case(imgs=image, boxes=boxes.astype(str)), "fails", "integer or float"),
        Kind("3DBox_Microscope_0028.npz", case(imgs=volume, boxes=[[5, 5, 4, 30, 30, 4]]), "fine",
             check=lambda segs: (segs == 1).any(axis=(1, 2)).nonzero()[0].tolist() == [4]),
        Kind("3DBox_Microscope_0029.npz", case(imgs=volume, boxes=[[5, 5, -12, 30, 30, 70]]), "warns",
             "clipped", lambda segs: (segs == 1).any(axis=(1, 2)).all()),
        # Spacing, which inference does not use.
        Kind("3DBox_Microscope_0030.npz", case(imgs=volume, boxes=boxes_3d, spacing=[1.0, np.nan, 1.0]), "warns",
             "spacing ignored", labels_are(1, 2, 3)),
        Kind("3DBox_Microscope_0031.npz", case(imgs=volume, boxes=boxes_3d, spacing=[0.0, 1.0, 1.0]), "warns",
             "spacing ignored", labels_are(1, 2, 3)),
        Kind("3DBox_Microscope_0032.npz", case(imgs=volume, boxes=boxes_3d, spacing=[1.0, -0.5, 1.0]), "warns",
             "spacing ignored", labels_are(1, 2, 3)),
        # Files that are not what they claim.
        Kind("2DBox_Microscope_0033.npz", pickled, "fails", "Object arrays cannot be loaded when allow_pickle=False"),
        Kind("2DBox_Microscope_0034.npz", pickled_file, "fails", "cannot read the npz file"),
        Kind("2DBox_Microscope_0035.npz", truncated, "fails", "cannot read"),
        Kind("2DBox_Microscope_0036.npz", corrupt, "fails", "cannot read 'imgs' (zlib.error"),
        Kind("2DBox_Microscope_0037.npz", lambda folder, name: (folder / name).write_bytes(b""), "fails",
             "cannot read the npz file"),
        Kind("3DBox_Microscope_0038.npz", lambda folder, name: header_only_npz(folder / name, (10**5, 10**5, 100)),
             "fails", "too large for the memory given: imgs (100000, 100000, 100) uint8"),
        Kind("3DBox_Microscope_0042.npz", lambda folder, name: header_only_npz(folder / name, (4, 4, 4), 10**10),
             "fails", "too large for the memory given: imgs (4, 4, 4) uint8, its label map and 10,000,000,000 boxes"),
        Kind("Box_Microscope_0039.npz", case(imgs=image, boxes=boxes), "fails", "name must start with '2D' or '3D'"),
        Kind("2DBox_Microscope_0040.npz", symlink_to_a_case, "fine", check=labels_are(1, 2, 3, 4, 5)),
        # Folder entries that are not cases.
        Kind("notes.txt", lambda folder, name: (folder / name).write_text("not a case"), "ignored",
             "notes.txt (not an .npz file)"),
        Kind("more_cases", lambda folder, name: (folder / name).mkdir(), "ignored", "more_cases (a folder)"),
        Kind("2DBox_Microscope_0041.npz", lambda folder, name: (folder / name).symlink_to(folder / "gone.npz"),
             "ignored", "2DBox_Microscope_0041.npz (symlink to a missing"),
    ]


@dataclass(frozen=True)
class CorpusRun:
    """The CLI's run over the corpus folder."""

    kinds: list[Kind]
    inputs: Path
    outputs: Path
    status: int
    log: str
    record: dict[str, object]
    marker: Path
    kept_output: bytes


STALE_OUTPUT = "2DBox_Microscope_0035.npz"  # a failing case whose earlier output must survive
REPLACED_OUTPUT = "2DBox_Microscope_0100.npz"  # a good case whose earlier output is replaced


@pytest.fixture(scope="module")
def corpus_run(real: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    """Write every kind into one input folder and run `python -m inference` over it once."""
    root = tmp_path_factory.mktemp("corpus")
    inputs, outputs, marker = root / "inputs", root / "outputs", root / "unpickled"
    inputs.mkdir()
    kinds = corpus(real, marker)
    for kind in kinds:
        kind.write(inputs, kind.name)
    outputs.mkdir()
    np.savez_compressed(outputs / STALE_OUTPUT, segs=np.full((160, 192), 7, np.uint16))
    np.savez_compressed(outputs / REPLACED_OUTPUT, segs=np.full((3, 3), 9, np.uint16))
    kept = (outputs / STALE_OUTPUT).read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "build_segmenter", echo_segmenter())
        status = cli.main(["-i", str(inputs), "-o", str(outputs), "--no-progress", "--log", str(root / "run.log")])
    record = json.loads((root / "run.record.json").read_text())
    return CorpusRun(kinds, inputs, outputs, status, (root / "run.log").read_text(), record, marker, kept)


def test_the_corpus_has_at_least_30_kinds_of_bad_input(real: dict[str, np.ndarray], tmp_path: Path) -> None:
    kinds = corpus(real, tmp_path / "marker")
    assert len({kind.name for kind in kinds}) == len(kinds)
    assert sum(kind.outcome != "fine" for kind in kinds) >= 30


def test_the_run_goes_on_past_every_bad_case_and_exits_1(corpus_run: CorpusRun) -> None:
    assert corpus_run.status == 1
    cases = [k for k in corpus_run.kinds if k.outcome != "ignored"]
    statuses = {row["case"]: row["status"] for row in corpus_run.record["cases"]}
    assert statuses == {k.name: "failed" if k.outcome == "fails" else "ok" for k in cases}
    assert corpus_run.record["stopped_by"] is None
    # Nothing half-written: every file in the output folder is a finished output.
    written = sorted(p.name for p in corpus_run.outputs.iterdir())
    assert written == sorted({k.name for k in cases if k.outcome != "fails"} | {STALE_OUTPUT})
    assert "Traceback" not in corpus_run.log  # every failure is one line naming the case, none is a crash


def test_nothing_was_unpickled(corpus_run: CorpusRun) -> None:
    assert not corpus_run.marker.exists()


def test_an_earlier_output_of_a_failing_case_is_kept(corpus_run: CorpusRun) -> None:
    assert (corpus_run.outputs / STALE_OUTPUT).read_bytes() == corpus_run.kept_output


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise `kind` over the corpus (built with placeholder data only to name the kinds)."""
    if "kind_name" in metafunc.fixturenames:
        placeholder = {"image": np.zeros((160, 192, 3), np.uint8), "boxes": np.zeros((5, 4), np.int64),
                       "volume": np.zeros((2, 2, 2), np.uint8), "boxes_3d": np.zeros((3, 6), np.int64),
                       "spacing": np.ones(3)}
        names = [k.name for k in corpus(placeholder, Path("unused"))]
        metafunc.parametrize("kind_name", names)


def test_each_kind_behaves_as_specified(corpus_run: CorpusRun, kind_name: str) -> None:
    [kind] = [k for k in corpus_run.kinds if k.name == kind_name]
    lines = [line for line in corpus_run.log.splitlines() if kind.name in line]
    failed = [line for line in lines if line.startswith(f"FAILED {kind.name}: ")]
    warned = [line for line in lines if line.startswith(f"WARNING {kind.name}: ")]
    output = corpus_run.outputs / kind.name
    if kind.outcome == "fails":
        assert len(failed) == 1 and kind.fragment in failed[0], lines
        assert kind.name == STALE_OUTPUT or not output.exists()
        return
    if kind.outcome == "ignored":
        [ignored] = [line for line in corpus_run.log.splitlines() if line.startswith("WARNING not cases, ignored")]
        assert kind.fragment in ignored
        assert not output.exists() and not failed
        return
    assert not failed, lines
    if kind.outcome == "warns":
        assert any(kind.fragment in line for line in warned), lines
    else:
        assert not warned, lines
    assert output.is_file() and not output.is_symlink()
    with np.load(output) as data:
        segs = data["segs"]
    assert segs.dtype == np.uint16
    assert kind.check is not None and kind.check(segs), np.unique(segs)
    assert oct(os.stat(output).st_mode & 0o777) == "0o644"
