"""Runtime harness: one case at a time, local commands and (with a stand-in docker) containers."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluation.runtime.__main__ import main
from evaluation.runtime.harness import DockerOptions, docker_command, local_command, run_docker, run_local

# Stands in for `python -m inference`: checks it was given exactly one case, allocates
# 64 MiB (so that peak memory is visible) and writes a prediction.
PREDICTOR = """
import sys, pathlib, numpy as np
inputs, outputs = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
cases = sorted(inputs.glob("*.npz"))
assert len(cases) == 1, cases
ballast = np.ones(64 * 2**20, np.uint8)
with np.load(cases[0]) as data:
    np.savez_compressed(outputs / cases[0].name, segs=np.zeros(data["imgs"].shape[:2], np.uint16))
"""

# Stands in for the docker client: records its arguments, writes the container id and
# a cgroup memory.peak of 123 MiB under a fake cgroup root, then runs the "container".
FAKE_DOCKER = """#!{python}
import sys, pathlib, shutil, time
args = sys.argv[1:]
pathlib.Path({log!r}).write_text("\\n".join(args))
cidfile = pathlib.Path(args[args.index("--cidfile") + 1])
mounts = dict(reversed(args[i + 1].rsplit(":", 1)) for i, a in enumerate(args) if a == "-v")
cidfile.write_text("abc123")
cgroup = pathlib.Path({root!r}) / "system.slice" / "docker-abc123.scope"
cgroup.mkdir(parents=True, exist_ok=True)
(cgroup / "memory.peak").write_text(str(123 * 2**20))
time.sleep(0.4)
for case in pathlib.Path(mounts["/workspace/inputs/"]).glob("*.npz"):
    shutil.copy(case, pathlib.Path(mounts["/workspace/outputs/"]) / case.name)
"""


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    """An input folder with two small 2D cases."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    for number in (1, 2):
        np.savez_compressed(folder / f"2DBox_US_000{number}.npz", imgs=np.zeros((32, 32, 3), np.uint8),
                            boxes=np.array([[1, 1, 10, 10]]))
    return folder


@pytest.fixture()
def predictor(tmp_path: Path) -> str:
    """A local command template running the stand-in predictor."""
    script = tmp_path / "predictor.py"
    script.write_text(PREDICTOR)
    return f"{sys.executable} {script} {{inputs}} {{outputs}}"


def test_local_command_times_each_case_alone_and_records_peak_memory(inputs, predictor, tmp_path, capsys) -> None:
    out, saved = tmp_path / "runtime.csv", tmp_path / "saved"
    assert main(["--inputs", str(inputs), "--csv", str(out), "--command", predictor,
                 "--save-outputs", str(saved)]) == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["case"] for r in rows] == ["2DBox_US_0001.npz", "2DBox_US_0002.npz"]
    for row in rows:
        assert float(row["seconds"]) > 0
        assert float(row["peak_mb"]) >= 64
        assert row["ok"] == "true"
    assert sorted(p.name for p in saved.iterdir()) == ["2DBox_US_0001.npz", "2DBox_US_0002.npz"]
    assert "2 case(s) timed, 0 not ok" in capsys.readouterr().out


def test_missing_output_failure_and_timeout_are_not_ok(inputs) -> None:
    case = inputs / "2DBox_US_0001.npz"
    python = sys.executable
    silent = run_local(case, f"{python} -c pass {{inputs}} {{outputs}}")
    assert silent.timing.ok is False and silent.message == "no output file 2DBox_US_0001.npz"
    failing = run_local(case, f"{python} -c 'raise SystemExit(3)' {{inputs}} {{outputs}}")
    assert failing.timing.ok is False and failing.returncode == 3
    slow = run_local(case, f"{python} -c 'import time; time.sleep(30)' {{inputs}} {{outputs}}", timeout=0.5)
    assert slow.timing.ok is False and slow.message == "timed out"
    assert slow.timing.seconds < 10


def test_command_template_needs_both_folders() -> None:
    with pytest.raises(ValueError, match="inputs"):
        local_command("python -m inference", Path("/i"), Path("/o"))
    assert local_command("run -i {inputs} -o {outputs}", Path("/i"), Path("/o")) == ["run", "-i", "/i", "-o", "/o"]


def test_docker_command_is_the_organisers_line() -> None:
    command = docker_command(DockerOptions("team:latest"), Path("/tmp/in"), Path("/tmp/out"), Path("/tmp/cid"))
    assert command == [
        "docker", "container", "run", "-m", "8G", "--rm", "--cidfile", "/tmp/cid",
        "-v", "/tmp/in/:/workspace/inputs/", "-v", "/tmp/out/:/workspace/outputs/",
        "team:latest", "/bin/bash", "-c", "sh predict.sh",
    ]
    limited = docker_command(DockerOptions("team:latest", cpus=1), Path("/i"), Path("/o"), Path("/c"))
    assert limited[3:7] == ["-m", "8G", "--cpus", "1"]


def test_docker_run_reads_peak_memory_from_the_container_cgroup(inputs, tmp_path) -> None:
    log, root = tmp_path / "docker-args.txt", tmp_path / "cgroup"
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable, log=str(log), root=str(root)))
    docker.chmod(0o755)
    saved = tmp_path / "saved"
    run = run_docker(inputs / "2DBox_US_0002.npz", DockerOptions("team:latest", cpus=2.0, docker=str(docker)),
                     save_to=saved, cgroup_root=root)
    assert run.timing.ok is True, run.message
    assert run.timing.peak_mb == pytest.approx(123)
    assert run.timing.seconds >= 0.4
    assert (saved / "2DBox_US_0002.npz").is_file()
    args = log.read_text().splitlines()
    assert args[:6] == ["container", "run", "-m", "8G", "--cpus", "2.0"]
    assert args[-4:] == ["team:latest", "/bin/bash", "-c", "sh predict.sh"]


def test_docker_run_without_a_cgroup_gives_unknown_peak(inputs, tmp_path) -> None:
    docker = tmp_path / "docker"
    docker.write_text(f"#!{sys.executable}\nraise SystemExit(125)\n")
    docker.chmod(0o755)
    run = run_docker(inputs / "2DBox_US_0001.npz", DockerOptions("team:latest", docker=str(docker)),
                     cgroup_root=tmp_path / "none")
    assert run.timing.ok is False and run.message == "exit status 125"
    assert math.isnan(run.timing.peak_mb)


def test_cli_needs_an_image_or_a_command(inputs, tmp_path) -> None:
    with pytest.raises(SystemExit):
        main(["--inputs", str(inputs), "--csv", str(tmp_path / "r.csv")])
    assert main(["--inputs", str(inputs), "--csv", str(tmp_path / "r.csv"), "--command", "x {inputs} {outputs}",
                 "--cases", "3DBox_CT_0001.npz"]) == 2
