"""The Open Inference Protocol's gRPC service on `keel serve`'s event loop.

Each call goes through what the HTTP endpoints use (`ServingApp.score`, `readiness`,
`model_metadata_document`, `model_is_ready`): the same routing (production, canary share,
a named version), validation against the inference contract, adaptive batching with HTTP
requests for the same version, prediction ids, prediction log and metrics (`protocol`
"grpc"). A request is turned into the document the HTTP endpoint reads; tensors come as
typed `contents` or as `raw_input_contents`, as tritonclient sends them.

Answers carry their outputs as `raw_output_contents`, as Triton's do (tritonclient reads
numbers from there only); a request with the parameter `binary_data_output` set to false gets
typed `contents` instead (for clients such as grpcurl that print messages as JSON). The
prediction ids are the response's `id` (the first row's) and, for several rows, the
parameter `prediction_ids`, comma-separated.

Refusals use the gRPC status codes that match HTTP's (400, 413 and 422: INVALID_ARGUMENT;
404: NOT_FOUND; 503: UNAVAILABLE), with the message the HTTP answer gives, and the problems
as JSON in the trailing metadata `keel-problems-bin`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, NoReturn

import grpc
import orjson
from grpc import aio

from keel.serving.binary import tensor_bytes, tensor_values, text_element
from keel.serving.codec import BadRequest, Batch, Problem, decode_oip, refuse_nul
from keel.serving.grpc.messages import SERVICE, message
from keel.serving.listen import GrpcListen

if TYPE_CHECKING:
    from keel.serving.app import ServingApp
    from keel.serving.slots import ServedVersion

__all__ = ["PROBLEMS_KEY", "InferenceService", "grpc_service"]

_log = logging.getLogger(__name__)

#: Trailing metadata of a refused call: its problems, as the HTTP answer's `problems` JSON.
PROBLEMS_KEY: Final = "keel-problems-bin"
#: At most this much JSON of problems in the trailing metadata, and this much of each text.
_PROBLEMS_BYTES: Final = 4096
_PROBLEM_CHARS: Final = 200
_MESSAGE_CHARS: Final = 1000
#: Calls in progress at once, per process.
_MAX_CALLS: Final = 1024

_ServerLiveResponse = message("ServerLiveResponse")
_ServerReadyResponse = message("ServerReadyResponse")
_ModelReadyResponse = message("ModelReadyResponse")
_ServerMetadataResponse = message("ServerMetadataResponse")
_ModelMetadataResponse = message("ModelMetadataResponse")
_ModelInferResponse = message("ModelInferResponse")

#: The `InferTensorContents` field that holds each datatype's values.
_CONTENTS: Final[Mapping[str, str]] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

_CODES: Final[Mapping[int, grpc.StatusCode]] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def grpc_service(listen: GrpcListen) -> Callable[[ServingApp], AbstractAsyncContextManager[None]]:
    """The gRPC endpoint as a service of the serving app (`keel.serving.app.create_app`'s
    `services`): started once the models are loaded, stopped before the prediction log
    closes. The port it bound is in `serving.listening["grpc"]`."""

    @asynccontextmanager
    async def run(serving: ServingApp) -> AsyncIterator[None]:
        server = aio.server(
            # Calls beyond this are refused at once (RESOURCE_EXHAUSTED) instead of each
            # holding a request of up to serving.max_request_bytes in memory.
            maximum_concurrent_rpcs=_MAX_CALLS,
            options=[
                ("grpc.so_reuseport", 1 if listen.reuse_port else 0),
                ("grpc.max_receive_message_length", serving.spec.max_request_bytes),
                ("grpc.max_send_message_length", -1),
            ],
        )
        server.add_generic_rpc_handlers((InferenceService(serving).handler(),))
        try:
            port = server.add_insecure_port(listen.address)
        except RuntimeError as exc:
            from keel.errors import ConfigError

            raise ConfigError(
                f"cannot listen for gRPC on {listen.address}: {exc}",
                problems=[("grpc-port", "must be free to listen on")],
            ) from None
        await server.start()
        bound = GrpcListen(listen.host, port).address
        serving.listening["grpc"] = bound
        _log.info("gRPC (Open Inference Protocol) on %s", bound)
        try:
            yield
        finally:
            serving.listening.pop("grpc", None)
            await server.stop(listen.grace)

    return run


class InferenceService:
    """The six calls of `inference.GRPCInferenceService`, answered by `serving`."""

    def __init__(self, serving: ServingApp) -> None:
        self.serving = serving

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(
            call: Callable[[Any], Awaitable[Any]], request: str, response: str
        ) -> grpc.RpcMethodHandler[Any, Any]:
            async def answer(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
                return await self._guarded(call, request, context)

            return grpc.unary_unary_rpc_method_handler(
                answer,
                request_deserializer=message(request).FromString,
                response_serializer=message(response).SerializeToString,
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "ServerLive": unary(self.server_live, "ServerLiveRequest", "ServerLiveResponse"),
                "ServerReady": unary(
                    self.server_ready, "ServerReadyRequest", "ServerReadyResponse"
                ),
                "ModelReady": unary(self.model_ready, "ModelReadyRequest", "ModelReadyResponse"),
                "ServerMetadata": unary(
                    self.server_metadata, "ServerMetadataRequest", "ServerMetadataResponse"
                ),
                "ModelMetadata": unary(
                    self.model_metadata, "ModelMetadataRequest", "ModelMetadataResponse"
                ),
                "ModelInfer": unary(self.model_infer, "ModelInferRequest", "ModelInferResponse"),
            },
        )

    async def _guarded(
        self,
        call: Callable[[Any], Awaitable[Any]],
        request: Any,
        context: aio.ServicerContext[Any, Any],
    ) -> Any:
        try:
            return await call(request)
        except BadRequest as exc:
            refusal = exc
        except Exception:  # noqa: BLE001 - the last line of defence, as HTTP's 500
            _log.exception("gRPC call failed")
            refusal = BadRequest(500, "internal error: the server could not answer this request")
        await _abort(context, refusal)

    # --- the calls ------------------------------------------------------------------------

    async def server_live(self, request: Any) -> Any:
        return _ServerLiveResponse(live=True)

    async def server_ready(self, request: Any) -> Any:
        document = await self.serving.readiness()
        return _ServerReadyResponse(ready=bool(document["ready"]))

    async def model_ready(self, request: Any) -> Any:
        _, ready = await self.serving.model_is_ready(request.name, request.version or None)
        return _ModelReadyResponse(ready=ready)

    async def server_metadata(self, request: Any) -> Any:
        from keel.serving.app import SERVER_METADATA

        return _ServerMetadataResponse(**SERVER_METADATA)

    async def model_metadata(self, request: Any) -> Any:
        document = self.serving.model_metadata_document(request.name, request.version or None)
        response = _ModelMetadataResponse(
            name=document["name"], versions=document["versions"], platform=document["platform"]
        )
        for side in ("inputs", "outputs"):
            for tensor in document[side]:
                getattr(response, side).add(
                    name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
                )
        return response

    async def model_infer(self, request: Any) -> Any:
        async def decode(served: ServedVersion) -> Batch:
            document = request_document(request)
            return decode_oip(document, served.contract, max_rows=self.serving.spec.max_rows)

        scored = await self.serving.score(
            request.model_name or None, request.model_version or None, "grpc", decode
        )
        raw = _parameter(request.parameters.get("binary_data_output")) is not False
        return response_message(scored.oip(), raw=raw)


# --- messages and documents ----------------------------------------------------------------


def request_document(request: Any) -> dict[str, Any]:
    """The OIP request document (as the HTTP endpoint reads it) of a `ModelInferRequest`,
    each tensor's values read from its `contents` or its `raw_input_contents` entry."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise _bad(
            "raw_input_contents",
            "one entry per input, in the order of inputs",
            f"{len(raw)} entries for {len(request.inputs)} inputs",
        )
    inputs: list[dict[str, Any]] = []
    for position, tensor in enumerate(request.inputs):
        where = f"inputs[{position}]"
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if raw:
            if tensor.contents.ListFields():
                raise _bad(
                    f"{where}.contents", "absent when raw_input_contents is used", "both given"
                )
            entry["data"] = _raw_values(raw[position], tensor.datatype, position)
        else:
            entry["data"] = _contents_values(tensor.contents, tensor.datatype, where)
        parameters = _parameters(tensor.parameters)
        if parameters:
            entry["parameters"] = parameters
        inputs.append(entry)
    document: dict[str, Any] = {"inputs": inputs}
    if request.id:
        document["id"] = request.id
    parameters = _parameters(request.parameters)
    if parameters:
        document["parameters"] = parameters
    if request.outputs:
        document["outputs"] = [
            {"name": output.name, "parameters": _parameters(output.parameters)}
            for output in request.outputs
        ]
    # As in a JSON body: the id, the names and the parameters are text a store may keep.
    # Only they are walked: BYTES values were checked as they were read, numbers hold no text.
    refuse_nul(document | {"inputs": [_without_data(entry) for entry in inputs]})
    return document


