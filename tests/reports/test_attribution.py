"""Ranking allocation sites and types by consistency across intervals, then by growth."""
from __future__ import annotations

import reports_synth as synth
from memsoak.reports.stats.attribution import net_growth, rank_sites, rank_types, resource_growth

T = [("2026-01-01T00:0%d" % i, "2026-01-01T00:0%d" % (i + 1)) for i in range(4)]


def test_a_site_growing_every_interval_outranks_a_bigger_one_off():
    diffs = [
        synth.diff("warmup", "cp1", T[0], [synth.site("app.py", 10, 1000), synth.site("big.py", 5, 500000)]),
        synth.diff("cp1", "cp2", T[1], [synth.site("app.py", 10, 1000), synth.site("big.py", 5, -10)]),
        synth.diff("cp2", "final", T[2], [synth.site("app.py", 10, 1000)]),
        # the widest diff is not an interval of the chain and must not be double counted
        synth.diff("warmup", "final", (T[0][0], T[2][1]), [synth.site("app.py", 10, 3000), synth.site("big.py", 5, 499990)]),
    ]
    ranked = rank_sites(diffs, top_n=5)
    assert ranked[0].key == "app.py:10" and ranked[0].consistent
    assert (ranked[0].intervals_grown, ranked[0].intervals, ranked[0].growth) == (3, 3, 3000)
    big = next(s for s in ranked if s.key == "big.py:5")
    assert not big.consistent
    assert ranked[0].traceback == ["app.py:10", "memsoak/demo_engine/app.py:99"]   # hook frames filtered


def test_hook_sites_are_dropped_and_a_single_diff_ranks_by_growth():
    diffs = [synth.diff("warmup", "final", T[0], [synth.site("memsoak/profiler/sampler.py", 1, 9999),
                                                   synth.site("a.py", 1, 10), synth.site("b.py", 2, 20)])]
    ranked = rank_sites(diffs, top_n=5)
    assert [s.key for s in ranked] == ["b.py:2", "a.py:1"]
    assert not any(s.consistent for s in ranked)


def test_type_census_growth():
    diffs = [{"base": "w", "head": "c", "base_taken_at": "1", "head_taken_at": "2",
              "by_type": [{"type": "dict", "count": 10, "count_diff": 5}, {"type": "Session", "count": 9, "count_diff": 3}]},
             {"base": "c", "head": "f", "base_taken_at": "2", "head_taken_at": "3",
              "by_type": [{"type": "dict", "count": 10, "count_diff": -5}, {"type": "Session", "count": 12, "count_diff": 3}]}]
    ranked = rank_types(diffs, top_n=5)
    assert ranked[0].key == "Session" and ranked[0].consistent and ranked[0].growth == 6


def test_resource_growth_names_what_rows_carry():
    rows = [{"fd_targets": {"socket": 3, "pipe": 2}}, {"fd_targets": {"socket": 9, "pipe": 2}}]
    assert resource_growth(rows, 5) == {"open_fds": [("socket", 6.0)]}


def test_engine_frame_is_the_first_frame_outside_libraries():
    site = synth.site("/usr/lib/python3.11/json/decoder.py", 353, 500)
    site["traceback"] = ["/usr/lib/python3.11/json/decoder.py:353", "/venv/lib/python3.11/site-packages/x.py:3",
                         "/srv/engine/app.py:77", "/srv/engine/main.py:5"]
    ranked = rank_sites([synth.diff("a", "b", T[0], [site])], top_n=3)
    assert ranked[0].engine_frame == "/srv/engine/app.py:77"


def test_net_growth_sums_the_chain_and_prefers_the_widest_span():
    chained = [synth.diff("baseline", "cp1", ("1", "2"), [synth.site("a.py", 1, 300)]),
               synth.diff("cp1", "final", ("2", "3"), [synth.site("a.py", 1, -100)])]
    label_t = {"baseline": 76.0, "cp1": 189.0, "final": 300.0}
    net = net_growth(chained, label_t)
    assert (net.total_bytes, net.base, net.head, net.base_t, net.head_t) == (200, "baseline", "final", 76.0, 300.0)
    assert net.covers(80.0, 299.0, 10.0) and not net.covers(60.0, 299.0, 10.0)
    # a diff of its own that spans longer than the chain wins; wall clock when no event names it
    wide = synth.diff("start", "final", (1000.0 + 5, 1000.0 + 300), [synth.site("a.py", 1, 900)])
    net = net_growth([*chained, wide], label_t, wall0=1000.0)
    assert (net.total_bytes, net.base, net.base_t) == (900, "start", 5.0)
    assert net_growth([], label_t) is None


