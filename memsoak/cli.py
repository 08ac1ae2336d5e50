"""The `memsoak` command: one module per subcommand in `memsoak/commands/`.

Each module defines NAME, HELP, `add_arguments(parser)` and `run(args) -> int`; adding a command is
one new file and one line in COMMANDS. Modules are imported only when needed, so a broken or missing
command does not take the others down.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from memsoak.contract import EXIT_BAD_CONFIG as BAD_CONFIG

COMMANDS: dict[str, str] = {
    "demo": "memsoak.commands.demo",
    "report": "memsoak.commands.report",
    "compare": "memsoak.commands.compare",
    "soak": "memsoak.commands.soak",
    "options": "memsoak.commands.options",
}


class _Parser(argparse.ArgumentParser):
    """Usage mistakes exit with the bad-configuration code and one line, like every memsoak error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(BAD_CONFIG, f"{self.prog}: {message} (see {self.prog} --help)\n")


# The base install is the hook alone (psutil); the commands run the Locust side, the analysis and,
# for `demo`, the demo engine: each names the extra that brings what it lacks.
EXTRA_FOR = {"demo": "all"}
_missing: dict[str, str] = {}


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        _missing[module_name] = getattr(error, "name", None) or str(error)
        return None


def _not_installed(command: str) -> str:
    module = _missing.get(COMMANDS[command], COMMANDS[command])
    extra = EXTRA_FOR.get(command, "locust")
    return (f"memsoak: the '{command}' command needs packages this install lacks (no module '{module}'): "
            f"pip install 'memsoak[{extra}]'")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = _Parser(prog="memsoak", description="Locust-based load-and-memory soak harness")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    loaded: dict[str, ModuleType] = {}
    for name, module_name in COMMANDS.items():
        module = _load(module_name)
        if module is None:
            continue
        loaded[name] = module
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
    return parser, loaded


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS and _load(COMMANDS[argv[0]]) is None:
        print(_not_installed(argv[0]), file=sys.stderr)
        return BAD_CONFIG
    engine_command: list[str] = []
    if argv and argv[0] == "soak" and "--" in argv:  # `memsoak soak [OPTIONS] -- ENGINE COMMAND`
        cut = argv.index("--")
        argv, engine_command = argv[:cut], argv[cut + 1:]
    parser, loaded = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(loaded.get(args.command or ""), "ACCEPTS_EXTRA", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra, args.engine_command = extra, engine_command
    if not args.command:
        parser.print_help()
        if not loaded:
            print(_not_installed("soak"), file=sys.stderr)
        return BAD_CONFIG
    return int(loaded[args.command].run(args))


if __name__ == "__main__":
    sys.exit(main())
