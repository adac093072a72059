"""deploy/k8s/: the ScheduledSparkApplication and its Kubernetes objects validated offline
against the published schemas, and the image (Dockerfile) consistent with the manifest and
the engine's pins. No cluster, no network.

- Kubernetes kinds: the JSON schemas kubernetes-validate ships (strict: unknown keys fail).
- ScheduledSparkApplication: the CRD's own openAPIV3Schema from the Kubeflow Spark Operator
  (tests/schemas/, see NOTICE), made strict the way kubeconform's -strict does (an object
  schema that lists its properties accepts no others, unless it preserves unknown fields).
"""
from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "deploy" / "k8s" / "retrain-nightly.yaml"
DOCKERFILE = REPO / "deploy" / "k8s" / "Dockerfile"
CRD_SCHEMA = Path(__file__).parent / "schemas" / "scheduledsparkapplication-v1beta2.json"
K8S_VERSION = "1.37.0"


def documents() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def strict(schema):
    """additionalProperties: false wherever an object schema lists properties and neither
    allows extra keys nor preserves unknown fields (x-kubernetes-preserve-unknown-fields)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def crd_validator():
    schema = strict(json.loads(CRD_SCHEMA.read_text()))
    return jsonschema.Draft7Validator(schema)


def scheduled(docs=None) -> dict:
    [app] = [d for d in (docs or documents()) if d["kind"] == "ScheduledSparkApplication"]
    return app


def test_every_kubernetes_object_matches_the_published_schema():
    kinds = []
    for doc in documents():
        if doc["apiVersion"].startswith("sparkoperator.k8s.io/"):
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on any fault
        kinds.append(doc["kind"])
    assert sorted(kinds) == ["PersistentVolumeClaim", "Role", "RoleBinding", "ServiceAccount"]


def test_the_scheduled_spark_application_matches_the_operators_crd(crd_validator):
    app = scheduled()
    assert app["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    errors = sorted(crd_validator.iter_errors(app), key=lambda e: list(e.path))
    assert not errors, [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors]


@pytest.mark.parametrize("path, key", [
    (("spec",), "concurrencyPolicyy"),
    (("spec", "template", "driver"), "serviceAcount"),
    (("spec", "template", "executor", "securityContext"), "runAsRoot"),
])
def test_a_misspelled_key_fails_the_crd_schema(crd_validator, path, key):
    app = copy.deepcopy(scheduled())
    node = app
    for p in path:
        node = node[p]
    node[key] = "x"
    messages = [e.message for e in crd_validator.iter_errors(app)]
    assert any(f"'{key}' was unexpected" in m for m in messages), messages


def test_one_run_at_a_time_no_operator_retry_and_the_schedule_in_utc():
    spec = scheduled()["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert (spec["schedule"], spec["timeZone"]) == ("0 2 * * *", "UTC")
    # A retry after exit 3 or 4 would find the night processed and succeed (README: exit codes).
    assert spec["template"]["restartPolicy"] == {"type": "Never"}


def dockerfile() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The Dockerfile's ARG defaults and its (instruction, arguments) lines, continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    instructions = [tuple(line.split(None, 1)) for line in lines]
    args = {}
    for op, rest in instructions:
        if op == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            args.setdefault(name, value)
    return args, instructions


def test_the_image_runs_what_the_manifest_names_with_the_engines_pins():
    args, instructions = dockerfile()
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pyspark = next(p for p in pins if p.startswith("pyspark=="))
    template = scheduled()["spec"]["template"]

    # One Spark version: the pin, the base image, the operator's sparkVersion.
    assert f"pyspark=={args['SPARK_VERSION']}" == pyspark
    assert template["sparkVersion"] == args["SPARK_VERSION"]
    base = [rest for op, rest in instructions if op == "FROM"][-1]  # the last stage is the image
    assert base.startswith("docker.io/apache/spark:${SPARK_VERSION}-") and "python3" in base
    # The jars: jars/pom.xml's (what `make install` fetches), built in a Maven stage, on Spark's
    # class path; the session writes through delta-spark with Delta's extension and catalog.
    runs = " ".join(rest for op, rest in instructions if op == "RUN")
    assert "mvn -q -B -f jars/pom.xml validate" in runs and "/opt/spark/jars/" in runs
    assert any(op == "COPY" and rest.startswith("--from=jars ") for op, rest in instructions)
    from engine.spark import DELTA_CATALOG, DELTA_EXTENSION

    assert template["sparkConf"]["spark.sql.extensions"] == DELTA_EXTENSION
    assert template["sparkConf"]["spark.sql.catalog.spark_catalog"] == DELTA_CATALOG

    # What the manifest runs is in the image: the job, the conf, the plugins the conf names.
    copied = {rest.split()[-1].rstrip("/"): rest.split()[0].rstrip("/") for op, rest in instructions
              if op == "COPY" and not rest.startswith("--from")}
    workdir = [rest for op, rest in instructions if op == "WORKDIR"][-1]
    main = template["mainApplicationFile"].removeprefix("local://")
    assert main.startswith(workdir + "/") and (REPO / main.removeprefix(workdir + "/")).is_file()
    assert main.removeprefix(workdir + "/").split("/")[0] in copied
    conf = template["arguments"][template["arguments"].index("--conf") + 1]
    assert conf == f"{workdir}/conf" and "conf" in copied
    project = yaml.safe_load((REPO / "conf" / "project.yaml").read_text())
    for plugin in project.get("plugins", []):
        assert plugin.split(".")[0] in copied, f"plugin {plugin} is not copied into the image"

    # Driver and executors mount the lakehouse where the conf puts it.
    lakehouse = f"{workdir}/{project['lakehouse'].removeprefix('./')}"
    for role in ("driver", "executor"):
        mounts = {m["mountPath"] for m in template[role]["volumeMounts"]}
        assert lakehouse in mounts, (role, mounts)
