"""Acceptance (issue 2): the demo engine under `memsoak-run`, driven over HTTP, read through the hook.

Each planted leak must show in the signal it imitates, by about the planted amount, and only
there: native -> RSS grows by ~ops x bytes while tracemalloc's traced heap stays flat;
session_state -> a snapshot diff names memsoak/demo_engine/leaks.py at the planted line as the top
growing site; fd -> open_fds grows by one per session (and asyncio_task -> one more task per
session, beyond the issue's list). A control engine with no leak planted
must show none of it, so these tests can fail. Every case runs on SQLite and on PostgreSQL.

To keep the suite fast, one engine per (storage, planted|control) runs the whole scenario once
(a message phase, then a session phase, each between two fresh samples) and the tests assert
on what it measured. The leaks do not cross phases: native is per message, the others per session.
"""
from __future__ import annotations

import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import httpx
import pytest

from demo_engine_procs import RunningEngine, engine_process, free_port, fresh_database, wait_until

# Four engines under the hook (two storages, planted and control), 10-16 s each to start and drive.
pytestmark = pytest.mark.slow

SESSIONS = "/api/engine/chat/sessions"
# No --tracemalloc-frames: the fixture's first snapshot starts tracing, so snapshots hold only
# what was allocated since (milliseconds to take) instead of the whole import-time heap (seconds).
HOOK_ARGS = ["--interval", "0.2"]
NATIVE_BYTES = 2 * 1024 * 1024
MESSAGES = 30
SESSIONS_CREATED = 30
PLANTED = f"native:{NATIVE_BYTES},session_state,fd,asyncio_task"
CASES = [pytest.param(("sqlite", True), id="sqlite-planted"),
         pytest.param(("sqlite", False), id="sqlite-control"),
         pytest.param(("postgresql", True), id="postgresql-planted", marks=pytest.mark.postgres),
         pytest.param(("postgresql", False), id="postgresql-control", marks=pytest.mark.postgres)]


@contextmanager
def hooked_engine(database_url: str, leaks: str) -> Iterator[RunningEngine]:
    args = ["--database-url", database_url, "--llm-latency-ms", "2"]
    if leaks:
        args += ["--leaks", leaks]
    # these tests read exact tracemalloc diffs (the first snapshot starts tracing); the sampled
    # tracker's own tests are in tests/profiler/test_alloc_sampler.py
    with engine_process(args, env={"MEMSOAK_ALLOC_MODE": "tracemalloc"}, hook_port=free_port(),
                        hook_args=HOOK_ARGS) as running:
        yield running


def _hook(running: RunningEngine, path: str, method: str = "GET") -> dict[str, Any]:
    response = httpx.request(method, f"{running.hook_url}{path}", timeout=30)
    assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text[:300]}"
    return response.json()


def fresh_sample(running: RunningEngine) -> dict[str, Any]:
    """A sample the hook took after this call started (so after everything done before it)."""
    since = _hook(running, "/health")["last_seq"]
    found = wait_until(lambda: _hook(running, f"/samples?since={since}")["samples"], 30,
                       "a new hook sample")
    return found[-1]


def _sessions(running: RunningEngine, count: int) -> list[str]:
    with running.client() as client:
        ids = [client.post(SESSIONS).json()["id"] for _ in range(count)]
    assert len(set(ids)) == count
    return ids


def _messages(running: RunningEngine, session_ids: list[str], count: int) -> None:
    with running.client() as client:
        for index in range(count):
            sid = session_ids[index % len(session_ids)]
            response = client.post(f"{SESSIONS}/{sid}/messages",
                                   json={"content": f"message {index} {uuid.uuid4().hex}"})
            assert response.status_code == 200, response.text


def _ops(running: RunningEngine, leak: str) -> int:
    return running.health()["leaks"][leak]["ops"]


def _warm_up(running: RunningEngine) -> list[str]:
    """First requests fill lazy imports, pools and caches: keep them out of the measured interval."""
    ids = _sessions(running, 3)
    _messages(running, ids, 6)
    return ids


