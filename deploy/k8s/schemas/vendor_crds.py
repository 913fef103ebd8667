"""Extract the OpenAPI schemas of CustomResourceDefinitions into JSON files, for offline checks.

tests/test_manifests.py validates the custom resources in deploy/k8s (Strimzi, CloudNativePG,
prometheus-operator, KEDA, cert-manager) against these files without a cluster or a
network. Each CRD version becomes ``<group>_<kind>_<version>.json``: its
``openAPIV3Schema`` with the ``description`` texts removed (they are most of the bytes and
no check reads them), ``additionalProperties: false`` added to every object that lists its
properties (the API server prunes unknown fields silently; the test wants to hear about a
misspelt field instead), and the source recorded in ``x-hotline-source``.

Refresh after an operator upgrade, from the operator's released CRD files::

    python deploy/k8s/schemas/vendor_crds.py --source strimzi-1.2.0 \\
        040-Crd-kafka.yaml 043-Crd-kafkatopic.yaml ...

and update the table in deploy/k8s/schemas/README.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


def _strict(node: Any) -> Any:
    """The schema without descriptions, objects with properties closed to other fields."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items() if k != "description"}
        preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
        if (node.get("type") == "object" and "properties" in node and not preserve
                and "additionalProperties" not in node):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(item) for item in node]
    return node


def vendor(crd_files: list[Path], source: str, out_dir: Path = HERE) -> list[Path]:
    """Write one JSON schema per served version of each CRD; returns the files written."""
    written = []
    for path in crd_files:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = _strict(version["schema"]["openAPIV3Schema"])
                schema["x-hotline-source"] = f"{source}: {path.name}"
                target = out_dir / f"{group}_{kind}_{version['name']}.json"
                target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="operator and version, e.g. keda-2.20.2")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("crds", nargs="+", type=Path, help="CRD YAML files")
    args = parser.parse_args()
    for path in vendor(args.crds, args.source, args.out):
        print(path)


if __name__ == "__main__":
    main()
