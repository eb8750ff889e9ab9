"""Turn a CustomResourceDefinition into the JSON schema `tests/test_deploy.py` validates against.

No API server runs in CI, so nothing would reject a typo in a KEDA resource. The CRD's own
openAPIV3Schema catches wrong types and missing fields; adding `additionalProperties: false`
where the server prunes unknown fields makes it catch unknown keys too (`pollingInteval`).
Descriptions are dropped so that a re-extraction diff shows only what changed in structure.

Usage: python deploy/schemas/extract_crd_schema.py CRD.yaml VERSION OUT.json
(a Helm-templated CRD from kedacore/charts works too: its `{{ ... }}` lines are skipped).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"


def strict_schema(node: Any) -> Any:
    """The schema without descriptions, closed wherever the API server would prune unknown keys."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key == "properties":
            result[key] = {name: strict_schema(schema) for name, schema in value.items()}
        else:
            result[key] = strict_schema(value)
    if "properties" in result and not result.get(PRESERVE_UNKNOWN) and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


def crd_version_schema(crd_text: str, version: str) -> dict[str, Any]:
    untemplated = "\n".join(line for line in crd_text.splitlines() if "{{" not in line)
    crd = yaml.safe_load(untemplated)
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    raise SystemExit(f"{crd['metadata']['name']} has no version {version}")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, version, target = argv
    schema = strict_schema(crd_version_schema(Path(source).read_text(), version))
    Path(target).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
