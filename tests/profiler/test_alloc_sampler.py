"""The sampled allocation tracker (memsoak/profiler/_sampler.c): estimates, stacks, frees, hook chaining,
a stress run under PYTHONMALLOC=debug, the hook's sampled mode end to end, and the fallback.

Each scenario runs in its own interpreter: the tracker replaces the process's allocator hooks, and
PYTHONMALLOC can only be chosen at start-up.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hookhelp import ALLOC_ENGINE, free_port, http, start, wait_for

ROOT = Path(__file__).parents[2]
PLANTED_LINE = next(number for number, text in enumerate(open(ALLOC_ENGINE), start=1)
                    if "# PLANTED" in text)

try:
    from memsoak.profiler import _memsoak_sampler  # noqa: F401
    BUILT = True
except ImportError:
    BUILT = False
needs_extension = pytest.mark.skipif(not BUILT, reason="memsoak.profiler._memsoak_sampler is not built here "
                                                       "(python setup.py build_ext --inplace)")


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 240) -> dict:
    """Run CODE in a fresh interpreter with this tree first on sys.path; it prints one JSON line."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert "Fatal Python error" not in done.stderr and "Debug memory block" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_extension
def test_estimates_are_unbiased_and_stacks_are_innermost_first() -> None:
    result = run_python("""
        import json, sys
        from memsoak.profiler import _memsoak_sampler as sampler
        kept = []
        def plant(n):
            for i in range(n):
                kept.append(bytearray(200 + i % 400))          # PLANTED
        def churn(n):
            for i in range(n):
                transient = [i] * 30
        def caller():
            plant(100000)
        sampler.start(sample_bytes=32 * 1024, max_frames=8, seed=12345)
        caller(); churn(100000)
        truth = sum(sys.getsizeof(b) for b in kept)             # objects and their buffers
        rows = sampler.snapshot(True)
        planted = [r for r in rows if r[0] and r[0][0][1] == 7]
        churned = [r for r in rows if r[0] and r[0][0][1] == 10]
        top = max(rows, key=lambda r: r[1])
        stats = sampler.stats()
        del kept[:]
        after_free = [r for r in sampler.snapshot(True) if r[0] and r[0][0][1] == 7]
        freed_stats = sampler.stats()
        print(json.dumps({"truth": truth, "planted": sum(r[1] for r in planted),
                          "top": top[0], "churn_live": sum(r[1] for r in churned),
                          "churn_total": sum(r[4] for r in sampler.snapshot(False) if r[0] and r[0][0][1] == 10),
                          "stats": stats, "after_free": sum(r[1] for r in after_free),
                          "live_after_free": freed_stats["live_samples"]}))
        hooked = sampler.stop()
        print(json.dumps({"hooked": hooked, "own": sampler.stats()["own_bytes"]}), file=sys.stderr)
    """)
    # ~40 MB planted at one sample per 32 KiB on average: ~1300 samples, sd ~3%
    assert 0.9 * result["truth"] <= result["planted"] <= 1.1 * result["truth"], result
    assert [line for _file, line in result["top"][:3]] == [7, 12, 14], result["top"]
    assert result["churn_live"] < 0.01 * result["truth"]  # transient lists were freed again
    assert result["churn_total"] > 0  # ... but their allocations were counted
    assert result["stats"]["failed"] is False and result["stats"]["domains_hooked"] == 2
    assert result["after_free"] == 0  # every sampled block of the planted site was seen freed


@needs_extension
def test_line_numbers_are_cached_and_stay_exact_when_code_objects_die() -> None:
    # Forty variants of one function, compiled and dropped in turn: the same size of code, the same
    # first line, the allocation on a different line in each (blank lines in between). A dropped code
    # object's memory goes to the next one, so a line cache keyed by the code object's address
    # would hand variant k the line of variant k-1; the cache holds each location table instead.
    result = run_python("""
        import gc, json
        from memsoak.profiler import _memsoak_sampler as sampler
        def lines_sampled(before):
            now = {r[0][0][1]: r[6] for r in sampler.snapshot(False) if r[0] and r[0][0][0] == "<variant>"}
            return {line: count - before.get(line, 0) for line, count in now.items() if count > before.get(line, 0)}, now
        sampler.start(sample_bytes=2048, max_frames=1, seed=99)
        seen, wrong, addresses = {}, [], set()
        for k in range(40):
            source = "def f(n):\\n    out = []\\n    for _ in range(n):\\n" + "\\n" * k + "        out.append(bytearray(256))\\n    return out\\n"
            namespace = {}
            exec(compile(source, "<variant>", "exec"), namespace)
            addresses.add(id(namespace["f"].__code__))
            kept = namespace["f"](400)
            new, seen = lines_sampled(seen)
            if set(new) - {1, 3} != {4 + k}:   # 1: the def itself; 3: the loop's own objects
                wrong.append([k, new])
            del kept, namespace
            gc.collect()
        def hot(n):
            return [bytearray(256) for _ in range(n)]
        for _ in range(50):
            hot(400)
        stats = sampler.stats()
        sampler.stop()
        print(json.dumps({"wrong": wrong, "addresses": len(addresses), "hits": stats["line_cache_hits"],
                          "misses": stats["line_cache_misses"], "samples": stats["samples"],
                          "after_stop": sampler.stats()["line_cache_hits"]}))
    """)
    assert result["wrong"] == [], result["wrong"]
    assert result["addresses"] < 40, "no code object reused an address: the test proves nothing"
    assert result["samples"] > 1500
    assert result["hits"] > 10 * result["misses"], result   # the hot loop's frames are looked up once
    assert result["after_stop"] == 0


@needs_extension
def test_a_snapshot_copy_outlived_by_its_tables_is_refused_not_read() -> None:
    # a copy points at the interned tracebacks (no frames copied); a stop or restart between the
    # copy and the reading of its rows frees them, and reading them then must be an error
    result = run_python("""
        import json
        from memsoak.profiler import _memsoak_sampler as sampler
        sampler.start(sample_bytes=1024, seed=5)
        kept = [bytearray(300) for _ in range(5000)]
        kept2 = [bytearray(300) for _ in range(5000)]
        kept3 = [bytearray(300) for _ in range(5000)]
        copy, count = sampler.snapshot_copy(True)
        first = sampler.snapshot_rows(copy, 0, 2)
        sampler.stop(); sampler.start(sample_bytes=1024, seed=6)
        more = [bytearray(300) for _ in range(5000)]
        try:
            sampler.snapshot_rows(copy, 2, count)
            refused = None
        except RuntimeError as error:
            refused = str(error)
        fresh, fresh_count = sampler.snapshot_copy(True)
        rows = sampler.snapshot_rows(fresh, 0, fresh_count)
        sampler.stop()
        print(json.dumps({"count": count, "first": len(first), "refused": refused, "fresh": len(rows),
                          "frames_ok": all(isinstance(r[0], tuple) and r[0] for r in rows)}))
    """)
    assert result["count"] > 2 and result["first"] == 2
    assert result["refused"] and "stopped or restarted" in result["refused"]
    assert result["fresh"] > 0 and result["frames_ok"]


@needs_extension
def test_estimates_are_unbiased_over_many_seeds() -> None:
    """40 independent samplings of the same 8 MB (16 KiB blocks at a 64 KiB mean): the errors
    average out to ~0 (sd of one run ~ sqrt(mean/growth) ~ 9%, of the mean of 40 ~ 1.4%)."""
    result = run_python("""
        import json, statistics, sys
        from memsoak.profiler import _memsoak_sampler as sampler
        errors = []
        for seed in range(1, 41):
            sampler.start(sample_bytes=65536, seed=seed * 7919)
            kept = [bytes(16384) for _ in range(500)]
            churn = [[bytearray(300) for _ in range(50)] for _ in range(100)]
            del churn
            estimate = sum(row[1] for row in sampler.snapshot(True) if row[0] and row[0][0][1] == 7)
            truth = sum(sys.getsizeof(block) for block in kept) + sys.getsizeof(kept)
            errors.append(estimate / truth - 1)
            sampler.stop()
        print(json.dumps({"mean": statistics.mean(errors), "sd": statistics.stdev(errors)}))
    """)
    assert abs(result["mean"]) < 0.045, result
    assert 0.03 < result["sd"] < 0.2, result  # it is a sampler: runs do differ


@needs_extension
def test_stop_unhooks_and_frees_its_own_memory_and_chains_under_tracemalloc() -> None:
    result = run_python("""
        import json, tracemalloc
        from memsoak.profiler import _memsoak_sampler as sampler
        out = {}
        for cycle in range(50):                      # start/stop cycles
            sampler.start(sample_bytes=4096, max_frames=4)
            junk = [bytes(100 + i) for i in range(2000)]
            assert sampler.stats()["samples"] > 0
            out["unhooked"] = sampler.stop()
            out["own_after_stop"] = sampler.stats()["own_bytes"]
            assert out["own_after_stop"] == 0, out
        sampler.start(sample_bytes=4096)
        tracemalloc.start(1)                          # tracemalloc wraps the sampler's hooks
        junk = [bytes(1000) for _ in range(1000)]
        out["both_traced"] = tracemalloc.get_traced_memory()[0] > 1_000_000
        out["sampled_under_tracemalloc"] = sampler.stats()["samples"] > 0
        out["stop_under_tracemalloc"] = sampler.stop()     # must not unhook tracemalloc
        junk2 = [bytes(1000) for _ in range(1000)]
        out["tracemalloc_still_traces"] = tracemalloc.get_traced_memory()[0] > 2_000_000
        tracemalloc.stop()
        sampler.start(sample_bytes=4096)              # again, on top of its own pass-through
        junk3 = [bytes(1000) for _ in range(2000)]
        out["restarted_samples"] = sampler.stats()["samples"]
        out["final_unhooked"] = sampler.stop()
        print(json.dumps(out))
    """)
    assert result["unhooked"] is True and result["own_after_stop"] == 0
    assert result["both_traced"] and result["sampled_under_tracemalloc"]
    assert result["stop_under_tracemalloc"] is False and result["tracemalloc_still_traces"]
    assert result["restarted_samples"] > 0 and result["final_unhooked"] is True


@pytest.mark.slow
@needs_extension
def test_stress_threads_fork_and_cycles_under_pythonmalloc_debug() -> None:
    """Many threads allocating and freeing while sampled at a high rate, forks that allocate in the
    child, start/stop cycles in between; the debug allocator checks every block and the GIL."""
    result = run_python("""
        import json, os, random, threading
        from memsoak.profiler import _memsoak_sampler as sampler

        def worker(seed, rounds):
            rng = random.Random(seed)
            kept = []
            for i in range(rounds):
                kept.append(bytearray(rng.randrange(1, 5000)))
                kept.append({"k": [i] * rng.randrange(1, 40)})
                if len(kept) > 200:
                    del kept[: rng.randrange(1, 200)]
                if i % 997 == 0:
                    kept = [x for x in kept if rng.random() < 0.5]

        peak_own = 0
        children = 0
        for cycle in range(6):
            sampler.start(sample_bytes=2048, max_frames=16, max_tracebacks=64)
            threads = [threading.Thread(target=worker, args=(cycle * 10 + t, 3000)) for t in range(8)]
            for t in threads:
                t.start()
            pid = os.fork()
            if pid == 0:                                   # the child keeps sampling its own heap
                worker(99, 2000)
                rows = sampler.snapshot(False)
                os._exit(0 if sampler.running() and rows else 3)
            for t in threads:
                t.join()
            _, status = os.waitpid(pid, 0)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
            children += 1
            stats = sampler.stats()
            assert not stats["failed"] and stats["samples"] > 1000, stats
            peak_own = max(peak_own, stats["own_bytes"])
            assert sampler.snapshot(True) is not None
            sampler.stop()
            assert sampler.stats()["own_bytes"] == 0
        print(json.dumps({"children": children, "peak_own": peak_own, "overflow_ok": True}))
    """, env={"PYTHONMALLOC": "debug"}, timeout=420)
    assert result["children"] == 6
    assert 0 < result["peak_own"] < 5_000_000


