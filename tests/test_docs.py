"""The docs: a short README, no reference outside the repository, every CLI option documented and none stale.

The command-line modules are found in the tree (the packages pyproject.toml declares:
each `__main__.py`, and each module with a `__main__` block), so the checks follow
the code as it moves. Each module's `--help` runs in a fresh interpreter, all in parallel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_LIMIT = 15_000
# A long option as argparse prints it and as the docs write it.
OPTION = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")
MAIN_BLOCK = re.compile(r"""^if __name__ == ["']__main__["']\s*:""", re.M)
# argparse's usage shows a subparsers argument as `{a,b,c} ...`.
SUBCOMMANDS = re.compile(r"\{([\w,-]+)\} \.\.\.")
# Written in two parts so that this file does not hold what it looks for.
OUTSIDE = "../" + "shared"
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)
DOCUMENTED_COMMAND = re.compile(r"python3? -m ([A-Za-z_][\w.]*)")


def doc_files() -> list[Path]:
    """README.md, CHANGELOG.md and docs/*.md, those that exist."""
    files = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
    return [path for path in files if path.is_file()]


def reference_docs() -> list[Path]:
    """README.md and docs/*.md: where commands and options are documented (the changelog names past ones)."""
    return [path for path in doc_files() if path.name != "CHANGELOG.md"]


def docs_text() -> str:
    """The text of the reference docs."""
    return "\n".join(path.read_text() for path in reference_docs())


# ---------------------------------------------------------------- the command-line modules


@dataclass
class Cli:
    """A module runnable with `python -m`: its options, and its subcommands' options."""

    module: str
    source: Path
    options: set[str] = field(default_factory=set)
    subcommands: dict[str, set[str]] = field(default_factory=dict)

    def all_options(self) -> set[str]:
        """Options of the module and of all its subcommands."""
        return self.options.union(*self.subcommands.values())


def project_packages() -> list[str]:
    """The packages pyproject.toml declares that exist in the tree."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    return [name for name in declared if (REPO / name.replace(".", "/") / "__init__.py").is_file()]


def runnable_modules() -> dict[str, Path]:
    """Module name -> the file `python -m` runs, for every runnable module of the project's packages."""
    modules = {}
    for package in project_packages():
        folder = REPO / package.replace(".", "/")
        if (folder / "__main__.py").is_file():
            modules[package] = folder / "__main__.py"
        for path in sorted(folder.glob("*.py")):
            if path.stem not in ("__init__", "__main__") and MAIN_BLOCK.search(path.read_text()):
                modules[f"{package}.{path.stem}"] = path
    return modules


def run_help(args: list[str]) -> str:
    """`python -m ARGS --help`; fails the test (naming the command) unless it exits 0."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", *args, "--help"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    if result.returncode != 0:
        pytest.fail(f"python -m {' '.join(args)} --help exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result.stdout


def help_options(text: str) -> set[str]:
    """The long options of an argparse help: from the usage block and the option lines, not the prose."""
    usage, _, rest = text.partition("\n\n")
    found = set(OPTION.findall(usage))
    for line in rest.splitlines():
        if re.match(r"\s+-", line):
            found.update(OPTION.findall(re.split(r"\s{2,}", line.strip())[0]))
    return found - {"--help"}


@cache
def clis() -> dict[str, Cli]:
    """Every runnable module with the options its --help lists (subcommands too); the helps run in parallel."""
    found = {module: Cli(module, source) for module, source in runnable_modules().items()}
    workers = max(2, min(8, os.cpu_count() or 2))
    with ThreadPoolExecutor(workers) as pool:
        helps = dict(zip(found, pool.map(run_help, [[module] for module in found])))
        subcommands = [(cli.module, name) for cli in found.values()
                       for group in SUBCOMMANDS.findall(helps[cli.module].partition("\n\n")[0])
                       for name in group.split(",")]
        sub_helps = pool.map(run_help, [[module, name] for module, name in subcommands])
        for (module, name), text in zip(subcommands, sub_helps):
            found[module].subcommands[name] = help_options(text)
    for module, text in helps.items():
        found[module].options = help_options(text)
    return found


# ---------------------------------------------------------------- commands written in the docs


@dataclass(frozen=True)
class DocumentedCommand:
    """`python -m MODULE ...` as the docs write it: where, the module, the words after it."""

    where: str
    module: str
    words: str


def code_texts(text: str) -> list[str]:
    """The code of a Markdown text: each line of its fenced blocks (continuations joined, comments cut), each inline span."""
    parts = re.split(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S)
    codes = []
    for index, part in enumerate(parts):
        if index % 2:  # a fenced block
            joined = re.sub(r"\\\n", " ", part)
            codes += [re.sub(r"(^|\s)#.*$", "", line) for line in joined.splitlines()]
        else:
            codes += re.findall(r"`([^`]+)`", part)
    return codes


def documented_commands() -> list[DocumentedCommand]:
    """Every `python -m MODULE ...` of the project's packages in the docs, with what follows it up to the next command."""
    packages = {name.split(".")[0] for name in project_packages()}
    commands = []
    for path in reference_docs():
        for code in code_texts(path.read_text()):
            matches = list(DOCUMENTED_COMMAND.finditer(code))
            for match, after in zip(matches, matches[1:] + [None]):
                module = match.group(1).rstrip(".")
                if module.split(".")[0] not in packages:
                    continue  # python -m pytest, pip, venv
                words = code[match.end(): after.start() if after else len(code)]
                words = re.split(r"&&|;", words)[0]
                commands.append(DocumentedCommand(path.relative_to(REPO).as_posix(), module, words))
    return commands


