"""Settings from the environment and overrides: bad values warn in one line and fall back."""
from memsoak.profiler.config import DEFAULT_PORT, is_loopback, load_config


def test_environment_then_overrides() -> None:
    env = {"MEMSOAK_HOOK_PORT": "9000", "MEMSOAK_INTERVAL": "0.5", "MEMSOAK_USS": "yes",
           "MEMSOAK_TRACEMALLOC_FRAMES": "25"}
    config = load_config(env, port=9100)
    assert (config.port, config.interval, config.uss, config.tracemalloc_frames) == (9100, 0.5, True, 25)
    assert config.public()["token"] is False
    assert load_config({"MEMSOAK_HOOK_TOKEN": "t"}).public()["token"] is True


def test_bad_values_warn_once_and_use_the_default(capsys) -> None:
    config = load_config({"MEMSOAK_HOOK_PORT": "nine", "MEMSOAK_INTERVAL": "0", "MEMSOAK_USS": "maybe"},
                         colour="blue")
    assert config.port == DEFAULT_PORT and config.interval == 1.0 and config.uss is False
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("memsoak hook: ignoring") for line in lines)
    assert any("MEMSOAK_HOOK_PORT='nine'" in line for line in lines)
    assert any("colour" in line for line in lines)


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")


def test_allocation_mode_and_sampling_settings(capsys) -> None:
    assert load_config({}).requested_alloc_mode() == "sampled"
    assert load_config({"MEMSOAK_TRACEMALLOC_FRAMES": "1"}).requested_alloc_mode() == "tracemalloc"
    config = load_config({"MEMSOAK_ALLOC_MODE": "OFF", "MEMSOAK_SAMPLE_BYTES": "65536",
                          "MEMSOAK_SAMPLE_FRAMES": "64", "MEMSOAK_TRACEMALLOC_FRAMES": "5"})
    assert (config.requested_alloc_mode(), config.sample_bytes, config.sample_frames) == ("off", 65536, 64)
    assert capsys.readouterr().err == ""
    config = load_config({"MEMSOAK_ALLOC_MODE": "exact", "MEMSOAK_SAMPLE_BYTES": "12",
                          "MEMSOAK_SAMPLE_FRAMES": "0"})
    assert (config.alloc_mode, config.sample_bytes, config.sample_frames) == (None, 512 * 1024, 32)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert "MEMSOAK_ALLOC_MODE='exact': not one of sampled, tracemalloc, off" in lines[0]


def test_each_memsoak_run_flag_sets_the_variable_its_hook_field_declares() -> None:
    from memsoak.profiler.config import HookConfig, fields, load_config
    from memsoak.profiler.run import hook_env, parse_args

    values = {"port": "9500", "host": "127.0.0.1", "token": "t0ken", "interval": "2.5",
              "tracemalloc_frames": "3", "alloc_mode": "tracemalloc", "sample_bytes": "4096", "sample_frames": "7"}
    argv: list[str] = []
    for field in fields(HookConfig):
        flag = field.metadata["knob"]["cli"]
        if flag:
            argv += [flag] if field.type == "bool" else [flag, values[field.name]]
    env = hook_env(parse_args([*argv, "--", "true"]))
    config = load_config(env)   # what the hook reads back from those variables
    assert (config.port, config.token, config.interval, config.tracemalloc_frames) == (9500, "t0ken", 2.5, 3)
    assert (config.alloc_mode, config.sample_bytes, config.sample_frames, config.uss, config.gc_objects) == \
        ("tracemalloc", 4096, 7, True, True)
