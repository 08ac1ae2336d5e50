"""install() in code: idempotent, never raises; a forked child re-arms its own hook on another port."""
import subprocess
import sys
import textwrap

import psutil

from hookhelp import free_port, http, port_is_free, wait_for


def test_install_is_idempotent_and_refusal_does_not_raise(tmp_path) -> None:
    port = free_port()
    script = tmp_path / "explicit.py"
    script.write_text(textwrap.dedent(f"""
        import profiler
        first = profiler.install(port={port}, interval=0.1)
        again = profiler.install(port={port})
        assert first is again and first.started and first.port == {port}, (first.port, first.error)
        first.stop()
        from profiler.hook import Hook
        from profiler.config import load_config
        hook = Hook(load_config(host="0.0.0.0", port={port})).start()
        assert not hook.started and "refusing" in hook.error
        print("ok", flush=True)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          cwd=str(tmp_path), env={"PYTHONPATH": str(__import__("pathlib").Path(
                              __file__).parents[2]), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert done.stderr.count("refusing to bind 0.0.0.0") == 1


def test_forked_child_gets_its_own_hook_and_peer_entry(alloc_engine) -> None:
    child = http(alloc_engine.engine + "/fork")[1]["child"]
    peers = wait_for(lambda: http(alloc_engine.hook + "/health")[1]["peers"], what="the forked peer")
    assert peers[0]["pid"] == child and peers[0]["port"] != alloc_engine.hook_port
    status, sample = http(alloc_engine.hook + f"/samples?since=0&pid={child}")
    assert status == 200 and sample["samples"][-1]["pid"] == child
    assert sample["samples"][0]["seq"] == 1  # a fresh ring, not the parent's copy
    # the parent still answers on its port, and the tree counts the child
    assert http(alloc_engine.hook + "/health")[1]["pid"] != child
    wait_for(lambda: http(alloc_engine.hook + "/samples?since=0")[1]["samples"][-1]["tree_procs"] == 2,
             what="tree of two")
    psutil.Process(child).kill()
    wait_for(lambda: port_is_free(peers[0]["port"]), what="the child's port freed")
    wait_for(lambda: http(alloc_engine.hook + "/health")[1]["peers"] == [], what="dead peer dropped")