def test_library_allocations_count_under_the_engine_line_that_called_them():
    # logging allocates on several of its own lines for one engine call per message: the engine's
    # calling line must come first, with the library frames kept in its traceback.
    def logging_site(line: int, size: int) -> dict:
        return {"file": "/usr/lib/python3.11/logging/__init__.py", "line": line, "size_diff": size,
                "count_diff": 10, "traceback": [f"/usr/lib/python3.11/logging/__init__.py:{line}",
                                                "/usr/lib/python3.11/logging/__init__.py:2100",
                                                "/srv/engine/chat.py:42", "/srv/engine/app.py:7",
                                                "/usr/lib/python3/dist-packages/uvicorn/server.py:68",
                                                "/srv/engine/main.py:3"]}
    engine_site = {"file": "/srv/engine/store.py", "line": 9, "size_diff": 3000, "count_diff": 3,
                   "traceback": ["/srv/engine/store.py:9"]}
    diffs = [synth.diff("baseline", "cp1", ("1", "2"), [logging_site(1353, 2000), logging_site(1500, 1800), engine_site]),
             synth.diff("cp1", "final", ("2", "3"), [logging_site(1353, 2100), logging_site(1500, 1700), engine_site])]
    ranked = rank_sites(diffs, 5)
    assert ranked[0].key == "/srv/engine/chat.py:42" and ranked[0].consistent
    assert ranked[0].growth == 2000 + 1800 + 2100 + 1700
    assert ranked[0].traceback[0].startswith("/usr/lib/python3.11/logging/__init__.py")
    assert ranked[1].key == "/srv/engine/store.py:9"
    # With one frame there is no caller to walk to: the library line stays the site.
    one_frame = [synth.diff("baseline", "cp1", ("1", "2"), [dict(logging_site(1353, 2000), traceback=[])])]
    assert rank_sites(one_frame, 5)[0].key == "/usr/lib/python3.11/logging/__init__.py:1353"


def test_an_engine_installed_in_site_packages_is_named_at_its_own_line_not_its_console_script():
    # In the Docker image the demo engine is pip-installed: every engine frame is in site-packages,
    # and the walk past library frames used to end at the console script's stub.
    pkgs = "/usr/local/lib/python3.11/site-packages"

    def planted(size: int) -> dict:
        return {"file": "/usr/local/lib/python3.11/logging/__init__.py", "line": 1353, "size_diff": size, "count_diff": 5,
                "traceback": [f"/usr/local/lib/python3.11/logging/__init__.py:1353", f"{pkgs}/demo_engine/leaks.py:132",
                              f"{pkgs}/uvicorn/protocols/http/h11_impl.py:404", "/usr/local/bin/memsoak-demo-engine:8"]}
    diffs = [synth.diff("baseline", "cp1", ("1", "2"), [planted(5000)]),
             synth.diff("cp1", "final", ("2", "3"), [planted(5200)])]
    # without the hook's word: the library line, never the console script's stub (the stack's root)
    assert rank_sites(diffs, 5)[0].key == "/usr/local/lib/python3.11/logging/__init__.py:1353"
    named = rank_sites(diffs, 5, ("demo_engine",))[0]
    assert named.key == f"{pkgs}/demo_engine/leaks.py:132" and named.engine_frame == named.key
    # a library that happens to share a prefix with the engine's name is still a library
    assert rank_sites(diffs, 5, ("demo",))[0].key == "/usr/local/lib/python3.11/logging/__init__.py:1353"


def test_a_library_stack_under_the_programs_root_stays_at_its_library_line():
    # Allocations of the server and its event loop have one engine frame: the script's root
    # (`uvicorn.run(app)`). Counted there they added up to the largest "site" (90 MB in an
    # exc_keep run), above the engine lines that leaked.
    def loop_site(line: int, size: int) -> dict:
        return {"file": "/usr/lib/python3.11/asyncio/locks.py", "line": line, "size_diff": size, "count_diff": 9,
                "traceback": [f"/usr/lib/python3.11/asyncio/locks.py:{line}",
                              "/usr/lib/python3/dist-packages/uvicorn/server.py:86",
                              "/srv/engine/main.py:148", "/srv/engine/main.py:152"]}
    leak = {"file": "/srv/engine/main.py", "line": 55, "size_diff": 3000, "count_diff": 3,
            "traceback": ["/srv/engine/main.py:55", "/usr/lib/python3/dist-packages/starlette/routing.py:62",
                          "/srv/engine/main.py:148", "/srv/engine/main.py:152"]}
    diffs = [synth.diff("baseline", "cp1", ("1", "2"), [loop_site(168, 2500), loop_site(200, 2000), leak]),
             synth.diff("cp1", "final", ("2", "3"), [loop_site(168, 2500), loop_site(200, 2000), leak])]
    ranked = rank_sites(diffs, 5)
    assert ranked[0].key == "/srv/engine/main.py:55"
    assert "/srv/engine/main.py:148" not in [s.key for s in ranked]
    assert ranked[1].key == "/usr/lib/python3.11/asyncio/locks.py:168"
    # a stack cut at the tracker's depth may hide the framework above: the walk still applies
    deep = [dict(d, traceback_frames=4) for d in diffs]
    assert rank_sites(deep, 5)[0].key == "/srv/engine/main.py:148"
