"""The production manifests (deploy/k8s), validated offline.

Every kustomization is rendered with ``kubectl kustomize`` (no cluster, no network) and
every resource it yields is validated:

- Kubernetes kinds against the API's JSON schemas, strict (no unknown fields), with
  ``kubernetes-validate``, which ships the schemas of each Kubernetes version;
- custom resources (Strimzi, CloudNativePG, prometheus-operator, KEDA, cert-manager)
  against the operators' own CRD schemas, vendored in deploy/k8s/schemas (unknown fields
  refused there too).

Then the manifests are checked against the code they deploy: topics and partitions match
``TOPIC_PARTITIONS``, every ``HOTLINE_*`` variable is a ``Settings`` field, every Secret a
pod or Helm value uses is made by some resource, files named by settings are mounted,
probes and scrape jobs point at the metrics ports, the search-attribute job registers
the workflow's attributes, and the Temporal values only use keys the chart knows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from workers.open311.service import SEND_TIMEOUT_S
from workers.runtime.settings import REPO_ROOT, TOPIC_PARTITIONS, Settings
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES
from workflows.search_attributes import cli_type

K8S = REPO_ROOT / "deploy" / "k8s"
SCHEMAS = K8S / "schemas"
# The oldest Kubernetes the manifests support (HPA v2, PDB v1, seccompProfile, ...).
KUBERNETES_VERSION = "1.30.0"
OVERLAYS = ["overlays/production", "overlays/production-keda"]
KUSTOMIZATIONS = [
    "base", "monitoring", "platform/kafka", "platform/postgres", "platform/certificates",
    "platform/temporal-setup", *OVERLAYS,
]
CORE_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "rbac.authorization.k8s.io",
               "networking.k8s.io"}


# --- rendering ----------------------------------------------------------------------------


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise AssertionError(
            "kubectl is needed to render the kustomizations offline: install Debian's "
            "kubernetes-client (the Makefile does)"
        )
    return found


@cache
def render(path: str) -> tuple[dict[str, Any], ...]:
    """The resources ``kubectl kustomize`` makes of ``deploy/k8s/<path>``."""
    result = subprocess.run(
        [_kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone",
         str(K8S / path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, f"kustomize {path} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _group_version(resource: Mapping[str, Any]) -> tuple[str, str]:
    api = str(resource["apiVersion"])
    return tuple(api.split("/", 1)) if "/" in api else ("", api)  # type: ignore[return-value]


def _name(resource: Mapping[str, Any]) -> str:
    return f"{resource['kind']}/{resource['metadata']['name']}"


@cache
def _crd_schema(group: str, kind: str, version: str) -> dict[str, Any] | None:
    path = SCHEMAS / f"{group}_{kind}_{version}.json"
    if not path.exists():
        return None
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def _all_resources() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in KUSTOMIZATIONS:
        for resource in render(path):
            yield path, resource


def _find(resources: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    for r in resources:
        if r["kind"] == kind and r["metadata"]["name"] == name:
            return r
    raise AssertionError(f"no {kind}/{name}")


# --- schema validation --------------------------------------------------------------------


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_resource_validates_against_its_schema(path: str) -> None:
    resources = render(path)
    assert resources, f"{path} renders nothing"
    problems = []
    for resource in resources:
        group, version = _group_version(resource)
        kind = resource["kind"]
        if group in CORE_GROUPS:
            try:
                kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                problems.append(f"{_name(resource)}: {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                problems.append(f"{_name(resource)}: {exc.message}")
            continue
        schema = _crd_schema(group, kind, version)
        if schema is None:
            problems.append(f"{_name(resource)}: no schema for {group}/{version} {kind} in "
                            f"{SCHEMAS.relative_to(REPO_ROOT)} (vendor_crds.py)")
            continue
        validator = jsonschema.Draft7Validator(schema)
        for error in validator.iter_errors(resource):
            where = ".".join(str(p) for p in error.absolute_path)
            problems.append(f"{_name(resource)}: {where}: {error.message}")
        meta = resource["metadata"]
        if not isinstance(meta.get("name"), str) or not meta["name"]:
            problems.append(f"{kind}: metadata.name missing")
    assert not problems, "\n".join(problems)


def test_the_validators_catch_a_misspelt_field() -> None:
    """The strict schemas refuse what the API server would silently drop."""
    deployment = json.loads(json.dumps(_find(render("base"), "Deployment", "hotline-worker")))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    topic = json.loads(json.dumps(render("platform/kafka")[-1]))
    topic["spec"]["partition"] = 3
    schema = _crd_schema("kafka.strimzi.io", "KafkaTopic", "v1")
    assert schema is not None
    assert list(jsonschema.Draft7Validator(schema).iter_errors(
        {"spec": topic["spec"]})), "an unknown CRD field must be refused"


# --- the manifests agree with the code ----------------------------------------------------


def test_kafka_topics_match_the_contract_partitions() -> None:
    resources = render("platform/kafka")
    topics = {r["spec"].get("topicName", r["metadata"]["name"]): r for r in resources
              if r["kind"] == "KafkaTopic"}
    assert {name: t["spec"]["partitions"] for name, t in topics.items()} == TOPIC_PARTITIONS
    brokers = sum(r["spec"]["replicas"] for r in resources
                  if r["kind"] == "KafkaNodePool" and "broker" in r["spec"]["roles"])
    for name, topic in topics.items():
        replicas = topic["spec"]["replicas"]
        min_isr = int(topic["spec"]["config"]["min.insync.replicas"])
        assert replicas <= brokers, name
        assert 1 <= min_isr < replicas, f"{name}: acks=all must survive one broker down"
    kafka = _find(resources, "Kafka", "hotline-kafka")
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False


def _pod_specs(resources: tuple[dict[str, Any], ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for r in resources:
        if r["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield _name(r), r["spec"]["template"]["spec"]


# Pods that never connect to Temporal, so they are not given its client certificate.
NO_TEMPORAL = {"Deployment/hotline-open311"}


def test_hotline_settings_in_the_manifests_exist_and_their_files_are_mounted() -> None:
    fields = {f"HOTLINE_{name.upper()}" for name in Settings.model_fields}
    for overlay in OVERLAYS:
        resources = render(overlay)
        env = _find(resources, "ConfigMap", "hotline-env")["data"]
        unknown = sorted(k for k in env if k.startswith("HOTLINE_") and k not in fields)
        assert not unknown, f"not Settings fields: {unknown}"
        # The values parse as this code reads them (types, literals).
        settings = Settings(**{k.removeprefix("HOTLINE_").lower(): v for k, v in env.items()
                               if k.startswith("HOTLINE_")})
        assert settings.kafka_security_protocol == "SASL_SSL"
        for name, pod in _pod_specs(resources):
            for container in pod["containers"]:
                if not any(ref.get("configMapRef", {}).get("name") == "hotline-env"
                           for ref in container.get("envFrom", [])):
                    continue
                mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
                inline = {e["name"] for e in container.get("env", [])}
                assert not sorted(k for k in inline if k.startswith("HOTLINE_")
                                  and k not in fields), name
                for key, value in env.items():
                    if name in NO_TEMPORAL and key.startswith("HOTLINE_TEMPORAL_"):
                        continue
                    if key.endswith(("_FILE", "_CAFILE", "_CERTFILE", "_KEYFILE")):
                        assert any(value.startswith(m + "/") for m in mounts), (
                            f"{name}: {key}={value} is not on a mounted volume")
                assert any(m == env["HOTLINE_CONFIG_DIR"] for m in mounts), name


def _produced_secrets(resources: tuple[dict[str, Any], ...]) -> set[str]:
    """Secrets the rendered resources make: directly, or through their operators."""
    made = set()
    for r in resources:
        kind, name = r["kind"], r["metadata"]["name"]
        if kind == "Secret":
            made.add(name)
        elif kind == "Certificate":
            made.add(r["spec"]["secretName"])
        elif kind == "KafkaUser":
            made.add(name)
        elif kind == "Kafka":
            made |= {f"{name}-cluster-ca-cert", f"{name}-clients-ca-cert"}
        elif kind == "Cluster" and r["apiVersion"].startswith("postgresql.cnpg.io/"):
            made |= {f"{name}-app", f"{name}-ca", f"{name}-superuser"}
    return made


def _secret_refs(pod: Mapping[str, Any]) -> Iterator[str]:
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            yield volume["secret"]["secretName"]
    for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
        for e in container.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                yield ref["name"]
        for ref in container.get("envFrom", []):
            # An optional Secret is a switch the operator may leave out (S3 photos).
            if "secretRef" in ref and not ref["secretRef"].get("optional"):
                yield ref["secretRef"]["name"]


def test_every_secret_used_is_made_by_a_resource() -> None:
    for overlay in OVERLAYS:
        resources = render(overlay)
        made = _produced_secrets(resources)
        for name, pod in _pod_specs(resources):
            missing = sorted(set(_secret_refs(pod)) - made)
            assert not missing, f"{overlay} {name} uses secrets nothing makes: {missing}"
        for r in resources:
            if r["kind"] == "TriggerAuthentication":
                for ref in r["spec"]["secretTargetRef"]:
                    assert ref["name"] in made, ref
    values = _temporal_values()
    made = _produced_secrets(render("overlays/production"))
    used = {v["secret"]["secretName"] for section in ("server", "admintools", "web")
            for v in values[section].get("additionalVolumes", []) if "secret" in v}
    for store in values["server"]["config"]["persistence"]["datastores"].values():
        used.add(store["sql"]["existingSecret"])
    assert not sorted(used - made), f"Temporal values use secrets nothing makes: {used - made}"


# Worker memory, measured by `make bench` open-cases mode (docs/performance.md): the
# process without cached cases, and what each case in the sticky cache adds when the
# workflows run sandboxed, the costlier way: HOTLINE_WORKFLOW_SANDBOX=true must fit too.
WORKER_BASE_MIB = 150
CACHED_CASE_KIB = 340


def _mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_the_sticky_cache_fits_in_the_worker_memory_request() -> None:
    resources = render("overlays/production")
    env = _find(resources, "ConfigMap", "hotline-env")["data"]
    [container] = _find(resources, "Deployment", "hotline-worker")["spec"]["template"][
        "spec"]["containers"]
    cached = int(env["HOTLINE_MAX_CACHED_WORKFLOWS"])
    needed = WORKER_BASE_MIB + cached * CACHED_CASE_KIB / 1024
    request = _mib(container["resources"]["requests"]["memory"])
    limit = _mib(container["resources"]["limits"]["memory"])
    assert needed <= request <= limit, (
        f"{cached} cached cases need ~{needed:.0f} MiB; the worker requests {request:.0f}")


def test_probes_and_scrape_jobs_use_the_metrics_ports() -> None:
    resources = render("overlays/production")
    env = _find(resources, "ConfigMap", "hotline-env")["data"]
    expected = {"hotline-worker": int(env["HOTLINE_WORKER_METRICS_PORT"]),
                "hotline-bridges": int(env["HOTLINE_BRIDGE_METRICS_PORT"])}
    for deployment, port in expected.items():
        pod = _find(resources, "Deployment", deployment)["spec"]["template"]["spec"]
        [container] = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == port
        # Alive: /healthz (the event loop turns); ready: /readyz (its servers answer).
        for probe, path in (("startupProbe", "/healthz"), ("readinessProbe", "/readyz"),
                            ("livenessProbe", "/healthz")):
            http = container[probe]["httpGet"]
            assert (http["path"], ports[http["port"]]) == (path, port), probe
        resources_ = container["resources"]
        assert resources_["requests"]["cpu"] and resources_["limits"]["memory"]
    # The job names the alerts and the dashboard select on (deploy/prometheus).
    local = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.yml").read_text())
    local_jobs = {j["job_name"] for j in local["scrape_configs"]}
    jobs = set()
    for monitor in (r for r in resources if r["kind"] == "PodMonitor"):
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            jobs |= {rl["replacement"] for rl in endpoint.get("relabelings", [])
                     if rl.get("targetLabel") == "job"}
    assert jobs == {"hotline-worker", "hotline-worker-sdk", "hotline-bridges", "hotline-open311",
                    "hotline-workbench"}
    assert jobs <= local_jobs
    # Open311: the API on one port (the Service's target, open to the ingress only), its
    # /metrics on another (scraped and probed there, open to Prometheus only).
    open311 = _find(resources, "Deployment", "hotline-open311")
    pod = open311["spec"]["template"]["spec"]
    [container] = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": int(env["HOTLINE_OPEN311_PORT"]),
                     "metrics": int(env["HOTLINE_OPEN311_METRICS_PORT"])}
    assert env["HOTLINE_OPEN311_HOST"] == "0.0.0.0"
    probes = {p: (container[p]["httpGet"]["path"], container[p]["httpGet"]["port"])
              for p in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes == {"startupProbe": ("/healthz", "http"),
                      "readinessProbe": ("/readyz", "http"),
                      "livenessProbe": ("/healthz", "http")}
    service = _find(resources, "Service", "hotline-open311")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    assert service["spec"]["selector"] == open311["spec"]["selector"]["matchLabels"]
    [endpoint] = _find(resources, "PodMonitor", "hotline-open311")["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    policy = _find(resources, "NetworkPolicy", "hotline-open311")["spec"]
    assert policy["podSelector"]["matchLabels"] == open311["spec"]["selector"]["matchLabels"]
    allowed = {rule["from"][0]["namespaceSelector"]["matchLabels"][
                   "kubernetes.io/metadata.name"]: [p["port"] for p in rule["ports"]]
               for rule in policy["ingress"]}
    assert allowed == {"ingress-nginx": ["http"], "monitoring": ["metrics"]}
    # The ingress stops sending (preStop) before SIGTERM, and an in-flight POST (waiting
    # up to its Kafka send timeout) finishes within the grace period.
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop > 0
    assert pod["terminationGracePeriodSeconds"] > pre_stop + SEND_TIMEOUT_S
    hpa = _find(resources, "HorizontalPodAutoscaler", "hotline-worker")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


# The metrics port each scrape job reads, as Settings names it (local defaults; the k8s
# ConfigMap may set another, checked against the Deployment below).
SCRAPED_PORTS = {"hotline-worker": "worker_metrics_port",
                 "hotline-worker-sdk": "temporal_sdk_metrics_port",
                 "hotline-bridges": "bridge_metrics_port",
                 "hotline-open311": "open311_metrics_port",
                 "hotline-workbench": "workbench_metrics_port"}


def test_every_pod_monitor_scrapes_a_deployments_metrics_port() -> None:
    """Each PodMonitor selects exactly one Deployment's pods, on a port that pod names, and
    that port is the process's metrics port (HOTLINE_*_METRICS_PORT); the pod's
    NetworkPolicy lets the monitoring namespace in on it. The local prometheus.yml scrapes
    the same jobs on the settings' default ports."""
    resources = render("overlays/production")
    env = _find(resources, "ConfigMap", "hotline-env")["data"]
    defaults = Settings()
    deployments = [r for r in resources if r["kind"] == "Deployment"]
    monitors = [r for r in resources if r["kind"] == "PodMonitor"]
    assert {m["metadata"]["name"] for m in monitors} == {
        "hotline-worker", "hotline-bridges", "hotline-open311", "hotline-workbench"}
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        [deployment] = [d for d in deployments if selector.items()
                        <= d["spec"]["template"]["metadata"]["labels"].items()]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            [job] = [rl["replacement"] for rl in endpoint["relabelings"]
                     if rl.get("targetLabel") == "job"]
            field = SCRAPED_PORTS[job]
            expected = int(env.get(f"HOTLINE_{field.upper()}", getattr(defaults, field)))
            assert ports[endpoint["port"]] == expected, (job, ports, expected)
            assert endpoint["path"] == "/metrics"
        # Policies add up: once one selects the pod, together they must let Prometheus in.
        policies = [p for p in resources if p["kind"] == "NetworkPolicy"
                    and p["spec"]["podSelector"].get("matchLabels", {}).items()
                    <= selector.items()]
        if policies:
            opened = {port["port"] for policy in policies
                      for rule in policy["spec"].get("ingress", [])
                      if any(peer.get("namespaceSelector", {}).get("matchLabels", {}).get(
                          "kubernetes.io/metadata.name") == "monitoring"
                             for peer in rule.get("from", []))
                      for port in rule.get("ports", [])}
            wanted = {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
            assert wanted <= opened, (monitor["metadata"]["name"], opened)
    local = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.yml").read_text())
    for job in local["scrape_configs"]:
        if job["job_name"] in SCRAPED_PORTS:
            [target] = job["static_configs"][0]["targets"]
            port = int(target.rsplit(":", 1)[1])
            assert port == getattr(defaults, SCRAPED_PORTS[job["job_name"]]), job


# What a pod needs after its drain to close its clients and exit before SIGKILL.
CLOSE_MARGIN_S = 10


def test_shutdown_and_migrations_fit_the_pods() -> None:
    """The drain (HOTLINE_GRACEFUL_SHUTDOWN_S) ends inside the grace period; no pod
    migrates at start, the Job does, with the ledger's address and credentials."""
    resources = render("overlays/production")
    env = _find(resources, "ConfigMap", "hotline-env")["data"]
    settings = Settings(**{k.removeprefix("HOTLINE_").lower(): v for k, v in env.items()
                           if k.startswith("HOTLINE_")})
    assert settings.migrate_on_start is False
    assert settings.graceful_shutdown_s < 60
    for name in ("hotline-worker", "hotline-bridges"):
        pod = _find(resources, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] >= (
            settings.graceful_shutdown_s + CLOSE_MARGIN_S), name
    job = _find(resources, "Job", "hotline-migrate")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    names = {e["name"] for e in container["env"]}
    assert {"HOTLINE_DATABASE_URL", "PGPASSWORD"} <= names
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert "sslrootcert=/etc/hotline/pg-ca/ca.crt" in env["HOTLINE_DATABASE_URL"]
    assert "/etc/hotline/pg-ca" in mounts


def test_the_prometheus_rule_holds_the_same_rules_as_the_config_map() -> None:
    """Operator users get a PrometheusRule; it cannot drift from alerts.yml."""
    resources = render("overlays/production")
    shipped = yaml.safe_load(_find(resources, "ConfigMap", "hotline-prometheus-rules")[
        "data"]["alerts.yml"])["groups"]
    rule = _find(resources, "PrometheusRule", "hotline-alerts")
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["spec"]["groups"] == shipped, (
        "deploy/k8s/monitoring/prometheusrule.yaml differs from deploy/prometheus/"
        "alerts.yml: run python deploy/k8s/monitoring/prometheusrule.py")
    generated = K8S / "monitoring" / "prometheusrule.yaml"
    assert generated.read_text(encoding="utf-8") == _rule_file(), (
        "run python deploy/k8s/monitoring/prometheusrule.py")


def _rule_file() -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "prometheusrule", K8S / "monitoring" / "prometheusrule.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text: str = module.render()
    return text


def test_the_rules_and_the_dashboard_ship_as_config_maps() -> None:
    resources = render("overlays/production")
    configs = {name: next(r for r in resources if r["kind"] == "ConfigMap"
                          and r["metadata"]["name"].startswith(name + "-"))
               for name in ("hotline-config", "hotline-model", "hotline-category-model")}
    assert set(configs["hotline-model"]["data"]) == {"dispatch_model.json"}
    assert set(configs["hotline-category-model"]["data"]) == {"category_model.json"}
    shipped = {key for c in configs.values() for key in c["data"]}
    # Every process that reads the config folder sees all three, projected into one volume,
    # under the names kustomize gave them (with their content hash).
    names = {c["metadata"]["name"] for c in configs.values()}
    for deployment in (r for r in resources if r["kind"] == "Deployment"):
        for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
            if volume["name"] == "config":
                sources = {s["configMap"]["name"] for s in volume["projected"]["sources"]}
                assert sources == names, deployment["metadata"]["name"]
    present = {p.name for p in (REPO_ROOT / "deploy" / "config").iterdir() if p.is_file()}
    assert shipped == present, f"deploy/config and the ConfigMap differ: {shipped ^ present}"
    dashboard = _find(resources, "ConfigMap", "hotline-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["hotline-dashboard.json"])["panels"]
    rules = _find(resources, "ConfigMap", "hotline-prometheus-rules")
    assert yaml.safe_load(rules["data"]["alerts.yml"])["groups"]


def test_the_search_attribute_job_registers_the_workflow_attributes() -> None:
    job = _find(render("platform/temporal-setup"), "Job", "hotline-search-attributes")
    [container] = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    pairs = dict(p.split("=") for p in env["ATTRIBUTES"].split())
    assert pairs == {key.name: cli_type(key) for key in SEARCH_ATTRIBUTES}
    assert env["NAMESPACE"] == Settings().temporal_namespace


# --- Temporal Helm values -----------------------------------------------------------------

# Keys the chart's templates read that its values.yaml only mentions in comments:
# server-dynamicconfigmap.yaml, server-configmap.yaml (config.tls), and the per-service
# replica count of server-deployment.yaml ("default server.replicaCount").
_TEMPLATE_KEYS = {"server.dynamicConfig", "server.config.tls",
                  *(f"server.{s}.replicaCount" for s in ("frontend", "history", "matching",
                                                         "worker"))}
# The SQL datastore keys of the chart (values.yaml comments, _admintools-env.yaml).
_SQL_KEYS = {"pluginName", "driverName", "databaseName", "connectAddr", "connectProtocol",
             "host", "port", "user", "password", "existingSecret", "secretKey",
             "passwordCommand", "maxConns", "maxIdleConns", "maxConnLifetime",
             "connectAttributes", "tls", "createDatabase", "manageSchema"}
_SQL_TLS_KEYS = {"enabled", "caFile", "certFile", "keyFile", "serverName",
                 "enableHostVerification"}


def _temporal_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((K8S / "temporal" / "values.yaml").read_text())
    return values


def _unknown_keys(ours: Any, defaults: Any, path: str) -> Iterator[str]:
    if not isinstance(ours, dict):
        return
    for key, value in ours.items():
        here = f"{path}.{key}" if path else str(key)
        if here in _TEMPLATE_KEYS or here == "server.config.persistence.datastores":
            continue
        if not isinstance(defaults, dict) or key not in defaults:
            yield here
            continue
        default = defaults[key]
        # An empty map, list or null in the defaults is free-form (resources, env, ...).
        if isinstance(default, dict) and default:
            yield from _unknown_keys(value, default, here)


def test_temporal_values_use_only_keys_the_chart_knows() -> None:
    defaults = yaml.safe_load((K8S / "temporal" / "chart-values-1.6.0.yaml").read_text())
    values = _temporal_values()
    assert not sorted(_unknown_keys(values, defaults, ""))
    persistence = values["server"]["config"]["persistence"]
    stores = persistence["datastores"]
    assert set(stores) == {persistence["defaultStore"], persistence["visibilityStore"]}
    for name, store in stores.items():
        assert set(store) == {"sql"}, name
        sql = store["sql"]
        assert set(sql) <= _SQL_KEYS, f"{name}: {set(sql) - _SQL_KEYS}"
        assert set(sql["tls"]) <= _SQL_TLS_KEYS
        assert sql["pluginName"].startswith("postgres"), "PostgreSQL persistence"
    shards = persistence["numHistoryShards"]
    assert shards >= 512 and shards & (shards - 1) == 0, "a power of two, fixed for life"
    namespaces = [n["name"] for n in values["server"]["config"]["namespaces"]["namespace"]]
    assert Settings().temporal_namespace in namespaces
    tls = values["server"]["config"]["tls"]["frontend"]["server"]
    assert tls["requireClientAuth"] is True
    # The hotline's client certificate is issued for the name the frontend presents.
    env = _find(render("base"), "ConfigMap", "hotline-env")["data"]
    frontend = _find(render("platform/certificates"), "Certificate", "temporal-frontend-tls")
    assert env["HOTLINE_TEMPORAL_TLS_SERVER_NAME"] in frontend["spec"]["dnsNames"]
    assert values["server"]["config"]["tls"]["frontend"]["client"]["serverName"] in frontend[
        "spec"]["dnsNames"]
