"""End-to-end tests of the inference image, run the ways users and the organizers run it.

Skipped (with the reason shown by ``pytest -rs``) when no Docker daemon answers or the
image is absent; docker/ci_docker.sh brings both up. The image is named by
MEDSAM_IMAGE (default medsam-laptop:latest).
"""

from __future__ import annotations

import os
import shutil
import signal
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
# The pip index settings docker/build_image.sh passes to the build: secrets in some sites.
PIP_SETTINGS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST")
# Prints "<check>: <exit status>" for pip and ensurepip in the venv's and the system's python
# and for pip and build tools on PATH; every status must be non-zero.
NO_PIP_SCRIPT = """
base=$(python -c "import sys; print(sys._base_executable)")
for py in python "$base"; do
    for module in pip ensurepip; do "$py" -c "import $module" 2>/dev/null; echo "$py import $module: $?"; done
done
for tool in pip pip3 gcc cc make; do command -v "$tool" >/dev/null; echo "$tool on PATH: $?"; done
"""
# With --user, what the run needs and nothing more: no writes but to the outputs and /tmp, no
# network, one CPU, no capabilities, nothing gained from set-user-ID programs.
HARDENED = ["--read-only", "--tmpfs", "/tmp", "--network", "none", "--cpus=1", "-m", "8G", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges"]  # fmt: skip


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


def host_user() -> tuple[int, int]:
    """The uid and gid that own the case folders."""
    return (HOST_UID, HOST_GID) if os.geteuid() == 0 else (os.getuid(), os.getgid())


def host_folder(path: Path) -> Path:
    """Make the folder `path`, owned by the host user."""
    path.mkdir()
    if os.geteuid() == 0:
        os.chown(path, HOST_UID, HOST_GID)
    return path


def stage_inputs(workdir: Path, *cases: Path) -> Path:
    """Copy the cases into workdir/inputs (one alone, as the organizers time cases), owned by the host user."""
    inputs = host_folder(workdir / "inputs")
    for case in cases:
        shutil.copy(case, inputs / case.name)
        if os.geteuid() == 0:
            os.chown(inputs / case.name, HOST_UID, HOST_GID)
    return inputs


def run_container(command: list[str]) -> tuple[float, str]:
    """Run a docker command; fail with its output if it exits non-zero; return wall seconds and stdout."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    return seconds, result.stdout


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
        case_dir = host_folder(workdir / case.stem)
        inputs = stage_inputs(case_dir, case)
        outputs = host_folder(case_dir / "outputs")
        seconds, _ = run_container([
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
        case_dir = host_folder(workdir / case.stem)
        inputs = stage_inputs(case_dir, case)
        outputs = case_dir / "outputs"  # Docker creates it, owned by root.
        seconds, _ = run_container([
            "docker", "container", "run", "-m", "8G", "--rm",
            "-v", f"{inputs}/:/workspace/inputs/", "-v", f"{outputs}/:/workspace/outputs/",
            docker_image, "/bin/bash", "-c", "sh predict.sh",
        ])  # fmt: skip
        print(f"organizers' command {case.name}: {seconds:.2f}s wall")
        check_output(outputs / case.name, case, case_source)
        check_host_user_can_read_and_delete(outputs)


def test_slice_step_from_the_environment(docker_image: str, case_source: Path, workdir: Path) -> None:
    """`-e SLICE_STEP=3` reaches `python -m inference --slice-step 3` through predict.sh on a 3D case."""
    for case in pick_cases(case_source, ("3D",)):
        case_dir = host_folder(workdir / case.stem)
        inputs = stage_inputs(case_dir, case)
        outputs = host_folder(case_dir / "outputs")
        command = ["docker", "run", "--rm", "-m", "8G", "-e", "SLICE_STEP=3",
                   "-v", f"{inputs}:/workspace/inputs", "-v", f"{outputs}:/workspace/outputs", docker_image]
        result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "3D slice step 3" in result.stderr
        check_output(outputs / case.name, case, case_source)
        check_host_user_can_read_and_delete(outputs)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under folder with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_hardened_run(docker_image: str, case_source: Path, workdir: Path) -> None:
    """HARDENED flags as the host user: every case is segmented, and nothing is written but the outputs
    (the inputs are unchanged and /tmp is left empty)."""
    cases = pick_cases(case_source)
    inputs = stage_inputs(workdir, *cases)
    outputs = host_folder(workdir / "outputs")
    before = snapshot(inputs)
    uid, gid = host_user()
    # The image's own command, then what is left in /tmp, the one writable place besides the outputs.
    command = 'sh predict.sh; status=$?; echo "in /tmp:"; find /tmp -mindepth 1; exit $status'
    seconds, stdout = run_container([
        "docker", "run", "--rm", *HARDENED, "--user", f"{uid}:{gid}",
        "-v", f"{inputs}:/workspace/inputs", "-v", f"{outputs}:/workspace/outputs",
        docker_image, "sh", "-c", command,
    ])  # fmt: skip
    print(f"hardened run of {len(cases)} case(s): {seconds:.2f}s wall")
    assert stdout.split("in /tmp:", 1)[1].split() == []
    assert sorted(p.name for p in outputs.iterdir()) == sorted(case.name for case in cases)
    for case in cases:
        check_output(outputs / case.name, case, case_source)
    assert snapshot(inputs) == before
    assert sorted(p.name for p in workdir.iterdir()) == ["inputs", "outputs"]
    check_host_user_can_read_and_delete(outputs)


def wait_for_output(path: Path, container: str) -> None:
    """Wait until `path` exists; fail if the container exits first or RUN_TIMEOUT_S pass."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not path.exists():
        running = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container], capture_output=True,
                                 text=True, timeout=60).stdout.strip()
        assert running == "true" and time.monotonic() < deadline, f"{path.name} not written while {container} ran"
        time.sleep(0.5)


