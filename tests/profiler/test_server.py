"""The hook's HTTP server: loopback by default, tokens, Prometheus exposition."""
import sys

from prometheus_client.parser import text_string_to_metric_families

from hookhelp import ALLOC_ENGINE, free_port, http, port_is_free, start, wait_for


def test_non_loopback_without_token_is_refused_and_the_engine_still_runs(port: int) -> None:
    engine_port = free_port()
    started = start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, engine_port=engine_port,
                    options=["--host", "0.0.0.0"], wait=False)
    wait_for(lambda: http(started.engine + "/alloc?n=1", timeout=2)[0] == 200, what="engine")
    assert port_is_free(port)
    http(started.engine + "/exit?code=0")
    _out, err = started.proc.communicate(timeout=30)
    lines = [line for line in err.splitlines() if "refusing" in line]
    assert len(lines) == 1 and "MEMSOAK_HOOK_TOKEN" in lines[0] and "0.0.0.0" in lines[0]
    assert "Traceback" not in err


def test_token_required_on_every_route(port: int) -> None:
    engine_port = free_port()
    started = start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, engine_port=None,
                    options=["--token", "s3cret"], wait=False)
    wait_for(lambda: http(started.hook + "/health", timeout=2)[0] == 401, what="hook answering 401")
    for route in ("/health", "/samples", "/metrics", "/types"):
        status, answer = http(started.hook + route)
        assert status == 401 and "Authorization: Bearer" in answer["error"], route
    assert http(started.hook + "/snapshots/x", "POST")[0] == 401
    assert http(started.hook + "/health", headers={"Authorization": "Bearer wrong"})[0] == 401
    status, health = http(started.hook + "/health", headers={"Authorization": "Bearer s3cret"})
    assert status == 200 and health["config"]["token"] is True  # never the token itself
    assert http(started.hook + "/samples?token=s3cret")[0] == 200


def test_metrics_is_prometheus_text_with_conventional_names(alloc_engine) -> None:
    status, text = http(alloc_engine.hook + "/metrics")
    assert status == 200
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name in ("process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
                 "memsoak_tree_resident_memory_bytes", "memsoak_python_allocated_blocks",
                 "memsoak_threads", "memsoak_sample_cost_seconds"):
        assert families[name].type == "gauge", name
    assert families["memsoak_hook_errors"].type == "counter"
    assert families["python_gc_objects_collected"].type == "counter"
    rss = families["process_resident_memory_bytes"].samples[0].value
    sample = http(alloc_engine.hook + "/samples?since=0")[1]["samples"][-1]
    assert abs(rss - sample["rss_bytes"]) < 50_000_000
