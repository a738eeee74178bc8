"""The project's shape: one source of versions, declared packages, import layers without cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Each top-level package and the project packages it may import; anything else is a layering error.
ALLOWED_IMPORTS = {
    "common": set(),
    "casefiles": {"common"},
    "checkpoints": {"common"},
    "inference": {"common", "casefiles", "checkpoints"},
    "evaluation": {"common", "casefiles"},
    "convert": {"common", "casefiles", "inference"},
    "reference": {"common", "casefiles", "checkpoints", "inference"},
    "demo": {"common", "casefiles", "checkpoints", "inference"},
    "training": {"common", "casefiles", "checkpoints", "inference", "demo", "evaluation"},
    "benchmarks": {"common", "casefiles", "checkpoints", "inference", "evaluation", "demo", "reference"},
}


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    modules = {}
    for package in ALLOWED_IMPORTS:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The project modules a file imports (at any depth of the file, lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            # The longest known prefix: `from a.b import c` imports module a.b.c or a name of a.b.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def test_requirements_files_are_generated_from_pyproject() -> None:
    check = subprocess.run([sys.executable, "scripts/requirements.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_pyproject_declares_every_package_and_only_those() -> None:
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for package in ALLOWED_IMPORTS if (REPO / package).is_dir()
        for init in (REPO / package).rglob("__init__.py")
    }
    assert declared == on_disk


def test_packages_import_only_lower_layers() -> None:
    modules = project_modules()
    wrong = []
    for name, path in modules.items():
        top = name.split(".")[0]
        for target in imported_modules(path, set(modules)):
            target_top = target.split(".")[0]
            if target_top != top and target_top not in ALLOWED_IMPORTS[top]:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_no_import_cycles() -> None:
    modules = project_modules()
    graph = {name: imported_modules(path, set(modules)) - {name} for name, path in modules.items()}
    # A package's __init__ re-exporting its own submodules is not a cycle through them.
    for name in graph:
        graph[name] = {t for t in graph[name] if not (modules[name].name == "__init__.py" and t.startswith(name + "."))}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_tests_import_no_benchmark_module() -> None:
    modules = project_modules()
    wrong = [f"{path.name} imports {target}" for path in sorted((REPO / "tests").glob("*.py"))
             for target in imported_modules(path, set(modules)) if target.split(".")[0] == "benchmarks"]
    assert wrong == []


def test_the_inference_path_does_not_import_torch_or_onnx() -> None:
    code = (
        "import sys, inference.__main__, inference.registry, inference.segmenter, inference.pipeline\n"
        "heavy = sorted(m for m in ('torch', 'onnx', 'scipy', 'matplotlib') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def readme_layout() -> dict[str, str]:
    """Folder path -> its description, from the code block of README's Layout section."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    parent = current = ""
    for line in block.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].endswith("/"):
            nested = line.startswith("  ")
            parent = parent if nested else words[0]
            current = parent + words[0] if nested else words[0]
            entries[current] = " ".join(words[1:])
        else:
            entries[current] += " " + " ".join(words)
    return entries


def test_readme_layout_matches_the_tree() -> None:
    entries = readme_layout()
    folders = [p for p in REPO.iterdir() if p.is_dir() and not p.name.startswith(".")]
    ignored = subprocess.run(["git", "check-ignore", *[p.name for p in folders]], cwd=REPO, capture_output=True, text=True)
    top_level = {p.name + "/" for p in folders} - {name + "/" for name in ignored.stdout.split()}
    assert {e for e in entries if e.count("/") == 1} == top_level
    missing = []
    for package in ALLOWED_IMPORTS:
        for init in sorted((REPO / package).rglob("__init__.py")):
            folder = init.parent.relative_to(REPO).as_posix() + "/"
            if folder not in entries:
                missing.append(folder)
                continue
            words = set(entries[folder].translate(str.maketrans(",():;", "     ")).split())
            missing += [f"{folder}{m.name}" for m in sorted(init.parent.glob("*.py"))
                        if m.stem != "__init__" and m.stem not in words]
    assert missing == []
