"""How the processes of one engine tree find each other: a registry directory of small JSON files.

`memsoak-run` creates the directory and names it in MEMSOAK_PEER_DIR. Every hooked process writes
`<pid>.json` (`{"pid", "port"}`) once its server is bound and removes it at exit. The process that
got the configured port (the primary, normally the first one started) lists the live peers in
/health and forwards a request carrying `?pid=N` to that peer's port, so the harness needs one
address for the whole tree.
"""
from __future__ import annotations

import json
import os
from typing import Any

from .procinfo import alive as _alive


def register(peer_dir: str, pid: int, port: int, primary: bool) -> str | None:
    path = os.path.join(peer_dir, f"{pid}.json")
    temp = f"{path}.tmp"
    with open(temp, "w") as handle:
        json.dump({"pid": pid, "port": port, "primary": primary}, handle)
    os.replace(temp, path)  # readers never see half a file
    return path


def unregister(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def list_peers(peer_dir: str | None, own_pid: int) -> list[dict[str, Any]]:
    """Live peers other than this process (files of dead pids are skipped and removed)."""
    if not peer_dir:
        return []
    found = []
    try:
        names = os.listdir(peer_dir)
    except OSError:
        return []
    for name in sorted(names):
        if not name.endswith(".json"):
            continue
        path = os.path.join(peer_dir, name)
        try:
            with open(path, "rb") as handle:  # binary: see procinfo.read_proc on text mode
                entry = json.loads(handle.read())
            pid, port = int(entry["pid"]), int(entry["port"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid == own_pid:
            continue
        if not _alive(pid):
            unregister(path)
            continue
        found.append({"pid": pid, "port": port})
    return found


def forward(host: str, port: int, method: str, path_and_query: str, token: str | None,
            timeout: float = 60.0) -> tuple[int, str, bytes]:
    """Send the request on to a peer hook; (status, content type, body)."""
    import urllib.error  # only the primary ever forwards: keep ssl & co out of the other processes
    import urllib.request

    target = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in target:
        target = f"[{target}]"
    request = urllib.request.Request(f"http://{target}:{port}{path_and_query}", method=method,
                                     data=b"" if method == "POST" else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()
