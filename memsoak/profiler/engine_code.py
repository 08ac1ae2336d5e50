"""Which installed packages are the engine's own code, read from its command line.

The report names the engine's line behind an allocation made in the standard library or a
third-party package (memsoak/reports/stats/attribution.py walks past those frames). An engine that is itself
pip-installed (a Docker image, say) lives in site-packages too, and the walk then ran past all of
it to the console script's stub (`/usr/local/bin/memsoak-demo-engine:8`). The hook therefore says,
in /health, which top-level packages are the engine: the module of `python -m NAME`, the module a
console script runs (read from the script's own `from MODULE import FUNC` line, as pip writes it,
else its entry point in the engine's environment), and every
`module:attribute` argument (`uvicorn app.main:app`). Servers that only launch the app are not
the engine. Standard library only.
"""
from __future__ import annotations

import os
import re

LAUNCHERS = {"uvicorn", "gunicorn", "hypercorn", "daphne", "granian", "waitress", "celery", "python"}
# pip's (distlib's) console-script stub: `from uvicorn.main import main`, then `sys.exit(main())`
SCRIPT_IMPORT = re.compile(rb"^from\s+([A-Za-z_][\w.]*)\s+import\s+[A-Za-z_]\w*\s*$", re.M)
APP_SPEC = re.compile(r"^([A-Za-z_][\w]*)(?:\.[\w]+)*:[A-Za-z_][\w.]*(?:\(.*\))?$")


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _script_module(path: str) -> str | None:
    """The module a console script named like `path` runs: read from the stub itself when it is
    pip's, else from the engine's entry points. The stub first: importlib.metadata (and csv, zipfile,
    email) would otherwise stay in the engine's heap, where every full collection walks them."""
    try:
        with open(path, "rb") as stub:
            head = stub.read(4096)
    except OSError:
        head = b""
    if head.startswith(b"#!"):
        match = SCRIPT_IMPORT.search(head)
        if match and match.group(1) != b"__future__":
            return match.group(1).decode()
    name = os.path.basename(path)
    try:
        from importlib import metadata
        points = metadata.entry_points(group="console_scripts")
    except Exception:   # a broken distribution's metadata must not break /health
        return None
    for point in points:
        if point.name == name:
            return point.value.split(":", 1)[0].strip()
    return None


def engine_packages(cmdline: list[str]) -> list[str]:
    """Top-level package names of the engine's own code (may be empty; order of appearance)."""
    found: list[str] = []

    def add(name: str | None) -> None:
        if name and _top(name) not in LAUNCHERS and _top(name) not in found:
            found.append(_top(name))

    args = list(cmdline)
    if args and os.path.basename(args[0]).startswith("python"):
        args = args[1:]
    if "-m" in args and args.index("-m") + 1 < len(args):
        add(args[args.index("-m") + 1])
    elif args and not args[0].startswith("-"):
        if not args[0].endswith(".py"):
            add(_script_module(args[0]))
    for arg in args:
        match = APP_SPEC.match(arg)
        if match and "/" not in arg:
            add(match.group(1))
    return found
