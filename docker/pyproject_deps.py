"""Print memsoak's runtime dependencies from pyproject.toml, one per line, for an image's deps layer.

Runtime dependencies are the base list (the hook: psutil) and every extra but `test`; an image picks
its own with `--without` or `--only`.

The Dockerfiles install dependencies before copying the code so that editing code does not
re-download them; this reads them from the one place they are declared instead of a second,
drifting requirements file. `--without` drops the ones an image does not need (the engine image
needs no Locust, the Locust image no web server), so each image stays small; `--only` keeps just
the named ones (the hook's own, when it is added to someone else's engine image). Standard library
only: it runs in a bare `python:*-slim`, or any engine's image, before anything is installed.
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalised project name, so `prometheus_client` matches `prometheus-client`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def all_runtime_deps(project: dict) -> list[str]:
    """The base dependencies and those of every runtime extra (all but `test`), each project once,
    in order; an extra's reference to the project itself (`memsoak[reports]`) adds nothing new."""
    own = canonical(project.get("name", ""))
    extras = project.get("optional-dependencies", {})
    specs, seen = [], set()
    for spec in [*project.get("dependencies", []),
                 *(s for extra, listed in extras.items() if extra != "test" for s in listed)]:
        match = _NAME.match(spec)
        name = canonical(match.group(1)) if match else ""
        if name and name != own and name not in seen:
            seen.add(name)
            specs.append(spec)
    return specs


def runtime_deps(pyproject: Path, without: set[str], only: set[str] | None = None) -> list[str]:
    """The runtime dependency strings (base and runtime extras) named in `only` (all when None) and
    not in `without`."""
    kept = []
    for spec in all_runtime_deps(tomllib.loads(pyproject.read_text())["project"]):
        name = canonical(_NAME.match(spec).group(1))
        if name not in without and (only is None or name in only):
            kept.append(spec)
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", nargs="?", default="pyproject.toml", type=Path)
    parser.add_argument("--without", default="", help="comma list of project names to leave out")
    parser.add_argument("--only", default="", help="comma list of the only project names to keep")
    args = parser.parse_args(argv)
    if not args.pyproject.is_file():
        print(f"error: {args.pyproject} not found: pass the path to memsoak's pyproject.toml",
              file=sys.stderr)
        return 2
    without = {canonical(name) for name in args.without.split(",") if name.strip()}
    only = {canonical(name) for name in args.only.split(",") if name.strip()} or None
    known = {canonical(_NAME.match(spec).group(1))
             for spec in all_runtime_deps(tomllib.loads(args.pyproject.read_text())["project"])}
    for flag, names in (("--without", without), ("--only", only or set())):
        unknown = sorted(names - known)
        if unknown:
            # A stale list means the image silently installs, or lacks, what it meant to.
            print(f"error: {flag} names {', '.join(unknown)} that pyproject.toml does not depend on: "
                  "update the Dockerfile's list", file=sys.stderr)
            return 2
    print("\n".join(runtime_deps(args.pyproject, without, only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
