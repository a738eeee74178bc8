"""Time one case alone, as the organisers did: a fresh container (or local command) per case."""

from __future__ import annotations

import math
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common.cgroup import CGROUP_ROOT, memory_counter_files, read_number
from evaluation.runtime.table import Timing

CONTAINER_INPUTS = "/workspace/inputs/"
CONTAINER_OUTPUTS = "/workspace/outputs/"
# cgroup folders of a container, for the systemd and cgroupfs drivers, cgroup v2 then v1.
_CGROUP_DIRS = (
    "system.slice/docker-{id}.scope",
    "docker/{id}",
    "memory/system.slice/docker-{id}.scope",
    "memory/docker/{id}",
)


@dataclass(frozen=True)
class DockerOptions:
    """How to start the team's container; defaults are the organisers' command."""

    image: str
    memory: str = "8G"
    cpus: float | None = None
    docker: str = "docker"


def docker_command(options: DockerOptions, inputs: Path, outputs: Path, cidfile: Path) -> list[str]:
    """The organisers' `docker container run` line for one case, plus --cidfile to find its cgroup."""
    command = [options.docker, "container", "run", "-m", options.memory]
    if options.cpus is not None:
        command += ["--cpus", str(options.cpus)]
    command += [
        "--rm", "--cidfile", str(cidfile),
        "-v", f"{inputs}/:{CONTAINER_INPUTS}",
        "-v", f"{outputs}/:{CONTAINER_OUTPUTS}",
        options.image, "/bin/bash", "-c", "sh predict.sh",
    ]
    return command


def local_command(template: str, inputs: Path, outputs: Path) -> list[str]:
    """Split a command template, filling `{inputs}` and `{outputs}` with the case folders."""
    if "{inputs}" not in template or "{outputs}" not in template:
        raise ValueError("--command must contain {inputs} and {outputs}, e.g. "
                         "'python -m inference -i {inputs} -o {outputs}'")
    return [part.format(inputs=inputs, outputs=outputs) for part in shlex.split(template)]


class CgroupPeakSampler:
    """Samples a container's cgroup memory counters in a thread; keeps the largest value."""

    def __init__(self, cidfile: Path, cgroup_root: Path = CGROUP_ROOT, interval: float = 0.05) -> None:
        self._cidfile = cidfile
        self._root = cgroup_root
        self._interval = interval
        self._stop = threading.Event()
        self._peak_bytes = -1
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CgroupPeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        """Largest sampled memory use in MiB; NaN if the cgroup was never found."""
        return math.nan if self._peak_bytes < 0 else self._peak_bytes / 2**20

    def container_id(self) -> str | None:
        """The container id once docker has written the cid file."""
        try:
            return self._cidfile.read_text().strip() or None
        except OSError:
            return None

    def _counter_files(self, container: str) -> list[Path]:
        """The memory counter files of the container's cgroup that exist."""
        for pattern in _CGROUP_DIRS:
            folder = self._root / pattern.format(id=container)
            if folder.is_dir():
                return memory_counter_files(folder)
        return []

    def _run(self) -> None:
        """Poll until stopped; the cgroup disappears when the container exits (--rm)."""
        files: list[Path] = []
        while not self._stop.is_set():
            container = self.container_id()
            if container and not files:
                files = self._counter_files(container)
            for path in files:
                value = read_number(path)
                if value is not None:
                    self._peak_bytes = max(self._peak_bytes, value)
            self._stop.wait(self._interval)


@dataclass(frozen=True)
class CaseRun:
    """Result of one timed case."""

    timing: Timing
    returncode: int
    message: str


def _stage(case_file: Path, workdir: Path) -> tuple[Path, Path]:
    """Make inputs/ (holding only this case) and an empty outputs/ under `workdir`."""
    inputs, outputs = workdir / "inputs", workdir / "outputs"
    inputs.mkdir()
    outputs.mkdir()
    shutil.copy2(case_file, inputs / case_file.name)
    # The container may run as a non-root user: it must read inputs and write outputs.
    os.chmod(workdir, 0o755)
    os.chmod(inputs, 0o755)
    os.chmod(inputs / case_file.name, 0o644)
    os.chmod(outputs, 0o777)
    return inputs, outputs


def _kill_group(process: subprocess.Popen) -> None:
    """Kill a child started in its own session, with everything it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _finish(case_file: Path, outputs: Path, returncode: int, timed_out: bool, save_to: Path | None) -> tuple[bool, str]:
    """Check the output file appeared; copy it to `save_to` if asked."""
    produced = outputs / case_file.name
    if save_to is not None and produced.is_file():
        save_to.mkdir(parents=True, exist_ok=True)
        shutil.copy2(produced, save_to / case_file.name)
    if timed_out:
        return False, "timed out"
    if returncode != 0:
        return False, f"exit status {returncode}"
    if not produced.is_file():
        return False, f"no output file {case_file.name}"
    return True, "ok"


def run_local(case_file: Path, template: str, timeout: float | None = None, save_to: Path | None = None) -> CaseRun:
    """Time a local command on one case; peak memory is the child's max RSS (with its descendants)."""
    with tempfile.TemporaryDirectory(prefix="medsam-runtime-", ignore_cleanup_errors=True) as tmp:
        inputs, outputs = _stage(case_file, Path(tmp))
        command = local_command(template, inputs, outputs)
        expired = threading.Event()
        start = time.perf_counter()
        process = subprocess.Popen(command, start_new_session=True)

        def expire() -> None:
            expired.set()
            _kill_group(process)

        timer = threading.Timer(timeout, expire) if timeout else None
        if timer:
            timer.start()
        # wait4 gives this child's rusage, whose max RSS covers the children it waited for.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        if timer:
            timer.cancel()
        # Tell Popen the child is reaped, so it does not try to wait for it again.
        process.returncode = os.waitstatus_to_exitcode(status)
        ok, message = _finish(case_file, outputs, process.returncode, expired.is_set(), save_to)
    # Linux reports ru_maxrss in KiB.
    return CaseRun(Timing(seconds, usage.ru_maxrss / 1024, ok), process.returncode, message)


def run_docker(
    case_file: Path,
    options: DockerOptions,
    timeout: float | None = None,
    save_to: Path | None = None,
    cgroup_root: Path = CGROUP_ROOT,
) -> CaseRun:
    """Time a fresh container on one case, from `docker run` to its exit; peak memory from its cgroup."""
    with tempfile.TemporaryDirectory(prefix="medsam-runtime-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp)
        inputs, outputs = _stage(case_file, workdir)
        cidfile = workdir / "container.id"
        command = docker_command(options, inputs, outputs, cidfile)
        timed_out = False
        with CgroupPeakSampler(cidfile, cgroup_root) as sampler:
            start = time.perf_counter()
            process = subprocess.Popen(command, start_new_session=True)
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                # Killing the docker client would leave the container running.
                container = sampler.container_id()
                if container:
                    subprocess.run([options.docker, "kill", container], capture_output=True, check=False)
                _kill_group(process)
                returncode = process.wait()
            seconds = time.perf_counter() - start
        ok, message = _finish(case_file, outputs, returncode, timed_out, save_to)
        return CaseRun(Timing(seconds, sampler.peak_mb, ok), returncode, message)