def test_docker_stop_ends_the_run_cleanly(docker_image: str, case_source: Path, workdir: Path) -> None:
    """`docker stop` (SIGTERM to predict.sh, PID 1) reaches python: the run stops within the grace period
    with status 128 + SIGTERM, leaves only complete outputs and still hands them to the host user."""
    first, *rest = cases = pick_cases(case_source)  # sorted by name: the 2D case runs first
    assert rest, "needs a second case to interrupt"
    inputs = stage_inputs(workdir, *cases)
    outputs = workdir / "outputs"
    name = f"medsam-stop-test-{os.getpid()}"
    subprocess.run([
        "docker", "run", "-d", "--name", name, "-m", "8G",
        "-v", f"{inputs}/:/workspace/inputs/", "-v", f"{outputs}/:/workspace/outputs/",
        docker_image, "/bin/bash", "-c", "sh predict.sh",
    ], check=True, capture_output=True, timeout=60)  # fmt: skip
    try:
        wait_for_output(outputs / first.name, name)
        start = time.perf_counter()
        subprocess.run(["docker", "stop", "-t", "60", name], check=True, capture_output=True, timeout=120)
        seconds = time.perf_counter() - start
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name], capture_output=True,
                               text=True, check=True, timeout=60)
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=60)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
    exit_code = int(state.stdout)
    print(f"docker stop took {seconds:.2f}s, exit status {exit_code}")
    # 128 + SIGTERM, as python -m inference exits when stopped (137 would be SIGKILL after the grace period).
    assert exit_code == 128 + signal.SIGTERM, f"exit status {exit_code}\n{logs.stderr[-3000:]}"
    assert seconds < 30, f"docker stop took {seconds:.1f}s: SIGTERM did not end the run"
    by_name = {case.name: case for case in cases}
    written = sorted(path.name for path in outputs.iterdir())
    assert first.name in written and set(written) <= by_name.keys(), written
    for written_name in written:
        check_output(outputs / written_name, by_name[written_name], case_source)
    check_host_user_can_read_and_delete(outputs)


def test_image_has_no_pip_build_tools_or_index_settings(docker_image: str) -> None:
    """pip (venv or system), ensurepip, compilers and make are absent; the build's pip index settings left no trace."""
    _, stdout = run_container(["docker", "run", "--rm", "--network", "none", docker_image, "sh", "-c", NO_PIP_SCRIPT])
    checks = dict(line.rsplit(": ", 1) for line in stdout.splitlines())
    assert len(checks) == 9, checks  # two interpreters (the system's is not the venv's), five tools
    found = [check for check, status in checks.items() if status == "0"]
    assert not found, f"present in the image: {found}"
    history = subprocess.run(["docker", "history", "--no-trunc", docker_image], capture_output=True, text=True,
                             check=True, timeout=60).stdout
    inspect = subprocess.run(["docker", "inspect", docker_image], capture_output=True, text=True, check=True,
                             timeout=60).stdout
    values = [os.environ[name] for name in PIP_SETTINGS if os.environ.get(name)]
    for text, source in ((history, "docker history"), (inspect, "docker inspect")):
        for secret in (*PIP_SETTINGS, *values):
            assert secret not in text, f"{secret} appears in {source}"