@dataclass
class Measured:
    planted: bool
    leaks: dict[str, Any]            # GET /api/health "leaks" at the end
    message_ops: int                 # native ops counted by the engine during the message phase
    rss_growth: int                  # message phase
    traced_growth: int               # message phase
    fd_growth: int                   # session phase
    task_growth: int                 # session phase
    diff: dict[str, Any]             # tracemalloc diff across the session phase


@pytest.fixture(scope="module", params=CASES)
def measured(request: pytest.FixtureRequest) -> Iterator[Measured]:
    kind, planted = request.param
    with ExitStack() as stack:
        pg_url = request.getfixturevalue("postgres_url") if kind == "postgresql" else None
        url = stack.enter_context(fresh_database(kind, pg_url))
        running = stack.enter_context(hooked_engine(url, PLANTED if planted else ""))
        assert _hook(running, "/snapshots/start", "POST").get("tracing_started") is True
        # the hook names the engine's own package, read from its command line (python -m memsoak.demo_engine)
        assert _hook(running, "/health")["engine_packages"] == ["memsoak"]
        ids = _warm_up(running)

        ops_before = _ops(running, "native") if planted else 0
        before = fresh_sample(running)
        _messages(running, ids, MESSAGES)
        after = fresh_sample(running)
        message_ops = (_ops(running, "native") - ops_before) if planted else 0

        _hook(running, "/snapshots/before", "POST")
        first = fresh_sample(running)
        _sessions(running, SESSIONS_CREATED)
        last = fresh_sample(running)
        _hook(running, "/snapshots/after", "POST")
        diff = _hook(running, "/diff?base=before&head=after&top=10")

        assert before["traced_current_bytes"] is not None, "the hook must be tracing for these tests"
        yield Measured(planted, running.health()["leaks"], message_ops,
                       after["rss_bytes"] - before["rss_bytes"],
                       after["traced_current_bytes"] - before["traced_current_bytes"],
                       last["open_fds"] - first["open_fds"],
                       last["asyncio_tasks"] - first["asyncio_tasks"], diff)


def test_native_leak_grows_rss_by_the_planted_amount_but_not_the_traced_heap(measured: Measured) -> None:
    if measured.planted:
        assert measured.message_ops == MESSAGES
        planted = measured.message_ops * measured.leaks["native"]["bytes_per_op"]
        assert 0.6 * planted <= measured.rss_growth <= 1.4 * planted, (measured.rss_growth, planted)
        assert measured.traced_growth < 0.05 * planted, (measured.traced_growth, planted)
    else:
        assert measured.leaks == {}
        assert measured.rss_growth < 0.3 * MESSAGES * NATIVE_BYTES, measured.rss_growth


def test_session_state_leak_is_the_top_growing_site_in_a_snapshot_diff(measured: Measured) -> None:
    by_size = measured.diff["by_size"]
    in_leaks_py = [site for site in by_size if site["file"].endswith("memsoak/demo_engine/leaks.py")]
    if measured.planted:
        file, line = measured.leaks["session_state"]["site"].rsplit(":", 1)
        top = by_size[0]
        assert top["file"].endswith(file) and top["line"] == int(line), by_size[:3]
        expected = SESSIONS_CREATED * measured.leaks["session_state"]["bytes_per_op"]
        assert 0.8 * expected <= top["size_diff"] <= 1.25 * expected, (top, expected)
        assert top["count_diff"] >= SESSIONS_CREATED
    else:
        assert not in_leaks_py or in_leaks_py[0]["size_diff"] < 4096, in_leaks_py


def test_fd_leak_grows_open_fds_by_one_per_session(measured: Measured) -> None:
    # +-2: the hook's own HTTP connection may or may not be open when a sample is taken
    expected = SESSIONS_CREATED if measured.planted else 0
    assert abs(measured.fd_growth - expected) <= 2, (measured.fd_growth, expected)


def test_asyncio_task_leak_grows_the_task_count_by_one_per_session(measured: Measured) -> None:
    expected = SESSIONS_CREATED if measured.planted else 0
    assert abs(measured.task_growth - expected) <= 2, (measured.task_growth, expected)
