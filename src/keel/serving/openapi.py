"""The OpenAPI 3.1 document of a running server, with each served model's request schema
taken from its inference contract (so clients can be generated per model).

The document describes what the server accepts, no more: a schema never allows a request the
server refuses for its shape (empty `records` or `inputs`, more rows than `serving.max_rows`,
integers beyond 64 bits, text holding NUL, values outside the ranges and domains a version
was registered with while `serving.input_contract` enforces them), and every status a route
answers with is listed with its document's schema. `tests/serving/test_fuzz.py` holds the
server to it with schemathesis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from keel.domain.model import MAX_VERSION, MODEL_NAME_PATTERN
from keel.models.signature import InferenceContract, InputField, LogicalType
from keel.serving.slots import Route
from keel.version import __version__

if TYPE_CHECKING:
    from keel.spec import ServingSpec

__all__ = ["feedback_schema", "openapi_document"]

_INT64: Final = {"minimum": -(2**63), "maximum": 2**63 - 1}
#: Text without NUL characters: no store keeps them, so the server refuses them.
_TEXT: Final = {"type": "string", "pattern": "^[^\\u0000]*$"}
_JSON_TYPES: Final[dict[LogicalType, dict[str, Any]]] = {
    "integer": {"type": "integer", **_INT64},
    "float": {"type": "number"},
    "boolean": {"type": "boolean"},
    "string": dict(_TEXT),
    "timestamp": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
}
#: The model-name rule, as a path parameter's pattern.
_NAME_PATTERN: Final = MODEL_NAME_PATTERN
_OIP_DATATYPES: Final = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]


def _input_schema(field: InputField, enforced: bool) -> dict[str, Any]:
    schema = dict(_JSON_TYPES[field.type])
    bounds: dict[str, Any] = {}
    if field.allowed is not None:
        bounds["enum"] = list(field.allowed)
    if field.minimum is not None:
        bounds["minimum"] = field.minimum
    if field.maximum is not None:
        bounds["maximum"] = field.maximum
    if enforced:
        schema |= bounds
    elif bounds:
        schema["description"] = (
            f"trained on {', '.join(f'{k} {v}' for k, v in bounds.items())}: other values "
            "are answered, logged and counted "
            "(serving.input_contract: warn)"
        )
    if field.nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def _record_schema(contract: InferenceContract, enforced: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: _input_schema(f, enforced) for f in contract.inputs},
        "required": [f.name for f in contract.inputs],
        "additionalProperties": False,
    }


def _prediction_schema(contract: InferenceContract) -> dict[str, Any]:
    properties: dict[str, Any] = {"id": {"type": "string", "description": "the prediction id"}}
    for field in contract.outputs:
        kind = _JSON_TYPES[field.type]["type"]
        # A model may answer NaN for a row (a regressor's overflow): it travels as null.
        properties[field.name] = {"type": [kind, "null"]}
    return {"type": "object", "properties": properties, "required": list(properties)}


_PROBLEM: Final = {
    "type": "object",
    "properties": {
        "field": {"type": "string"},
        "rule": {"type": "string"},
        "detail": {"type": "string"},
        "record": {"type": "integer"},
    },
    "required": ["field", "rule", "detail"],
}
_ERROR: Final = {
    "type": "object",
    "description": "what was refused and why; `problems` name each field and rule",
    "properties": {
        "error": {"type": "string"},
        "problems": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
        "model": {"type": "string"},
        "version": {"type": "integer"},
        "exception": {
            "type": "object",
            "description": "what the model's own code raised (422)",
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            "required": ["type", "message"],
        },
    },
    "required": ["error"],
}


def _tensor(max_rows: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "name": {**_TEXT, "minLength": 1},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": max_rows},
                "minItems": 1,
                "maxItems": 1,
                "description": "[N], or [N, 1]",
            },
            "datatype": {"type": "string", "enum": _OIP_DATATYPES},
            "data": {"type": "array", "minItems": 1, "maxItems": max_rows},
            "parameters": {"type": "object"},
        },
        "required": ["name", "shape", "datatype", "data"],
    }


_OUTPUT_TENSOR: Final = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string"},
        "data": {"type": "array"},
        "parameters": {"type": "object"},
    },
    "required": ["name", "shape", "datatype", "data"],
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, **_json_content(_ref("Error"))}


def _refusals(limit: int) -> dict[str, Any]:
    return {
        "400": _error("the request breaks the inference contract (each problem names the field)"),
        "404": _error("the model or version is not served (the problem names the parameter)"),
        "413": _error(f"a body over {limit:,} bytes (serving.max_request_bytes) or too many rows"),
        "422": _error(
            "the model's own code raised on a valid request, or a value is outside the ranges "
            "and domains the version was registered with (serving.input_contract: enforce)"
        ),
        "503": _error("the prediction log cannot take more predictions; retry shortly"),
    }


def _name_parameter() -> dict[str, Any]:
    return {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": _NAME_PATTERN},
    }


def _version_parameter() -> dict[str, Any]:
    return {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
    }


def _metadata_paths(path: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    not_served = _error("the model or version is not served (the problem names the parameter)")
    ready_not_served = {
        "description": "the model or version is not served",
        **_json_content(_ref("ModelReady")),
    }
    return {
        path: {
            "get": {
                "summary": "Open Inference Protocol model metadata",
                "parameters": parameters,
                "responses": {
                    "200": {"description": "inputs and outputs", **_json_content(_ref("Model"))},
                    "404": not_served,
                },
            }
        },
        f"{path}/ready": {
            "get": {
                "summary": "whether the model (version) is loaded",
                "parameters": parameters,
                "responses": {
                    "200": {"description": "readiness", **_json_content(_ref("ModelReady"))},
                    "404": ready_not_served,
                },
            }
        },
        f"{path}/infer": {
            "post": {
                "summary": "Open Inference Protocol v2: one input tensor per column",
                "parameters": parameters,
                "requestBody": {"required": True, **_json_content(_ref("InferenceRequest"))},
                "responses": {
                    "200": {
                        "description": "predictions",
                        **_json_content(_ref("InferenceResponse")),
                    },
                    **_refusals_ref(),
                },
            }
        },
    }


def _refusals_ref() -> dict[str, Any]:
    return {status: {"$ref": f"#/components/responses/Refused{status}"} for status in _STATUSES}


_STATUSES: Final = ("400", "404", "413", "422", "503")


def openapi_document(
    routes: Mapping[str, Route], spec: ServingSpec | None = None
) -> dict[str, Any]:
    """The document for the models served right now, under `spec`'s limits (keel.yaml's
    `serving:`; the defaults without one)."""
    if spec is None:
        from keel.spec import ServingSpec

        spec = ServingSpec()
    max_rows = spec.max_rows
    enforced = spec.input_contract == "enforce"
    schemas: dict[str, Any] = {
        "Error": _ERROR,
        "Problem": _PROBLEM,
        "Tensor": _tensor(max_rows),
        "OutputTensor": _OUTPUT_TENSOR,
        "InferenceRequest": {
            "type": "object",
            "properties": {
                "id": _TEXT,
                "parameters": {"type": "object"},
                "inputs": {
                    "type": "array",
                    "items": _ref("Tensor"),
                    "minItems": 1,
                    "description": "one tensor per input of the model, each of the same length",
                },
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                    },
                },
            },
            "required": ["inputs"],
            "additionalProperties": False,
        },
        "InferenceResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string", "description": "the (first) prediction id"},
                "parameters": {"type": "object"},
                "outputs": {"type": "array", "items": _ref("OutputTensor")},
            },
            "required": ["model_name", "model_version", "id", "outputs"],
        },
        "Model": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": {"type": "object"}},
                "outputs": {"type": "array", "items": {"type": "object"}},
                "parameters": {"type": "object"},
            },
            "required": ["name", "versions", "platform", "inputs", "outputs"],
        },
        "ModelReady": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "ready": {"type": "boolean"},
                "error": {"type": "string"},
                "problems": {"type": "array", "items": _ref("Problem")},
            },
            "required": ["name", "ready"],
        },
        "Ready": {
            "type": "object",
            "properties": {
                "ready": {"type": "boolean"},
                "models": {"type": "object"},
                "load_failures": {"type": "array"},
            },
            "required": ["ready"],
        },
    }
    ready = {"description": "readiness", **_json_content(_ref("Ready"))}
    paths: dict[str, Any] = {
        "/v2": {
            "get": {
                "summary": "server metadata",
                "responses": {
                    "200": {
                        "description": "name, version and extensions",
                        **_json_content(
                            {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "extensions": {"type": "array", "items": {"type": "string"}},
                                },
                                "required": ["name", "version", "extensions"],
                            }
                        ),
                    }
                },
            }
        },
        "/v2/health/live": {
            "get": {
                "summary": "liveness",
                "responses": {
                    "200": {
                        "description": "live",
                        **_json_content(
                            {"type": "object", "properties": {"live": {"type": "boolean"}}}
                        ),
                    }
                },
            }
        },
        "/v2/health/ready": {
            "get": {
                "summary": "readiness: every model has its production version loaded",
                "responses": {"200": ready, "503": {**ready, "description": "not ready"}},
            }
        },
        **_metadata_paths("/v2/models/{name}", [_name_parameter()]),
        **_metadata_paths(
            "/v2/models/{name}/versions/{version}", [_name_parameter(), _version_parameter()]
        ),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/v1/feedback": {
            "post": {
                "summary": "delayed labels, joined to logged predictions (a token whose roles "
                "may label: labeler, trainer, admin)",
                "security": [{"bearerAuth": []}],
                "requestBody": {"required": True, **_json_content(feedback_schema(max_rows))},
                "responses": {
                    "200": {
                        "description": "what was recorded",
                        **_json_content(
                            {
                                "type": "object",
                                "properties": {"ok": {"const": True}},
                                "required": ["ok"],
                            }
                        ),
                    },
                    "400": _error("a bad body: each problem names the field and the rule"),
                    "401": _error("no valid API token (`WWW-Authenticate: Bearer`)"),
                    "403": _error("the token's roles may not label"),
                    "404": _error("no such model, or no logged prediction with an id"),
                    "413": _error("a body over serving.max_request_bytes, or too many labels"),
                    "415": _error("the body is not declared `Content-Type: application/json`"),
                    "503": _error("the metadata store is unreachable; retry shortly"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "this document",
                "responses": {
                    "200": {"description": "OpenAPI 3.1", **_json_content({"type": "object"})}
                },
            }
        },
    }
    default = _default_model(routes)
    for name, route in sorted(routes.items()):
        if route.production is None:
            continue
        contract = route.production.contract
        key = "".join(
            part.capitalize() for part in name.replace(".", "-").replace("_", "-").split("-")
        )
        schemas[f"{key}Record"] = _record_schema(contract, enforced)
        schemas[f"{key}Prediction"] = _prediction_schema(contract)
        operation = _predict_operation(name, route, key, max_rows)
        paths[f"/models/{name}/predict"] = {"post": operation}
        if name == default:
            paths["/predict"] = {"post": operation}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "keel serve",
            "version": __version__,
            "description": (
                f"Bodies are at most {spec.max_request_bytes:,} bytes "
                f"(serving.max_request_bytes, 413 beyond) and {max_rows:,} rows "
                "(serving.max_rows); JSON documents at most 16 levels deep (400)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token, keel_<id>_<secret> (`keel tokens create`)",
                }
            },
            "responses": {
                f"Refused{status}": response
                for status, response in _refusals(spec.max_request_bytes).items()
            },
        },
    }


def feedback_schema(max_rows: int) -> dict[str, Any]:
    """The body of both feedback routes (`/v1/feedback` here, `/api/v1/feedback`), as
    `keel.monitoring.feedback.receive` reads it."""
    return {
        "type": "object",
        "properties": {
            "feedback": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_rows,
                "items": {
                    "type": "object",
                    "properties": {
                        "prediction_id": {"type": "string", "pattern": "^[0-9a-fA-F-]{32,36}$"},
                        "label": {"type": ["boolean", "integer", "number", "string"]},
                    },
                    "required": ["prediction_id", "label"],
                },
            },
            "model": {"type": "string", "pattern": _NAME_PATTERN},
            "allow_unknown": {"type": "boolean"},
        },
        "required": ["feedback"],
    }


def _default_model(routes: Mapping[str, Route]) -> str | None:
    """The model `POST /predict` answers with: the only one served (the app also takes the
    project's own name, which this document does not know)."""
    served = [name for name, route in routes.items() if route.production is not None]
    return served[0] if len(served) == 1 else None


def _predict_operation(name: str, route: Route, key: str, max_rows: int) -> dict[str, Any]:
    assert route.production is not None
    return {
        "summary": f"predict with {name} (v{route.production.version} in production)",
        "requestBody": {
            "required": True,
            **_json_content(
                {
                    "type": "object",
                    "properties": {
                        "records": {
                            "type": "array",
                            "items": _ref(f"{key}Record"),
                            "minItems": 1,
                            "maxItems": max_rows,
                        },
                        "id": {**_TEXT, "description": "the client's own request id"},
                    },
                    "required": ["records"],
                    "additionalProperties": False,
                }
            ),
        },
        "responses": {
            "200": {
                "description": "one prediction per record, each with its id",
                **_json_content(
                    {
                        "type": "object",
                        "properties": {
                            "model": {"type": "string"},
                            "version": {"type": "integer"},
                            "slot": {"type": "string"},
                            "predictions": {
                                "type": "array",
                                "items": _ref(f"{key}Prediction"),
                            },
                        },
                        "required": ["model", "version", "slot", "predictions"],
                    }
                ),
            },
            **_refusals_ref(),
        },
    }