def _without_data(tensor: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in tensor.items() if key != "data"}


def response_message(document: Mapping[str, Any], *, raw: bool = True) -> Any:
    """The `ModelInferResponse` of an OIP response document: outputs as
    `raw_output_contents` (`raw`) or typed `contents`."""
    response = _ModelInferResponse(
        model_name=document["model_name"],
        model_version=document["model_version"],
        id=document["id"],
    )
    for key, value in document["parameters"].items():
        _set_parameter(response.parameters[key], value)
    for tensor in document["outputs"]:
        datatype, data = tensor["datatype"], tensor["data"]
        output = response.outputs.add(name=tensor["name"], datatype=datatype, shape=tensor["shape"])
        if raw:
            response.raw_output_contents.append(tensor_bytes(data, datatype))
        elif datatype == "BYTES":
            output.contents.bytes_contents.extend(str(v).encode("utf-8") for v in data)
        else:
            getattr(output.contents, _CONTENTS[datatype]).extend(data)
    return response


def _raw_values(chunk: bytes, datatype: str, position: int) -> list[Any]:
    where = f"raw_input_contents[{position}]"
    try:
        return tensor_values(chunk, datatype, f"inputs[{position}]")
    except BadRequest as exc:
        # Named as the gRPC message names them (the HTTP extension's names do not apply).
        problems = [
            Problem(
                where if p.field.endswith((".data", ".binary_data_size")) else p.field,
                p.rule,
                p.detail,
            )
            for p in exc.problems
        ]
        first = problems[0]
        raise BadRequest(400, f"{first.field}: {first.rule} ({first.detail})", problems) from None


