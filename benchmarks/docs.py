"""docs/benchmarks.md is written by the benchmarks: each replaces its own section with what it measured."""

from __future__ import annotations

import json
import platform
import re
import shlex
import sys
import time
from pathlib import Path

from common.atomic import write_atomic

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
INTRO = """# Benchmarks

Written by the benchmarks themselves (`python -m benchmarks`, `python -m benchmarks.memory`,
`python -m benchmarks.throughput`): each run replaces its own section. Speed figures are ratios
measured side by side in one run on one machine; absolute seconds differ from one CPU to the next.
"""


# CPU features that change the ratios (OpenVINO's kernels, bf16 and int8 arithmetic), as /proc/cpuinfo names them.
SPEED_FEATURES = {"avx512f": "AVX-512", "avx512_vnni": "VNNI", "avx512_bf16": "AVX512-BF16", "amx_tile": "AMX"}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo with its family and the features that change speed ratios (e.g.
    'AMD EPYC, family 26, AVX-512 VNNI AVX512-BF16'), else what the platform module says."""
    try:
        fields = dict(line.partition(":")[::2] for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith(("model name", "cpu family", "flags")))
    except OSError:
        fields = {}
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    features = " ".join(name for flag, name in SPEED_FEATURES.items() if flag in flags) or "no AVX-512"
    return f"{fields['model name']}, family {fields.get('cpu family', '?')}, {features}"


# Options that say where results go, not what is measured: left out of the command a section names.
WHERE_TO = ("--out", "--docs", "--cache", "--organizers-repo")


def measured_command(module: str, argv: list[str]) -> list[str]:
    """`python -m MODULE` with the options of `argv` that change what is measured."""
    kept, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word in WHERE_TO:
            skip = True
        elif word != "--no-docs" and not word.startswith(tuple(f"{option}=" for option in WHERE_TO)):
            kept.append(word)
    return ["python", "-m", module, *kept]


def write_section(name: str, title: str, command: list[str], body: str, path: Path = DOCS) -> Path:
    """Replace (or add) section `name` of `path`: `title`, the `command` that measured it, when, on which CPU, `body`."""
    stamp = time.strftime("%Y-%m-%d")
    section = (f"<!-- begin {name} -->\n## {title}\n\n`{shlex.join(command)}`, {stamp}, {cpu_model()}.\n\n"
               f"{body.strip()}\n<!-- end {name} -->\n")
    text = path.read_text() if path.is_file() else INTRO
    pattern = re.compile(rf"<!-- begin {re.escape(name)} -->.*?<!-- end {re.escape(name)} -->\n", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    return write_atomic(path, text)


def publish(out: Path, stem: str, text: str, data: object, module: str, argv: list[str] | None,
            section: tuple[str, str] | None, docs: Path = DOCS) -> None:
    """Save a run's table as `out/STEM.md` and its data as `out/STEM.json`; with `section` (name, title), also
    replace that section of `docs`, naming `python -m MODULE` with the measuring options of `argv` (None: the CLI's)."""
    write_atomic(out / f"{stem}.md", text)
    write_atomic(out / f"{stem}.json", json.dumps(data, indent=2) + "\n")
    if section is not None:
        command = measured_command(module, sys.argv[1:] if argv is None else argv)
        write_section(*section, command, text, docs)
