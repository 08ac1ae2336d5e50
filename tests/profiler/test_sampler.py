"""Samples taken inside a real engine process: every field present with its type; failing probes."""
import sys
import time

from hookhelp import ALLOC_ENGINE, free_port, http, start, wait_for
from memsoak.profiler.sampler import SAMPLE_FIELDS

INT_FIELDS = set(SAMPLE_FIELDS) - {"t_mono", "t_wall"}
ALWAYS = {"seq", "pid", "rss_bytes", "vms_bytes", "tree_rss_bytes", "tree_procs", "allocated_blocks",
          "gc_count_0", "gc_collections_2", "open_fds", "threads", "sample_cost_us", "hook_errors"}


def test_sample_fields_and_types(alloc_engine) -> None:
    status, answer = http(alloc_engine.hook + "/samples?since=0")
    assert status == 200
    sample = answer["samples"][-1]
    assert list(sample) == list(SAMPLE_FIELDS)
    assert isinstance(sample["t_mono"], float) and isinstance(sample["t_wall"], float)
    for name in ALWAYS:
        assert isinstance(sample[name], int), name
    for name in INT_FIELDS:
        assert sample[name] is None or isinstance(sample[name], int), name
    assert sample["pid"] == http(alloc_engine.hook + "/health")[1]["pid"]
    assert sample["rss_bytes"] > 1_000_000 and sample["tree_rss_bytes"] >= sample["rss_bytes"]
    # off by default: no USS, no gc object count; no event loop in this engine
    for name in ("uss_bytes", "gc_objects", "asyncio_tasks"):
        assert sample[name] is None, name
    # the heap series: the sampler's estimate in sampled mode (the default when built), else
    # null until tracemalloc traces
    if http(alloc_engine.hook + "/health")[1]["alloc_mode"] == "sampled":
        assert isinstance(sample["traced_current_bytes"], int) and sample["traced_peak_bytes"] is None
    else:
        assert sample["traced_current_bytes"] is None


def test_optional_probes_and_tracing_fill_their_fields(port: int) -> None:
    engine_port = free_port()
    started = start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, engine_port=engine_port,
                    options=["--uss", "--gc-objects", "--tracemalloc-frames", "3"])
    sample = http(started.hook + "/samples?since=0")[1]["samples"][-1]
    assert sample["uss_bytes"] > 0 and sample["gc_objects"] > 1000
    assert sample["traced_current_bytes"] > 0
    assert sample["traced_peak_bytes"] >= sample["traced_current_bytes"]
    health = http(started.hook + "/health")[1]
    assert health["tracing"] is True and health["tracemalloc_frames"] == 3


def test_a_probe_that_raises_is_counted_and_sampling_continues(alloc_engine) -> None:
    assert http(alloc_engine.engine + "/break?probe=open_fds")[0] == 200
    broke_at = http(alloc_engine.hook + "/health")[1]["last_seq"]
    wait_for(lambda: http(alloc_engine.hook + "/health")[1]["errors"]["by_probe"].get("open_fds", 0) >= 3,
             what="three counted open_fds failures")
    health = http(alloc_engine.hook + "/health")[1]
    assert "planted probe failure" in health["errors"]["last"]["open_fds"]
    later = http(alloc_engine.hook + f"/samples?since={broke_at + 1}")[1]["samples"]
    assert later and all(s["open_fds"] is None for s in later)
    assert all(s["rss_bytes"] > 0 for s in later)  # the other probes still ran
    assert later[-1]["hook_errors"] >= 3
    assert http(alloc_engine.engine + "/alloc?n=1")[0] == 200  # and the engine still serves
    metrics = http(alloc_engine.hook + "/metrics")[1]
    assert 'memsoak_hook_errors_total{probe="open_fds"}' in metrics


def test_asyncio_tasks_of_the_engine_loop_are_counted(port: int, tmp_path) -> None:
    script = tmp_path / "loop_engine.py"
    script.write_text(
        "import asyncio\n"
        "async def main():\n"
        "    tasks = [asyncio.create_task(asyncio.sleep(60)) for _ in range(7)]\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n")
    started = start([sys.executable, str(script)], port)
    # 7 sleepers plus the main task
    wait_for(lambda: http(started.hook + "/samples?since=0")[1]["samples"][-1]["asyncio_tasks"] == 8,
             what="asyncio_tasks == 8")
    time.sleep(0.3)
    assert http(started.hook + "/samples?since=0")[1]["samples"][-1]["threads"] == 1


def test_samples_since_over_http_reports_dropped(port: int) -> None:
    engine_port = free_port()
    started = start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, engine_port=engine_port,
                    env={"MEMSOAK_RING_CAPACITY": "10", "MEMSOAK_INTERVAL": "0.05"})
    wait_for(lambda: http(started.hook + "/health")[1]["last_seq"] > 25, what="ring wrapped")
    answer = http(started.hook + "/samples?since=3")[1]
    assert len(answer["samples"]) <= 10
    assert answer["first_seq"] == answer["samples"][0]["seq"] > 4
    assert answer["dropped"] == answer["first_seq"] - 4
    seqs = [s["seq"] for s in answer["samples"]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    newer = http(started.hook + f"/samples?since={seqs[-1]}&limit=2")[1]
    assert newer["dropped"] == 0 and all(s["seq"] > seqs[-1] for s in newer["samples"])
    assert http(started.hook + "/health")[1]["ring"] == {"capacity": 10, "bytes": 10 * 24 * 8}