def _contents_values(contents: Any, datatype: str, where: str) -> list[Any]:
    field = _CONTENTS.get(datatype)
    if field is None:
        rule = "FP16 values as raw_input_contents" if datatype == "FP16" else "an OIP datatype"
        raise _bad(f"{where}.datatype", rule, repr(datatype))
    others = [f.name for f, _ in contents.ListFields() if f.name != field]
    if others:
        raise _bad(
            f"{where}.contents.{others[0]}", f"values in {field} for {datatype}", "elsewhere"
        )
    values = list(getattr(contents, field))
    if datatype == "BYTES":
        return [text_element(v, f"{where}.contents.bytes_contents") for v in values]
    return values


def _parameters(parameters: Any) -> dict[str, Any]:
    return {key: _parameter(value) for key, value in parameters.items()}


def _parameter(value: Any) -> Any:
    if value is None:
        return None
    kind = value.WhichOneof("parameter_choice")
    return None if kind is None else getattr(value, kind)


def _set_parameter(target: Any, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_param = value
    elif isinstance(value, int):
        target.int64_param = value
    elif isinstance(value, float):
        target.double_param = value
    elif isinstance(value, list | tuple):
        target.string_param = ",".join(str(v) for v in value)
    else:
        target.string_param = str(value)


def _problems(refusal: BadRequest) -> bytes:
    """The problems as JSON, the first ones only when they are many: clients refuse trailing
    metadata beyond 8 KiB (and drop the call beyond 16), so the list stays under
    `_PROBLEMS_BYTES`, each text cut to `_PROBLEM_CHARS` (the message counts the rest)."""
    listed = [
        {
            key: value[:_PROBLEM_CHARS] if isinstance(value, str) else value
            for key, value in problem.to_dict().items()
        }
        for problem in refusal.problems
    ]
    encoded = orjson.dumps(listed)
    while len(encoded) > _PROBLEMS_BYTES and len(listed) > 1:
        listed = listed[: len(listed) // 2]
        encoded = orjson.dumps(listed)
    return encoded


def _bad(field: str, rule: str, detail: str) -> BadRequest:
    return BadRequest(400, f"{field}: {rule} ({detail})", [Problem(field, rule, detail)])


async def _abort(context: aio.ServicerContext[Any, Any], refusal: BadRequest) -> NoReturn:
    code = _CODES.get(refusal.status, grpc.StatusCode.INTERNAL)
    message = refusal.message
    if len(message) > _MESSAGE_CHARS:  # the message travels as metadata too
        message = message[: _MESSAGE_CHARS - 3] + "..."
    await context.abort(code, message, trailing_metadata=((PROBLEMS_KEY, _problems(refusal)),))
    raise AssertionError("unreachable: abort raises")  # pragma: no cover
