"""The compose files, Dockerfiles and entrypoint scripts, checked statically (no engine needed).

The stack itself is built and run for real by CI's Docker stage (docker/ci/run-stage.sh, see
docs/docker.md). What is checked here, fast and on any machine with `docker-compose`: every compose
file, alone and with every profile, passes `docker-compose config` against a `.env` made from
`.env.example`; every service runs a script or image that exists (a script in the repo and
executable, an official image otherwise); every bind-mount source and every Dockerfile COPY source
exists; secrets are only ever `${...}` from `.env`; the images run as a non-root user and install
dependencies before code; the long-soak settings (stop grace, clean default) hold.
`docker-compose config` prints YAML, which is read with the YAML module of the very interpreter
docker-compose runs on (Debian's python3-yaml, a dependency of the package), so the test needs
nothing our own environment may lack.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE_ROOT = "/opt/memsoak/"  # where the Dockerfiles put the repo's docker/ directory
# Services that run an official image's own entrypoint, with nothing of ours to check.
OFFICIAL_IMAGE_SERVICES = {"postgres": "postgres", "grafana": "grafana/grafana"}
COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(
    COMPOSE is None and not os.environ.get("CI"),
    reason="docker-compose not installed (apt-get install docker-compose)")


def compose_files() -> list[Path]:
    return [REPO / "docker-compose.yml", *sorted(REPO.glob("docker-compose.*.yml"))]


def _yaml_python() -> str:
    """The interpreter docker-compose itself runs on: it is guaranteed to have PyYAML."""
    assert COMPOSE, "CI must have docker-compose (see .ci/run)"
    first = Path(COMPOSE).read_text(errors="replace").splitlines()[0]
    return first[2:].strip().split()[0] if first.startswith("#!") else sys.executable


def yaml_to_data(text: str) -> dict:
    out = subprocess.run([_yaml_python(), "-c",
                          "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
                         input=text, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("compose") / ".env"
    shutil.copy(REPO / ".env.example", path)
    return path


def run_config(files: list[Path], env_file: Path, profiles: tuple[str, ...] = (),
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [COMPOSE, "--project-directory", str(REPO), "--env-file", str(env_file)]
    for file in files:
        cmd += ["-f", str(file)]
    for profile in profiles:
        cmd += ["--profile", profile]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMSOAK_", "LOCUST_", "POSTGRES_"))}
    env.update(extra_env or {})
    return subprocess.run([*cmd, "config"], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)


def declared_profiles(files: list[Path]) -> list[str]:
    names: set[str] = set()
    for file in files:
        for service in (yaml_to_data(file.read_text()).get("services") or {}).values():
            names.update((service or {}).get("profiles") or [])
    return sorted(names)


def stacks() -> list[list[Path]]:
    """The base file alone, and the base with each override (overrides are never used alone)."""
    base, *overrides = compose_files()
    return [[base]] + [[base, override] for override in overrides]


def stack_id(files: list[Path]) -> str:
    return "+".join(f.name for f in files)


@pytest.mark.slow
@pytest.mark.parametrize("files", stacks(), ids=stack_id)
def test_config_passes_for_every_profile(files: list[Path], env_file: Path) -> None:
    profiles = declared_profiles(files)
    assert "monitoring" in profiles and "soak" in profiles
    combos = [()] + [(p,) for p in profiles] + [tuple(profiles)]
    for combo in combos:
        result = run_config(files, env_file, combo)
        assert result.returncode == 0, f"{stack_id(files)} --profile {combo}: {result.stderr}"
        services = yaml_to_data(result.stdout)["services"]
        for profile in combo:
            # A profile's services appear only when it is enabled: check it really added them.
            assert any(profile in (s.get("profiles") or []) for s in services.values()), combo


def _merged(files: list[Path], env_file: Path) -> dict:
    result = run_config(files, env_file, tuple(declared_profiles(files)))
    assert result.returncode == 0, result.stderr
    return yaml_to_data(result.stdout)


def _bind_mounts(service: dict) -> list[tuple[str, str]]:
    """(host source, container target) of each bind mount; v1 prints "src:dst:mode" strings."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((volume["source"], volume["target"]))
        elif volume.startswith("/"):
            source, target = volume.split(":")[:2]
            mounts.append((source, target))
    return mounts


