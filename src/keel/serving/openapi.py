"""The OpenAPI 3.1 document of a running server, with each served model's request schema
taken from its inference contract (so clients can be generated per model)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keel import __version__
from keel.models.signature import InferenceContract, LogicalType
from keel.serving.slots import Route

__all__ = ["openapi_document"]

_JSON_TYPES: dict[LogicalType, dict[str, Any]] = {
    "integer": {"type": "integer"},
    "float": {"type": "number"},
    "boolean": {"type": "boolean"},
    "string": {"type": "string"},
    "timestamp": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
}


def _record_schema(contract: InferenceContract) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for field in contract.inputs:
        schema = dict(_JSON_TYPES[field.type])
        if field.nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[field.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": [f.name for f in contract.inputs],
        "additionalProperties": False,
    }


def _prediction_schema(contract: InferenceContract) -> dict[str, Any]:
    properties: dict[str, Any] = {"id": {"type": "string", "description": "the prediction id"}}
    for field in contract.outputs:
        properties[field.name] = dict(_JSON_TYPES[field.type])
    return {"type": "object", "properties": properties, "required": list(properties)}


_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "rule": {"type": "string"},
                    "detail": {"type": "string"},
                    "record": {"type": "integer"},
                },
                "required": ["field", "rule", "detail"],
            },
        },
    },
    "required": ["error"],
}

_TENSOR = {
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


def _errors() -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "400": {"description": "the request breaks the inference contract", **ref},
        "404": {"description": "the model or version is not served", **ref},
        "413": {"description": "too many bytes or rows", **ref},
    }


def openapi_document(routes: Mapping[str, Route]) -> dict[str, Any]:
    """The document for the models served right now."""
    schemas: dict[str, Any] = {
        "Error": _ERROR,
        "Tensor": _TENSOR,
        "InferenceRequest": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
                "outputs": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
            "required": ["inputs"],
        },
        "InferenceResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string", "description": "the (first) prediction id"},
                "parameters": {"type": "object"},
                "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            },
            "required": ["model_name", "id", "outputs"],
        },
    }
    paths: dict[str, Any] = {
        "/v2/health/live": {
            "get": {"summary": "liveness", "responses": {"200": {"description": "live"}}}
        },
        "/v2/health/ready": {
            "get": {
                "summary": "readiness: every model has its production version loaded",
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
        "/v2/models/{name}/infer": {
            "post": {
                "summary": "Open Inference Protocol v2: one input tensor per column",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/InferenceRequest"}
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "predictions",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/InferenceResponse"}
                            }
                        },
                    },
                    **_errors(),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text exposition format"}},
            }
        },
    }
    for name, route in sorted(routes.items()):
        if route.production is None:
            continue
        contract = route.production.contract
        key = "".join(
            part.capitalize() for part in name.replace(".", "-").replace("_", "-").split("-")
        )
        schemas[f"{key}Record"] = _record_schema(contract)
        schemas[f"{key}Prediction"] = _prediction_schema(contract)
        paths[f"/models/{name}/predict"] = {
            "post": {
                "summary": f"predict with {name} (v{route.production.version} in production)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "records": {
                                        "type": "array",
                                        "items": {"$ref": f"#/components/schemas/{key}Record"},
                                    }
                                },
                                "required": ["records"],
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "one prediction per record, each with its id",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "model": {"type": "string"},
                                        "version": {"type": "integer"},
                                        "slot": {"type": "string"},
                                        "predictions": {
                                            "type": "array",
                                            "items": {
                                                "$ref": f"#/components/schemas/{key}Prediction"
                                            },
                                        },
                                    },
                                }
                            }
                        },
                    },
                    **_errors(),
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "keel serve", "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }
