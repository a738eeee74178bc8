"""Write requirements.txt and requirements-dev.txt from pyproject.toml, the one source of versions.

Usage: python scripts/requirements.py [--check]   (--check: exit 1 if a file differs)
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "# Generated from pyproject.toml by scripts/requirements.py; edit pyproject.toml, not this file.\n"


def rendered(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """File name -> content of the two requirements files."""
    project = tomllib.loads(pyproject.read_text())["project"]
    runtime = "# Runtime dependencies of the inference image (no torch).\n" + "".join(f"{r}\n" for r in project["dependencies"])
    dev = "# Development: reference models, export, evaluation, demo data and tests; Dask for parallel runs.\n"
    dev += "-r requirements.txt\n"
    extras = project["optional-dependencies"]
    dev += "".join(f"{r}\n" for r in [*extras["dev"], *extras["dask"]])
    return {"requirements.txt": HEADER + runtime, "requirements-dev.txt": HEADER + dev}


def main(argv: list[str] | None = None) -> int:
    """Write the files, or with --check report the ones that are out of date."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file differs")
    args = parser.parse_args(argv)
    stale = []
    for name, content in rendered().items():
        path = ROOT / name
        if path.is_file() and path.read_text() == content:
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(content)
            print(f"wrote {name}")
    for name in stale:
        print(f"{name} differs from pyproject.toml: run python scripts/requirements.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
