"""End-to-end tests of the inference image, run the ways users and the organizers run it.

Skipped (with the reason shown by ``pytest -rs``) when no Docker daemon answers or the
image is absent; docker/ci_docker.sh brings both up. The image is named by
MEDSAM_IMAGE (default medsam-laptop:latest).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

IMAGE = os.environ.get("MEDSAM_IMAGE", "medsam-laptop:latest")
RUN_TIMEOUT_S = 900
# When the tests run as root, the case folders belong to this user instead, so that
# reading and deleting the outputs is checked for an ordinary host user.
HOST_UID = HOST_GID = 65534


def docker_unavailable_reason() -> str | None:
    """Why the image cannot be run here, or None if it can."""
    if shutil.which("docker") is None:
        return "docker CLI not installed (docker/ci_docker.sh installs it)"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
        if info.returncode != 0:
            return "no Docker daemon answers to `docker info` (docker/ci_docker.sh starts one)"
        image = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"docker does not respond: {err}"
    if image.returncode != 0:
        return f"image {IMAGE} absent (build it with docker/build_image.sh)"
    return None


@pytest.fixture(scope="module")
def docker_image() -> str:
    """The image name; skips the module when Docker or the image is unavailable."""
    reason = docker_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    return IMAGE


@pytest.fixture(scope="module")
def case_source(demo_data: Path) -> Path:
    """Folder with the real demo cases: inputs/*.npz and gts/*.npz."""
    return demo_data


def pick_cases(source: Path, prefixes: tuple[str, ...] = ("2D", "3D")) -> list[Path]:
    """The smallest case of each kind in prefixes ("2D", "3D") that the source has, else the smallest case."""
    inputs = sorted((source / "inputs").glob("*.npz"))
    assert inputs, f"no cases in {source / 'inputs'}"
    picked = []
    for prefix in prefixes:
        kind = [p for p in inputs if p.name.startswith(prefix)]
        if kind:
            picked.append(min(kind, key=lambda p: p.stat().st_size))
    return picked or [min(inputs, key=lambda p: p.stat().st_size)]


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A scratch folder owned by the host user (HOST_UID when the tests run as root)."""
    folder = Path(tempfile.mkdtemp(prefix="medsam-docker-test-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(folder, HOST_UID, HOST_GID)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stage_inputs(workdir: Path, case: Path) -> Path:
    """Copy one case alone into workdir/inputs (as the organizers time cases), owned by the host user."""
    inputs = workdir / "inputs"
    inputs.mkdir()
    shutil.copy(case, inputs / case.name)
    if os.geteuid() == 0:
        for path in (inputs, inputs / case.name):
            os.chown(path, HOST_UID, HOST_GID)
    return inputs


def run_container(command: list[str]) -> float:
    """Run a docker command; fail with its output if it exits non-zero; return wall seconds."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    return seconds


def expected_shape(case: Path, source: Path) -> tuple[int, ...]:
    """Spatial shape of the case, from its ground truth."""
    with np.load(source / "gts" / case.name, allow_pickle=False) as data:
        return tuple(data["gts"].shape)


def check_output(output: Path, case: Path, source: Path) -> None:
    """The output npz holds a uint16 label map of the case's shape with labels 1..N present."""
    assert output.is_file(), f"{output} was not written"
    with np.load(output, allow_pickle=False) as data:
        assert "segs" in data.files, f"{output.name}: keys {data.files}, expected 'segs'"
        segs = data["segs"]
    with np.load(case, allow_pickle=False) as data:
        n_boxes = len(data["boxes"])
    assert segs.dtype == np.uint16, f"{output.name}: dtype {segs.dtype}"
    assert segs.shape == expected_shape(case, source), f"{output.name}: shape {segs.shape}"
    labels = np.unique(segs)
    assert labels.max() > 0, f"{output.name}: empty segmentation"
    assert labels.max() <= n_boxes, f"{output.name}: label {labels.max()} > {n_boxes} boxes"


def check_host_user_can_read_and_delete(outputs: Path) -> None:
    """The host user (not root) can read every output file and delete it."""
    files = sorted(outputs.iterdir())
    assert files, f"{outputs} is empty"
    if os.geteuid() != 0:
        for path in files:
            path.read_bytes()
            path.unlink()
        return
    for path in files:
        assert (path.stat().st_uid, path.stat().st_gid) == (HOST_UID, HOST_GID), f"{path} left owned by root"
    # Root can always delete: check as the host user instead.
    script = 'for f in "$@"; do cat "$f" > /dev/null && rm "$f" || exit 1; done'
    result = subprocess.run(
        ["sh", "-c", script, "sh", *map(str, files)],
        user=HOST_UID,
        group=HOST_GID,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"host user cannot read/delete outputs: {result.stderr}"
    assert not any(p.exists() for p in files)


def test_docker_run_with_one_cpu(docker_image: str, case_source: Path, workdir: Path) -> None:
    """`docker run --cpus=1 --network none -m 8G` with the default command segments a 2D case."""
    # 2D only: one core makes a 3D case slow; the organizers' test covers 3D.
    for case in pick_cases(case_source, ("2D",)):
        case_dir = workdir / case.stem
        case_dir.mkdir()
        if os.geteuid() == 0:
            os.chown(case_dir, HOST_UID, HOST_GID)
        inputs = stage_inputs(case_dir, case)
        outputs = case_dir / "outputs"
        outputs.mkdir()
        if os.geteuid() == 0:
            os.chown(outputs, HOST_UID, HOST_GID)
        seconds = run_container([
            "docker", "run", "--rm", "--cpus=1", "--network", "none", "-m", "8G",
            "-v", f"{inputs}:/workspace/inputs", "-v", f"{outputs}:/workspace/outputs",
            docker_image,
        ])  # fmt: skip
        print(f"docker run --cpus=1 {case.name}: {seconds:.2f}s wall")
        check_output(outputs / case.name, case, case_source)
        check_host_user_can_read_and_delete(outputs)


def test_organizers_command(docker_image: str, case_source: Path, workdir: Path) -> None:
    """The organizers' `docker container run ... /bin/bash -c "sh predict.sh"`, outputs folder not pre-made."""
    for case in pick_cases(case_source):
        case_dir = workdir / case.stem
        case_dir.mkdir()
        if os.geteuid() == 0:
            os.chown(case_dir, HOST_UID, HOST_GID)
        inputs = stage_inputs(case_dir, case)
        outputs = case_dir / "outputs"  # Docker creates it, owned by root.
        seconds = run_container([
            "docker", "container", "run", "-m", "8G", "--rm",
            "-v", f"{inputs}/:/workspace/inputs/", "-v", f"{outputs}/:/workspace/outputs/",
            docker_image, "/bin/bash", "-c", "sh predict.sh",
        ])  # fmt: skip
        print(f"organizers' command {case.name}: {seconds:.2f}s wall")
        check_output(outputs / case.name, case, case_source)
        check_host_user_can_read_and_delete(outputs)