@needs_extension
def test_every_sampled_free_passes_the_free_filter() -> None:
    """Frees are screened by an 8 KB bitmap before the pointer table: a sampled block whose free the
    filter let through unseen would stay live forever. Thousands of samples are freed in random
    order (the bitmap is rebuilt on the way), and the live table must empty to what was there."""
    result = run_python("""
        import json, random
        from memsoak.profiler import _memsoak_sampler as sampler
        sampler.start(sample_bytes=1024, max_frames=4, seed=7)
        before = sampler.stats()["live_samples"]
        held = [bytes(100) + i.to_bytes(4, "little") for i in range(60000)]  # ~8 MB: ~8,000 samples
        grown = sampler.stats()
        random.Random(1).shuffle(held)
        while held:
            del held[-5000:]
        after = sampler.stats()
        sampler.stop()
        print(json.dumps({"before": before, "grown": grown["live_samples"], "after": after["live_samples"],
                          "frees": after["sampled_frees"], "rebuilds": after["filter_rebuilds"]
                          - grown["filter_rebuilds"], "failed": after["failed"]}))
    """, env={"PYTHONMALLOC": "debug"})
    assert result["grown"] - result["before"] > 4000, result
    assert result["after"] <= result["before"] + 20, result  # a few interpreter blocks may come and go
    assert result["rebuilds"] >= 1 and not result["failed"], result


@needs_extension
def test_hook_in_sampled_mode_names_the_planted_line_without_tracemalloc(port: int) -> None:
    engine_port = free_port()
    started = start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, engine_port=engine_port,
                    env={"MEMSOAK_SAMPLE_BYTES": "16384"})
    health = http(started.hook + "/health")[1]
    assert health["alloc_mode"] == "sampled" and health["tracing"] is False, health
    assert health["alloc_sampler"]["running"] and health["alloc_sampler"]["sample_bytes"] == 16384
    status, base = http(started.hook + "/snapshots/base", "POST")
    assert status == 200 and base["source"] == "sampled" and "tracing_started" not in base
    assert http(started.engine + "/alloc?n=20000")[0] == 200
    assert http(started.hook + "/snapshots/head", "POST")[0] == 200
    diff = http(started.hook + "/diff?base=base&head=head&top=5")[1]
    top = diff["by_size"][0]
    assert (top["file"], top["line"]) == (ALLOC_ENGINE, PLANTED_LINE), diff["by_size"][:3]
    # truth: 20000 x (bytearray(1000): 1057 B, its object 56 B, a Planted and its dict) ~ 23 MB
    assert 15e6 <= top["size_diff"] <= 35e6, top
    assert top["traceback"][0] == f"{ALLOC_ENGINE}:{PLANTED_LINE}"
    assert sum(1 for frame in top["traceback"] if "alloc_engine.py" in frame) >= 2  # the full stack
    assert any("http/server.py" in frame or "socketserver.py" in frame for frame in top["traceback"])
    assert diff["source"] == "sampled" and diff["traceback_frames"] == 32
    assert http(started.hook + "/health")[1]["tracing"] is False  # snapshots never start tracemalloc
    since = http(started.hook + "/health")[1]["last_seq"]  # a sample taken after all of the above:
    later = wait_for(lambda: http(started.hook + f"/samples?since={since}")[1]["samples"], what="a sample")
    assert later[-1]["traced_current_bytes"] > 15e6  # the heap series is the sampled estimate


def test_hook_falls_back_to_tracemalloc_with_one_line_when_the_extension_is_missing() -> None:
    code = textwrap.dedent("""
        import json, sys
        class Block:                                   # as if built without a compiler
            def find_spec(self, name, path=None, target=None):
                if name == "memsoak.profiler._memsoak_sampler":
                    raise ImportError("no module named memsoak.profiler._memsoak_sampler")
        sys.meta_path.insert(0, Block())
        from memsoak import profiler
        hook = profiler.install(port=0)
        answer = hook.snapshots.take("one")
        print(json.dumps({"mode": hook.alloc_mode, "started": answer.get("tracing_started"),
                          "health": hook.health()["alloc_mode"]}))
        hook.stop()
    """)
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"mode": "tracemalloc", "started": True, "health": "tracemalloc"}
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "allocation sampler unavailable" in lines[0] and "build_ext" in lines[0], lines


def test_off_mode_refuses_snapshots_with_409(port: int) -> None:
    engine_port = free_port()
    started = start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, engine_port=engine_port,
                    env={"MEMSOAK_ALLOC_MODE": "off"})
    status, answer = http(started.hook + "/snapshots/base", "POST")
    assert status == 409 and "MEMSOAK_ALLOC_MODE" in answer["error"]
    health = http(started.hook + "/health")[1]
    assert health["alloc_mode"] == "off" and health["tracing"] is False
