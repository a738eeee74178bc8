"""Fetch and verify weight files: `python -m checkpoints {list,fetch,verify}`."""

from __future__ import annotations

import argparse
import sys

from checkpoints.fetch import DownloadError, fetch
from checkpoints.manifest import ChecksumError, checkpoints, exported_models, read_export, verify_export


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m checkpoints", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="describe every checkpoint and this machine's exports")
    fetch_cmd = sub.add_parser("fetch", help="download and verify checkpoints (idempotent)")
    fetch_cmd.add_argument("names", nargs="*", help="default: all")
    verify_cmd = sub.add_parser("verify", help="check files against the manifest and the export records")
    verify_cmd.add_argument("--exported", action="store_true", help="check only the exported models")
    args = parser.parse_args(argv)

    known = checkpoints()
    try:
        if args.command == "list":
            for entry in known.values():
                print(f"{entry.name}: config={entry.config} size={entry.file.size:,} sha256={entry.file.sha256}")
                print(f"    {entry.description}")
            for model in exported_models():
                record = read_export(model)
                for fmt, parts in record.files.items():
                    for part, file in parts.items():
                        print(f"{model} {fmt} {part}: {file.path.name} size={file.size:,} sha256={file.sha256}")
            return 0
        if args.command == "fetch":
            for name in args.names or list(known):
                print(f"{name}: {fetch(name)} (sha256 verified)")
            return 0
        if not args.exported:
            for entry in known.values():
                print(f"ok {entry.file.verify()}")
        models = exported_models()
        if args.exported and not models:
            raise ChecksumError("no export records: run python -m inference.export --check-data DIR")
        for model in models:
            record = verify_export(model)
            print(f"ok {model}: {', '.join(f.path.name for f in record.all_files())} (from {record.checkpoint})")
    except (ChecksumError, DownloadError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
