"""memsoak's hook inside the engine: samples memory, keeps snapshots, serves them over HTTP.

    from memsoak import profiler
    hook = profiler.install(port=9477, interval=1.0)   # idempotent; never raises
    hook.port, hook.started, hook.error
    hook.stop()

Without code changes: `memsoak-run -- uvicorn app:app` loads the hook in every Python process of
the command through a sitecustomize. Standard library and psutil only; see docs/hook.md.
"""
from __future__ import annotations

from .config import HookConfig, load_config
from .hook import HOOK_VERSION, Hook, current, install
from .sampler import SAMPLE_FIELDS

__version__ = HOOK_VERSION
__all__ = ["install", "current", "Hook", "HookConfig", "load_config", "SAMPLE_FIELDS", "__version__"]