def _copy_destinations(dockerfile: Path) -> dict[str, str]:
    """COPY source -> absolute destination in the image, resolving WORKDIR-relative targets."""
    workdir, found = "/", {}
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words[:1] == ["WORKDIR"]:
            workdir = os.path.join(workdir, words[1])
        elif words[:1] == ["COPY"] and not any(w.startswith("--") for w in words):
            destination = os.path.normpath(os.path.join(workdir, words[-1]))
            for source in words[1:-1]:
                found[source] = destination if len(words) == 3 and not words[-1].endswith("/") \
                    else os.path.join(destination, os.path.basename(source))
    return found


def _repo_path_of(container_path: str) -> Path:
    assert container_path.startswith(IMAGE_ROOT), (
        f"{container_path}: our scripts live under {IMAGE_ROOT} in every image")
    return REPO / container_path[len(IMAGE_ROOT):]


@pytest.mark.parametrize("files", stacks(), ids=stack_id)
def test_every_service_runs_a_script_or_image_that_exists(files: list[Path], env_file: Path) -> None:
    config = _merged(files, env_file)
    for name, service in config["services"].items():
        entrypoint = service.get("entrypoint")
        if entrypoint is None:
            official = OFFICIAL_IMAGE_SERVICES.get(name)
            assert official and service["image"].split(":")[0].endswith(official), (
                f"service {name} declares no entrypoint script and is not an official image")
            continue
        entrypoint = entrypoint if isinstance(entrypoint, list) else entrypoint.split()
        script = _repo_path_of(entrypoint[0])
        assert script.is_file(), f"service {name}: {script} missing"
        assert os.access(script, os.X_OK), f"service {name}: {script} not executable"
        assert script.read_text().startswith("#!/bin/sh"), f"{script}: POSIX sh, for any image"
        command = service.get("command")
        if command:
            first = command if isinstance(command, str) else command[0]
            if first.startswith("/"):
                assert _repo_path_of(first).is_file(), f"service {name}: command {first} missing"
        build = service.get("build")
        if build:
            dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"service {name}: {dockerfile} missing"
            # The script must be inside the image: the Dockerfile copies docker/entrypoints there.
            copied = _copy_destinations(dockerfile).get("docker/entrypoints")
            assert copied == IMAGE_ROOT + "docker/entrypoints", (
                f"{dockerfile.name} copies docker/entrypoints to {copied}, not where {name} runs it")
        else:
            # No build: the script must come from a bind mount of the repo.
            targets = [target for _, target in _bind_mounts(service)]
            assert any(entrypoint[0].startswith(t.rstrip("/") + "/") for t in targets), (
                f"service {name}: {entrypoint[0]} is neither built in nor mounted")
        for source, _ in _bind_mounts(service):
            if not source.endswith("/results"):  # made by the first run, kept out of git
                assert Path(source).exists(), f"service {name}: mount source {source} missing"


def test_secrets_come_only_from_env_and_every_variable_is_in_env_example() -> None:
    example = {line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines()
               if "=" in line and not line.lstrip().startswith("#")}
    for file in compose_files():
        text = file.read_text()
        used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
        assert used <= example, f"{file.name} uses {sorted(used - example)} missing from .env.example"
        for key, value in re.findall(r"^\s*([A-Z0-9_]*(?:PASSWORD|TOKEN|API_KEY))\s*:\s*(.+)$", text, re.M):
            assert value.strip().startswith("${"), f"{file.name}: {key} is hard-coded"
        assert not re.search(r"postgresql://[^$\s]*:[^$\s]+@", text), f"{file.name}: password in a URL"


