"""The manifest and export records: checksums, staleness, fetch idempotence, what git tracks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from checkpoints.__main__ import main as checkpoints_main
from checkpoints.manifest import (
    MANIFEST_PATH,
    RECORD_VERSION,
    ChecksumError,
    PinnedFile,
    checkpoint,
    checkpoint_for,
    exported_files,
    read_export,
    record_export,
    sha256_of,
    verify_export,
)

REPO = Path(__file__).resolve().parents[1]


def test_verify_rejects_wrong_size_and_wrong_hash(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"weights")
    good = PinnedFile.of(tmp_path / "w.bin")
    assert good.size == 7 and good.verify() == tmp_path / "w.bin"
    with pytest.raises(ChecksumError, match="size 7 bytes, recorded 8"):
        PinnedFile(good.path, 8, good.sha256).verify()
    with pytest.raises(ChecksumError, match="sha256 .* recorded 00"):
        PinnedFile(good.path, 7, "00" * 32).verify()
    with pytest.raises(ChecksumError, match="missing"):
        PinnedFile(tmp_path / "absent.bin", 7, good.sha256).verify()


def test_manifest_pins_the_litemedsam_wheel_member_and_holds_nothing_machine_specific() -> None:
    entry = checkpoint_for("litemedsam")
    assert entry.name == "lite_medsam" and checkpoint("lite_medsam") == entry
    assert entry.file.size == 39_370_479
    assert entry.file.sha256 == "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
    assert list(json.loads(MANIFEST_PATH.read_text())) == ["checkpoints"]
    with pytest.raises(KeyError, match="known: lite_medsam"):
        checkpoint("nope")
    with pytest.raises(ValueError, match="no checkpoint for 'nope'"):
        checkpoint_for("nope")


def test_export_record_round_trip_and_what_makes_it_fail(tmp_path: Path) -> None:
    weights = tmp_path / "student.pth"
    weights.write_bytes(b"student weights")
    export_dir = tmp_path / "exported"
    export_dir.mkdir()
    (export_dir / "m.encoder.onnx").write_bytes(b"encoder")
    (export_dir / "m.decoder.onnx").write_bytes(b"decoder")
    files = {"encoder": export_dir / "m.encoder.onnx", "decoder": export_dir / "m.decoder.onnx"}
    record_export("m", {"onnx": files}, weights, {"parity": {"mask_agreement": 1.0}}, export_dir)

    record = verify_export("m", export_dir)
    assert record.checkpoint == "student.pth"  # not a manifest checkpoint: named by its file
    assert record.checkpoint_sha256 == sha256_of(weights)
    assert record.details == {"parity": {"mask_agreement": 1.0}}
    assert exported_files("m", "onnx", export_dir) == files
    with pytest.raises(ChecksumError, match="m has no openvino export here"):
        exported_files("m", "openvino", export_dir)
    (export_dir / "m.decoder.onnx").write_bytes(b"decoded")
    with pytest.raises(ChecksumError, match="m.decoder.onnx: sha256"):
        verify_export("m", export_dir)
    with pytest.raises(ChecksumError, match="m.decoder.onnx: sha256"):  # the backends' way in checks too
        exported_files("m", "onnx", export_dir)
    # A part another format replaces is neither returned nor read.
    assert exported_files("m", "onnx", export_dir, exclude=("decoder",)) == {"encoder": files["encoder"]}
    with pytest.raises(ChecksumError, match="has not been exported here"):
        read_export("other", export_dir)
    with pytest.raises(ValueError, match="not in the export folder"):
        record_export("m", {"onnx": {"encoder": weights}}, weights, {}, export_dir)
    record_path = export_dir / "m.json"
    older = record_path.read_text().replace(f'"record_version": {RECORD_VERSION}', f'"record_version": {RECORD_VERSION - 1}')
    assert older != record_path.read_text()
    record_path.write_text(older)
    with pytest.raises(ChecksumError, match="older version of the export"):
        read_export("m", export_dir)


def test_an_export_from_an_older_manifest_checkpoint_is_stale(tmp_path: Path) -> None:
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"old weights")
    manifest = tmp_path / "manifest.json"
    entry = {"file": "weights.pth", "config": "litemedsam", "description": "d", "source": {"kind": "committed"},
             "size": weights.stat().st_size, "sha256": sha256_of(weights)}
    manifest.write_text(json.dumps({"checkpoints": {"w": entry}}))
    (tmp_path / "m.onnx").write_bytes(b"graph")
    record_export("m", {"onnx": {"model": tmp_path / "m.onnx"}}, weights, {}, tmp_path, manifest)
    assert verify_export("m", tmp_path, manifest).checkpoint == "w"
    entry["sha256"] = "11" * 32  # the manifest's weights changed since the export
    manifest.write_text(json.dumps({"checkpoints": {"w": entry}}))
    with pytest.raises(ChecksumError, match="exported from w .* export again"):
        verify_export("m", tmp_path, manifest)


def test_export_records_and_weights_are_not_tracked_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "checkpoints/exported/litemedsam.json", "checkpoints/weights/lite_medsam.pth"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert ignored.stdout.split() == ["checkpoints/exported/litemedsam.json", "checkpoints/weights/lite_medsam.pth"]


def test_fetch_is_idempotent_and_verify_passes(lite_medsam_checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    before = lite_medsam_checkpoint.stat().st_mtime_ns
    assert checkpoints_main(["fetch", "lite_medsam"]) == 0
    assert lite_medsam_checkpoint.stat().st_mtime_ns == before  # already there: not downloaded again
    assert "sha256 verified" in capsys.readouterr().out
    assert checkpoints_main(["verify"]) == 0
