"""memsoak-run's sitecustomize: chain to the sitecustomize this one shadows, then start the hook.

`memsoak-run` puts this directory first on PYTHONPATH, so every Python process of the command
(uvicorn and its spawned workers, gunicorn, `python -m ...`) runs it at start-up with no change to
the engine. It never stops the interpreter from starting: every failure is one line on stderr.
"""
import os
import sys


def _chain_to_shadowed() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    search = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", search)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # as site.py reports a failing sitecustomize
        print(f"Error in sitecustomize ({spec.origin}); set PYTHONVERBOSE for traceback: "
              f"{type(error).__name__}: {error}", file=sys.stderr)


def _start_hook() -> None:
    hook_path = os.environ.get("MEMSOAK_HOOK_PATH")
    if hook_path and hook_path not in sys.path:
        import importlib.util
        if importlib.util.find_spec("memsoak") is None:
            sys.path.append(hook_path)  # last: never shadow the engine's own modules
    try:
        if os.environ.get("MEMSOAK_MEMRAY_FILE"):
            from memsoak.profiler import memray_support
            memray_support.start_tracker_from_env()
        from memsoak import profiler
        profiler.install()
    except Exception as error:
        print(f"memsoak hook: not started in {sys.executable} (pid {os.getpid()}): "
              f"{type(error).__name__}: {error}", file=sys.stderr)


_chain_to_shadowed()
if os.environ.get("MEMSOAK_DISABLE", "") not in ("1", "true", "yes"):
    _start_hook()
