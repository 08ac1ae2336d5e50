"""`memsoak-demo-engine` / `python -m memsoak.demo_engine`: start the demo engine under uvicorn.

Flags mirror the settings table (`--llm-latency-ms` = `DEMO_LLM_LATENCY_MS`, ...). Settings and
the database are checked before uvicorn starts, so a mistake is one line on stderr and exit
status 2. Without DATABASE_URL it creates a SQLite file in a fresh temp dir, shared by all
workers, and removes it on exit. Resolved settings are exported to the environment, which is how
uvicorn's worker processes (`--workers N`) build the same engine from `memsoak.demo_engine.app:app`.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from dataclasses import fields, replace

from .settings import HELP, Settings, SettingsError, env_name, export_settings, flag_name, load_settings
from .storage import preflight


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memsoak-demo-engine",
                                     description="Aria-compatible chat engine with planted leaks.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--access-log", action="store_true", help="log every request (costs CPU)")
    for field in fields(Settings):
        switch = {"nargs": "?", "const": "1"} if isinstance(field.default, bool) else {}
        parser.add_argument(flag_name(field.name), dest=field.name, default=None, metavar="VALUE",
                            help=f"{HELP[field.name]} (env {env_name(field.name)}, default {field.default!r})",
                            **switch)  # type: ignore[arg-type]
    return parser


def _exit_on_signal(signum: int, _frame: object) -> None:
    # uvicorn restores this handler and re-raises the signal it caught once it has shut down;
    # exiting through SystemExit (not the default handler) lets the temp database be removed.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    own_tmp: str | None = None
    try:
        settings = load_settings({field.name: getattr(args, field.name) for field in fields(Settings)})
        if args.workers < 1:
            raise SettingsError("--workers must be >= 1")
        if not settings.database_url:
            own_tmp = tempfile.mkdtemp(prefix="memsoak-demo-engine-")
            settings = replace(settings, database_url=f"sqlite:///{own_tmp}/engine.sqlite3")
        preflight(settings.database_url)
    except ValueError as error:  # SettingsError is a ValueError too
        print(f"memsoak-demo-engine: error: {error}", file=sys.stderr)
        if own_tmp:
            shutil.rmtree(own_tmp, ignore_errors=True)
        return 2
    export_settings(settings)
    signal.signal(signal.SIGTERM, _exit_on_signal)

    import uvicorn

    storage = ("postgresql" if settings.database_url.startswith("postgres")
               else f"sqlite at {settings.database_url.removeprefix('sqlite:///')}")
    mode = "strict (real Aria protocol)" if settings.strict else "demo"
    print(f"memsoak-demo-engine: serving http://{args.host}:{args.port} (storage {storage}, "
          f"leaks: {settings.leaks or 'none'}, mode {mode})", file=sys.stderr, flush=True)
    try:
        uvicorn.run(f"{__package__}.app:app", host=args.host, port=args.port, workers=args.workers,
                    log_level=args.log_level, access_log=args.access_log, timeout_graceful_shutdown=5)
    finally:
        if own_tmp:
            shutil.rmtree(own_tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