# ---------------------------------------------------------------- the tests


def test_readme_is_short() -> None:
    length = len((REPO / "README.md").read_text())
    assert length <= README_LIMIT, f"README.md has {length:,} characters, more than {README_LIMIT:,}"


def tracked_text_files() -> list[Path]:
    """Tracked files that exist and read as UTF-8 text, and the docs (tracked or not)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    paths = {REPO / name for name in listed.stdout.split("\0") if name} | set(doc_files())
    texts = []
    for path in sorted(paths):
        if not path.is_file():
            continue
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue
        texts.append(path)
    return texts


def test_no_file_points_outside_the_repository() -> None:
    wrong = [path.relative_to(REPO).as_posix() for path in tracked_text_files() if OUTSIDE in path.read_text()]
    assert wrong == []


def test_docs_link_nothing_on_the_web() -> None:
    wrong = [f"{path.relative_to(REPO)}: {url}" for path in doc_files()
             for url in re.findall(r"https?://\S+", path.read_text())]
    assert wrong == []


def test_every_relative_link_of_the_docs_is_a_file_of_the_repository() -> None:
    broken = []
    for path in doc_files():
        text = path.read_text()
        for target in MARKDOWN_LINK.findall(text) + REFERENCE_LINK.findall(text):
            file = target.split("#", 1)[0]
            if not file:
                continue  # a heading of the same page
            resolved = (path.parent / file).resolve()
            inside = resolved == REPO or REPO in resolved.parents
            if not inside or not resolved.exists():
                broken.append(f"{path.relative_to(REPO)}: {target}")
    assert broken == []


def test_the_command_line_modules_are_found() -> None:
    modules = set(runnable_modules())
    assert {"inference", "checkpoints", "inference.export", "evaluation.metrics"} <= modules


def test_every_command_line_module_is_documented() -> None:
    written = {command.module for command in documented_commands()}
    assert sorted(set(clis()) - written) == []


def test_every_option_of_every_command_is_documented() -> None:
    documented = set(OPTION.findall(docs_text()))
    missing = [f"python -m {cli.module}: {option}" for cli in clis().values()
               for option in sorted(cli.all_options() - documented)]
    assert missing == []


def test_every_documented_command_exists_with_the_options_written() -> None:
    known = clis()
    wrong = []
    for command in documented_commands():
        cli = known.get(command.module)
        if cli is None:
            wrong.append(f"{command.where}: python -m {command.module} is no runnable module")
            continue
        words = command.words.split()
        if cli.subcommands and words and words[0] in cli.subcommands:
            offered = cli.subcommands[words[0]]
        else:
            offered = cli.options
        wrong += [f"{command.where}: python -m {command.module} has no {option}"
                  for option in OPTION.findall(command.words) if option not in offered]
    assert wrong == []
