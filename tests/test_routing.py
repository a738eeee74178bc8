"""`--model auto`: cases routed by the modality in their names, models loaded only when a case needs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import inference.__main__ as cli
from casefiles import CaseError
from checkpoints.manifest import ExportRecord, read_export
from inference import registry
from inference.backends import Backend
from inference.config import MODEL_CONFIGS
from inference.routing import AUTO, Measured, Routing, read_routing, write_routing
from inference.segmenter import Segmenter, build_segmenter
from inference.settings import RunSettings
from tests.helpers import BoxEchoBackend

REPO = Path(__file__).resolve().parents[1]
ROUTING = Routing("litemedsam", {"MR": "swiftmedsam-v2", "Microscope": "swiftmedsam-v2"})


def test_cases_go_by_modality_and_unknown_modalities_to_the_fallback() -> None:
    assert ROUTING.model_for("3DBox_MR_0001.npz") == "swiftmedsam-v2"
    assert ROUTING.model_for("2DBox_mr_0002.npz") == "swiftmedsam-v2"  # modality names match without case
    assert ROUTING.model_for("2DBox_Microscope_0003.npz") == "swiftmedsam-v2"
    assert ROUTING.model_for("3DBox_CT_0004.npz") == "litemedsam"
    assert ROUTING.model_for("2DBox_Fundus_Extra_0005.npz") == "litemedsam"
    assert ROUTING.models() == ["litemedsam", "swiftmedsam-v2"]
    with pytest.raises(CaseError, match="no modality"):
        ROUTING.model_for("2DBox_0006.npz")
    with pytest.raises(ValueError, match="unknown model"):
        Routing("litemedsam", {"CT": "medsam-huge"})


def test_the_shipped_table_is_measured_and_names_known_models() -> None:
    routing = read_routing()
    assert routing.fallback == "litemedsam"
    assert set(routing.models()) <= set(MODEL_CONFIGS)
    raw = json.loads((REPO / "inference" / "routing.json").read_text())
    assert raw["measured_by"].startswith("python -m training.routing")
    for name, entry in raw["modalities"].items():
        assert entry["cases"] >= 1, name
        # Another model than the fallback only where it measured better.
        best = max(entry["dsc"], key=entry["dsc"].get)
        assert entry["model"] == (best if entry["dsc"][best] > entry["dsc"]["litemedsam"] else "litemedsam"), name


def test_a_written_table_reads_back(tmp_path: Path) -> None:
    measured = {"MR": Measured("swiftmedsam-v2", 3, {"litemedsam": 0.5, "swiftmedsam-v2": 0.6},
                               {"litemedsam": 0.4, "swiftmedsam-v2": 0.7}, ["demo", "heldout"])}
    path = write_routing("litemedsam", measured, "python -m training.routing --cases demo=D", tmp_path / "r.json")
    assert read_routing(path) == Routing("litemedsam", {"MR": "swiftmedsam-v2"})
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a routing table"):
        read_routing(path)


class Loads:
    """A `load` for the Segmenter that records which models were loaded, each on its own echo backend."""

    def __init__(self) -> None:
        self.models: list[str] = []

    def __call__(self, model: str) -> Backend:
        self.models.append(model)
        return BoxEchoBackend()


def write_case(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    np.savez_compressed(folder / name, imgs=image, boxes=np.array([[5, 5, 40, 40]]))


def run_auto(monkeypatch: pytest.MonkeyPatch, loads: Loads, inputs: Path, tmp_path: Path) -> tuple[dict, Segmenter]:
    """The CLI with --model auto on echo backends; its JSON run record and its segmenter."""
    built = []

    def build(settings: RunSettings, wrap: object = None) -> Segmenter:
        built.append(Segmenter(settings, loads, ROUTING))
        return built[-1]

    monkeypatch.setattr(cli, "build_segmenter", build)
    record = tmp_path / "record.json"
    assert cli.main(["-i", str(inputs), "-o", str(tmp_path / "out"), "--model", AUTO, "--no-progress",
                     "--record", str(record)]) == 0
    return json.loads(record.read_text()), built[0]


def test_the_run_order_groups_cases_by_model_and_bad_names_go_first() -> None:
    segmenter = Segmenter(RunSettings(model=AUTO), Loads(), ROUTING)
    names = ["2DBox_MR_0001.npz", "2DBox_CT_0002.npz", "2DBox_0003.npz", "3DBox_CT_0004.npz", "3DBox_MR_0005.npz"]
    assert [p.name for p in segmenter.run_order([Path(n) for n in names])] == [
        "2DBox_0003.npz", "2DBox_CT_0002.npz", "3DBox_CT_0004.npz", "2DBox_MR_0001.npz", "3DBox_MR_0005.npz"]
    one_model = Segmenter(RunSettings(model="litemedsam"), Loads())
    assert [p.name for p in one_model.run_order([Path(n) for n in names])] == names


def test_a_ct_only_run_never_loads_the_student(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for number in (1, 2):
        write_case(tmp_path / "in", f"2DBox_CT_000{number}.npz")
    loads = Loads()
    record, _ = run_auto(monkeypatch, loads, tmp_path / "in", tmp_path)
    assert loads.models == ["litemedsam"]
    assert [row["model"] for row in record["cases"]] == ["litemedsam", "litemedsam"]


def test_a_mixed_run_loads_each_model_once_and_records_it_per_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("2DBox_CT_0001.npz", "2DBox_MR_0002.npz", "2DBox_US_0003.npz", "2DBox_MR_0004.npz"):
        write_case(tmp_path / "in", name)
    loads = Loads()
    record, segmenter = run_auto(monkeypatch, loads, tmp_path / "in", tmp_path)
    # Grouped by model, so each is loaded once and one is held at a time.
    assert loads.models == ["litemedsam", "swiftmedsam-v2"]
    assert segmenter.held() == ["swiftmedsam-v2"]
    assert [(row["case"], row["model"]) for row in record["cases"]] == [
        ("2DBox_CT_0001.npz", "litemedsam"), ("2DBox_US_0003.npz", "litemedsam"),
        ("2DBox_MR_0002.npz", "swiftmedsam-v2"), ("2DBox_MR_0004.npz", "swiftmedsam-v2")]
    assert "2DBox_MR_0002.npz shape=64x64x3 boxes=1 model=swiftmedsam-v2" in caplog.text
    assert "model auto (MR: swiftmedsam-v2, Microscope: swiftmedsam-v2, others: litemedsam)" in caplog.text


def test_auto_takes_no_checkpoint_and_a_missing_export_stops_the_run_before_any_case(
    tmp_path: Path, exported_litemedsam: list, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="--checkpoint holds one model's weights"):
        build_segmenter(RunSettings(model=AUTO, backend="torch", checkpoint=tmp_path / "w.pth"))
    with pytest.raises(ValueError, match="goes with --model auto"):
        Segmenter(RunSettings(model="litemedsam"), Loads(), ROUTING)
    routing = read_routing()
    if "swiftmedsam-v2" not in routing.models():
        pytest.skip("the shipped table routes nothing to the student")

    def without_student_int8(model: str) -> ExportRecord:
        """The export record as read, but as if the student had been exported with --no-int8."""
        record = read_export(model)
        if model != "swiftmedsam-v2":
            return record
        return replace(record, files={fmt: parts for fmt, parts in record.files.items() if fmt != "openvino-int8"})

    # A CT case goes to LiteMedSAM, which has int8, but the table also routes to the student, which here does not.
    monkeypatch.setattr(registry, "read_export", without_student_int8)
    write_case(tmp_path / "in", "2DBox_CT_0001.npz")
    status = cli.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", AUTO, "--precision",
                       "int8", "--no-progress"])
    assert status == 2
    assert "swiftmedsam-v2 has no openvino-int8 export here" in caplog.text
    assert not (tmp_path / "out" / "2DBox_CT_0001.npz").exists()


def test_auto_on_real_cases_of_two_modalities_matches_each_model_alone(
    demo_data: Path, exported_litemedsam: list, tmp_path: Path
) -> None:
    """The 2D nuclei image as a Microscope case and the same image named as a CT case, with the real models."""
    routing = read_routing()
    source = demo_data / "inputs" / "2DBox_Microscope_0001.npz"
    inputs = tmp_path / "in"
    inputs.mkdir()
    names = ["2DBox_Microscope_0001.npz", "2DBox_CT_0002.npz"]
    for name in names:
        shutil.copy(source, inputs / name)

    def run(model: str, out: str) -> None:
        subprocess.run([sys.executable, "-m", "inference", "-i", str(inputs), "-o", str(tmp_path / out), "--model",
                        model, "--threads", "1", "--no-progress", "--record", str(tmp_path / f"{out}.json")],
                       check=True, capture_output=True, cwd=REPO)

    run(AUTO, "auto")
    record = json.loads((tmp_path / "auto.json").read_text())
    assert {row["case"]: row["model"] for row in record["cases"]} == {name: routing.model_for(name) for name in names}
    for model in sorted({routing.model_for(name) for name in names}):
        run(model, model)
        for name in names:
            if routing.model_for(name) == model:
                with np.load(tmp_path / "auto" / name) as auto, np.load(tmp_path / model / name) as alone:
                    np.testing.assert_array_equal(auto["segs"], alone["segs"])


def test_the_measurement_routes_a_modality_away_from_the_fallback_only_where_another_model_scores_higher() -> None:
    from training.routing import CaseScore, by_case_set, by_modality

    def rows(model_scores: dict[str, float]) -> list[CaseScore]:
        return [CaseScore("heldout" if "_09" in case else "demo", case, dsc, dsc / 2)
                for case, dsc in model_scores.items()]

    scores = {
        "litemedsam": rows({"2DBox_Fundus_0001.npz": 0.9, "3DBox_MR_0002.npz": 0.4, "3DBox_MR_0903.npz": 0.5,
                            "2DBox_US_0004.npz": 0.6}),
        "swiftmedsam-v2": rows({"2DBox_Fundus_0001.npz": 0.8, "3DBox_MR_0002.npz": 0.6, "3DBox_MR_0903.npz": 0.45,
                                "2DBox_US_0004.npz": 0.6}),
    }
    table = by_modality(scores)
    assert {name: (m.model, m.cases) for name, m in table.items()} == {
        "Fundus": ("litemedsam", 1), "MR": ("swiftmedsam-v2", 2), "US": ("litemedsam", 1)}  # a tie keeps the fallback
    assert table["MR"].dsc == {"litemedsam": 0.45, "swiftmedsam-v2": 0.525}
    sets = by_case_set(scores, table)
    # auto takes each case from its modality's model: demo = Fundus 0.9, MR 0.6, US 0.6; held out = MR 0.45.
    assert sets["demo"]["auto"][0] == pytest.approx(0.7) and sets["heldout"]["auto"][0] == pytest.approx(0.45)
    assert sets["demo"]["litemedsam"][0] == pytest.approx(1.9 / 3)