def test_missing_env_fails_with_a_message_naming_the_fix(tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("")
    result = run_config([REPO / "docker-compose.yml"], empty)
    assert result.returncode != 0
    assert ".env" in result.stderr and ("PASSWORD" in result.stderr or "TOKEN" in result.stderr)


def _dockerfiles() -> list[Path]:
    return sorted((REPO / "docker").glob("Dockerfile*")) + sorted((REPO / "docker").glob("*/Dockerfile*"))


@pytest.mark.parametrize("dockerfile", _dockerfiles(), ids=lambda p: str(p.relative_to(REPO)))
def test_dockerfile_is_non_root_cached_and_copies_what_exists(dockerfile: Path) -> None:
    lines = [l.strip() for l in dockerfile.read_text().splitlines() if l.strip() and not l.startswith("#")]
    users = [l.split()[1] for l in lines if l.startswith("USER ")]
    if "FROM ${LOCUST_IMAGE}" in lines or users:
        assert users and users[-1] not in ("root", "0"), f"{dockerfile.name}: last USER must not be root"
    copies = [l.split()[1:-1] for l in lines if l.startswith("COPY ") and "--from" not in l]
    for sources in copies:
        # A wildcard may match nothing (`setup.py*`: only when the checkout has one), as Docker
        # allows while another source of the same COPY matches.
        assert any(list(REPO.glob(source)) for source in sources), f"{dockerfile.name}: COPY {sources} matches nothing"
        for source in sources:
            assert "*" in source or list(REPO.glob(source)), f"{dockerfile.name}: COPY {source} matches nothing"
    # Multi-stage: the caching rule is about the image's own (last) stage.
    froms = [i for i, l in enumerate(lines) if l.startswith("FROM ")]
    lines = lines[froms[-1]:] if froms else lines
    joined = "\n".join(lines)
    deps_at = joined.find("pyproject_deps.py --without")
    # The code arrives as a package directory, or as the wheel a build stage made of it.
    code_at = min((joined.find(f"COPY {pkg}") for pkg in ("memsoak", "--from=build")
                   if f"COPY {pkg}" in joined), default=-1)
    if deps_at >= 0:
        assert 0 <= deps_at < code_at, f"{dockerfile.name}: install dependencies before copying code"
        without = re.search(r"pyproject_deps\.py --without (\S+)", joined).group(1)
        result = subprocess.run([sys.executable, str(REPO / "docker/pyproject_deps.py"),
                                 str(REPO / "pyproject.toml"), "--without", without],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{dockerfile.name}: {result.stderr}"
        assert result.stdout.strip(), "an image with no dependencies at all"


def test_dockerignore_keeps_results_and_git_out_but_not_what_images_copy() -> None:
    ignored = {l.strip() for l in (REPO / ".dockerignore").read_text().splitlines()
               if l.strip() and not l.startswith("#")}
    assert {".git", "results", ".env"} <= ignored
    needed = {"pyproject.toml", "memsoak", "docker"}
    assert not needed & ignored


def test_deps_helper_splits_engine_and_harness_dependencies(tmp_path: Path) -> None:
    run = lambda *args: subprocess.run([sys.executable, str(REPO / "docker/pyproject_deps.py"), *args],
                                       capture_output=True, text=True)
    engine = run(str(REPO / "pyproject.toml"), "--without", "Locust,gevent").stdout.split()
    names = {re.split(r"[<>=\[ ]", spec)[0].lower() for spec in engine}
    assert "psutil" in names and "locust" not in names and "gevent" not in names
    hook_only = run(str(REPO / "pyproject.toml"), "--only", "psutil,Prometheus_Client").stdout.split()
    assert [re.split(r"[<>=\[ ]", spec)[0] for spec in hook_only] == ["psutil", "prometheus-client"]
    stale = run(str(REPO / "pyproject.toml"), "--without", "no-such-project")
    assert stale.returncode == 2 and "no-such-project" in stale.stderr and "Traceback" not in stale.stderr
    missing = run(str(tmp_path / "pyproject.toml"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_dashboard_queries_only_metrics_the_hook_exports() -> None:
    from memsoak.profiler import metrics
    exported = {name for name, _, _ in metrics.GAUGES} | {
        "memsoak_sample_cost_seconds", "memsoak_hook_errors_total"}
    dashboard = json.loads((REPO / "docker/grafana/dashboards/memsoak.json").read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for signal in ("rss", "heap", "file descriptors", "threads", "tasks"):
        assert signal in titles, f"the dashboard has no {signal} panel"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "memsoak-prometheus"
        for target in panel["targets"]:
            names = set(re.findall(r"\b((?:process|memsoak|python)_[a-z_]+)\b", target["expr"]))
            assert names and names <= exported, f"{panel['title']}: {names - exported} not exported"
    datasource = (REPO / "docker/grafana/provisioning/datasources/prometheus.yml").read_text()
    assert "uid: memsoak-prometheus" in datasource


def test_grafana_provisioning_points_at_what_compose_mounts(env_file: Path) -> None:
    grafana = _merged([REPO / "docker-compose.yml"], env_file)["services"]["grafana"]
    mounts = dict((target, Path(source)) for source, target in _bind_mounts(grafana))
    provider = yaml_to_data((REPO / "docker/grafana/provisioning/dashboards/memsoak.yml").read_text())
    dashboards_in_container = provider["providers"][0]["options"]["path"]
    assert mounts.get(dashboards_in_container) == REPO / "docker/grafana/dashboards", (
        f"the provider reads {dashboards_in_container}, compose mounts {mounts}")
    assert mounts.get("/etc/grafana/provisioning") == REPO / "docker/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_in_container + "/")
    assert (REPO / "docker/grafana/dashboards" / Path(home).name).is_file()
    datasource = yaml_to_data((REPO / "docker/grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasource["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["uid"] == "memsoak-prometheus"


def _locust_side_env_names() -> set[str]:
    """Every environment variable Locust with memsoak's locustfiles reads, from Locust's own parser
    after loading the locustfiles as `locust -f memsoak/locustfiles` does (in a subprocess: importing
    Locust monkey-patches with gevent)."""
    code = ("import importlib; import json; import pkgutil; from memsoak import locustfiles\n"
            "from locust.argument_parser import get_parser\n"
            "for mod in pkgutil.iter_modules(locustfiles.__path__):\n"
            "    if not mod.name.startswith('_'):\n"
            "        importlib.import_module('memsoak.locustfiles.' + mod.name)\n"
            "parser = get_parser()\n"
            "print(json.dumps(sorted(a.env_var for a in parser._actions if getattr(a, 'env_var', None))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_every_setting_compose_passes_is_one_locust_or_the_hook_reads(env_file: Path) -> None:
    from memsoak.profiler.config import ENV as HOOK_ENV

    locust_side = _locust_side_env_names()
    hook_side = {var for var, _ in HOOK_ENV.values()} | {"MEMSOAK_RUN_ARGS"}  # the latter: engine.sh
    services = _merged([REPO / "docker-compose.yml"], env_file)["services"]
    assert {"LOCUST_HOST", "MEMSOAK_HOOK_URL", "MEMSOAK_RSS_LIMIT_MB"} <= locust_side
    for name in ("locust-master", "locust-worker", "soak"):
        passed = {k for k in services[name]["environment"] if k.startswith(("MEMSOAK_", "LOCUST_"))}
        assert passed <= locust_side, f"service {name} passes {sorted(passed - locust_side)}, which nothing reads"
    passed = {k for k in services["engine"]["environment"] if k.startswith("MEMSOAK_")}
    assert passed <= hook_side, f"the engine gets {sorted(passed - hook_side)}, which the hook does not read"


def test_long_soak_cannot_lose_its_report(env_file: Path) -> None:
    """The master and the soak get a stop grace long enough to write a long soak's report, and the
    documented headless master flow waits for the master instead of `--exit-code-from`."""
    services = _merged([REPO / "docker-compose.yml"], env_file)["services"]
    for name in ("locust-master", "soak"):
        grace = services[name].get("stop_grace_period", "10s")
        seconds = sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)([smh])", grace))
        assert seconds >= 300, f"{name}: stop_grace_period {grace} is too short for a long soak's report"
    script = REPO / "docker/headless-soak.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "docker\" wait" in text or '"$docker" wait' in text
    assert "--exit-code-from" not in re.sub(r"^#.*$", "", text, flags=re.M), "the flow that loses reports"
    docs = (REPO / "docs/docker.md").read_text()
    assert "docker/headless-soak.sh" in docs
    assert not re.search(r"^\s*(MASTER_HEADLESS=true.*\\\n)?\s*docker compose up.*--exit-code-from", docs, re.M), (
        "docs/docker.md still shows --exit-code-from as the way to run the headless master")


def test_soak_is_clean_by_default_and_the_leak_is_one_line(env_file: Path) -> None:
    services = _merged([REPO / "docker-compose.yml"], env_file)["services"]
    assert services["engine"]["environment"].get("DEMO_LEAKS", "") == "", "the demo engine leaks by default"
    docs = (REPO / "docs/docker.md").read_text()
    assert "DEMO_LEAKS=session_state docker compose run --rm soak" in docs
    assert "DEMO_LEAKS=session_state" in (REPO / ".env.example").read_text()  # the switch, commented


def test_results_dir_is_one_setting_for_every_locust_service(env_file: Path) -> None:
    services = _merged([REPO / "docker-compose.yml"], env_file)["services"]
    for name in ("locust-master", "soak"):
        sources = [source for source, target in _bind_mounts(services[name]) if target == "/home/locust/results"]
        assert sources == [str(REPO / "results")], (name, sources)
