"""What the OpenAPI document (the contract) says about a request path: its parameters and the
methods it allows. Used only on rare paths (a NUL in a path, a 405), so nothing is cached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.routing import compile_path

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class DocumentedPath:
    template: str
    params: dict[str, str]
    methods: list[str]


def documented_path(app: Any, path: str) -> DocumentedPath | None:
    """The documented path `path` matches, with its parameters and methods (upper case)."""
    for template, operations in app.openapi()["paths"].items():
        pattern, _, _ = compile_path(template)
        match = pattern.match(path)
        if match:
            methods = [method.upper() for method in operations if method in METHODS]
            return DocumentedPath(template, match.groupdict(), methods)
    return None


# OpenAPI links: what a created resource lets a client (or schemathesis' stateful phase) do next.
# {(operation, status): {link name: (target operation, {parameter: runtime expression})}}
_MODEL_VERSION = {"name": "$response.body#/model", "version": "$response.body#/version"}
_MODEL = {"name": "$response.body#/model"}
_AB_TEST = {"ab_test_id": "$response.body#/id"}
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("create_api_key", "201"): {
        "RevokeKey": ("revoke_api_key", {"api_key_id": "$response.body#/id"})
    },
    ("register_version", "201"): {
        "GetVersion": ("get_version", _MODEL_VERSION),
        "UpdateVersion": ("update_version", _MODEL_VERSION),
        "DownloadArtifact": ("download_artifact", _MODEL_VERSION),
        "GetModel": ("get_model", _MODEL),
        "UpdateModel": ("update_model", _MODEL),
        "ListVersions": ("list_versions", _MODEL),
        "SetAlias": ("set_alias", _MODEL),
        "Rollback": ("rollback_production", _MODEL),
        "GetLineage": ("get_lineage", _MODEL),
        "ListAttestations": ("list_model_attestations", _MODEL),
        "VerifyAttestations": ("verify_model_attestations", _MODEL),
    },
    ("update_model", "200"): {"GetModel": ("get_model", {"name": "$response.body#/name"})},
    ("set_alias", "200"): {
        "GetAliasHistory": (
            "get_alias_history",
            {"name": "$request.path.name", "alias": "$response.body#/alias"},
        ),
        "DeleteAlias": (
            "delete_alias",
            {"name": "$request.path.name", "alias": "$response.body#/alias"},
        ),
    },
    ("create_ab_test", "201"): {
        name: (operation, _AB_TEST)
        for name, operation in (
            ("GetAbTest", "get_ab_test"),
            ("UpdateAbTest", "update_ab_test"),
            ("StartAbTest", "start_ab_test"),
            ("PauseAbTest", "pause_ab_test"),
            ("ResumeAbTest", "resume_ab_test"),
            ("StopAbTest", "stop_ab_test"),
            ("AssignUnit", "assign_unit"),
            ("PredictThroughTest", "predict_through_test"),
            ("RecordOutcomes", "record_outcomes"),
            ("GetResults", "get_results"),
            ("PromoteVariant", "promote_variant"),
        )
    },
}


def add_links(schema: dict[str, Any]) -> None:
    operations = {
        operation["operationId"]: operation
        for path in schema["paths"].values()
        for operation in path.values()
    }
    for (source, status), links in LINKS.items():
        response = operations[source]["responses"][status]
        response["links"] = {
            name: {"operationId": target, "parameters": parameters}
            for name, (target, parameters) in links.items()
        }
        for target, _ in links.values():
            assert target in operations, target


def declare_no_nul(schema: dict[str, Any], pattern: str) -> None:
    """Path and query text never holds NUL (the request middleware refuses it): say so on every
    string parameter that has no pattern of its own."""
    for path in schema["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] not in ("path", "query"):
                    continue
                for option in parameter["schema"].get("anyOf", [parameter["schema"]]):
                    free_text = option.get("format") not in ("uuid", "date-time")
                    if option.get("type") == "string" and "pattern" not in option and free_text:
                        option["pattern"] = pattern
