"""/metrics rendering: the stdlib fallback and prometheus_client agree on names and values."""
from prometheus_client.parser import text_string_to_metric_families

from memsoak.profiler import metrics

SAMPLE = {"rss_bytes": 5, "open_fds": 3, "sample_cost_us": 250, "asyncio_tasks": None,
          "tree_rss_bytes": 9}


def test_stdlib_fallback_renders_the_same_names() -> None:
    text = metrics.render_stdlib(SAMPLE, {"tree": 2}).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["process_resident_memory_bytes"].samples[0].value == 5
    assert families["memsoak_sample_cost_seconds"].samples[0].value == 0.00025
    assert families["memsoak_hook_errors"].samples[0].labels == {"probe": "tree"}
    assert "memsoak_asyncio_tasks" not in families  # null is absent, not zero


def test_prometheus_client_and_fallback_expose_the_same_families() -> None:
    errors = {"tree": 2, "open_fds": 1}
    via_client = metrics.make_renderer(lambda: SAMPLE, lambda: errors)().decode()
    via_stdlib = metrics.render_stdlib(SAMPLE, errors).decode()

    def values(text: str) -> dict:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}
    assert values(via_client) == values(via_stdlib)
