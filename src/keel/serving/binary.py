"""The Open Inference Protocol's binary tensor data extension, as KServe v2 and Triton define it.

A request may carry tensors as raw bytes after its JSON: the header `Inference-Header-Content-
Length` gives the JSON's length, and each binary input says how many bytes are its own with
`parameters.binary_data_size`, in the order of `inputs`. Numbers are little-endian, BOOL one
byte each, BYTES each element as a 4-byte little-endian length then its bytes. Outputs come back
the same way when the request asks (`outputs[i].parameters.binary_data`, or
`parameters.binary_data_output` for all). tritonclient sends and asks for binary tensors by
default, so this is what keeps its defaults working.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from keel.serving.codec import BadRequest, Problem

__all__ = [
    "HEADER",
    "decode_binary_inputs",
    "encode_binary_outputs",
    "split_body",
    "tensor_bytes",
    "tensor_values",
    "text_element",
]

HEADER: Final = "inference-header-content-length"

_NUMPY: Final[Mapping[str, str]] = {
    "BOOL": "|b1",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def split_body(body: bytes, header: str | None) -> tuple[bytes, bytes]:
    """The JSON part of a request and its binary tail (empty without the header)."""
    if header is None:
        return body, b""
    text = header.strip()
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
    if not (text.isascii() and text.isdigit()) or int(text) > len(body):
        raise BadRequest(
            400,
            f"Inference-Header-Content-Length: {header!r} is not a length within the body",
            [Problem("Inference-Header-Content-Length", "the JSON part's length in bytes", text)],
        )
    length = int(text)
    return body[:length], body[length:]


def decode_binary_inputs(document: Any, blob: bytes) -> Any:
    """`document` with each binary input's `data` read from `blob`; refused naming the input
    when the sizes, the datatype or the bytes do not fit."""
    inputs = document.get("inputs") if isinstance(document, dict) else None
    if not isinstance(inputs, list):
        if blob:
            raise _bad("inputs", "binary data belongs to input tensors", "no inputs")
        return document
    offset = 0
    for position, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            continue
        parameters = tensor.get("parameters")
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        where = f"inputs[{position}]"
        size = parameters["binary_data_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _bad(f"{where}.parameters.binary_data_size", "a byte count", repr(size))
        if offset + size > len(blob):
            raise _bad(
                f"{where}.parameters.binary_data_size",
                "within the binary data",
                f"{size} bytes from byte {offset}, but {len(blob)} were sent",
            )
        if "data" in tensor:
            raise _bad(f"{where}.data", "absent for a binary tensor", "both given")
        chunk = blob[offset : offset + size]
        offset += size
        tensor["data"] = tensor_values(chunk, tensor.get("datatype"), where)
        del parameters["binary_data_size"]
    if offset != len(blob):
        raise _bad(
            "inputs", "binary sizes that add up to the binary data", f"{len(blob) - offset} left"
        )
    return document


def encode_binary_outputs(
    response: dict[str, Any], request: Any
) -> tuple[dict[str, Any], bytes] | None:
    """The response with the outputs the request asked as binary moved into a binary tail,
    or None when it asked for none."""
    wanted = _binary_outputs(request)
    if not wanted:
        return None
    tail = bytearray()
    for tensor in response["outputs"]:
        if tensor["name"] not in wanted and "*" not in wanted:
            continue
        data = tensor_bytes(tensor.pop("data"), tensor["datatype"])
        tensor["parameters"] = {**tensor.get("parameters", {}), "binary_data_size": len(data)}
        tail += data
    return response, bytes(tail)


def _binary_outputs(request: Any) -> set[str]:
    if not isinstance(request, dict):
        return set()
    parameters = request.get("parameters")
    if isinstance(parameters, dict) and parameters.get("binary_data_output") is True:
        return {"*"}
    names = set()
    for output in request.get("outputs") or []:
        if not isinstance(output, dict):
            continue
        parameters = output.get("parameters")
        if isinstance(parameters, dict) and parameters.get("binary_data") is True:
            names.add(str(output.get("name")))
    return names


def tensor_values(chunk: bytes, datatype: object, where: str) -> list[Any]:
    """The values of a binary tensor `where` (`inputs[i]`) of `datatype`; refused naming
    `where`'s data, datatype or size when they do not fit."""
    if datatype == "BYTES":
        values: list[Any] = []
        offset = 0
        while offset < len(chunk):
            if offset + 4 > len(chunk):
                raise _bad(f"{where}.data", "4-byte lengths before each BYTES element", "cut")
            (length,) = struct.unpack_from("<I", chunk, offset)
            offset += 4
            if offset + length > len(chunk):
                raise _bad(f"{where}.data", "BYTES elements within their size", "cut")
            values.append(text_element(chunk[offset : offset + length], f"{where}.data"))
            offset += length
        return values
    dtype = _NUMPY.get(str(datatype))
    if dtype is None:
        raise _bad(f"{where}.datatype", "an OIP datatype", repr(datatype))
    width = np.dtype(dtype).itemsize
    if len(chunk) % width:
        raise _bad(
            f"{where}.parameters.binary_data_size",
            f"a multiple of {width} bytes for {datatype}",
            str(len(chunk)),
        )
    return list(np.frombuffer(chunk, dtype=dtype).tolist())


def text_element(element: bytes, where: str) -> str:
    """A BYTES element as the text it must be; refused naming `where` otherwise."""
    if b"\x00" in element:
        # No store keeps a NUL in text (PostgreSQL refuses it): refused here, at the edge.
        raise _bad(where, "text without NUL characters", "a NUL byte")
    try:
        return element.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(where, "UTF-8 text", "invalid bytes") from None


def tensor_bytes(values: Sequence[Any], datatype: str) -> bytes:
    """A tensor's values as raw bytes: little-endian numbers, BYTES length-prefixed."""
    if datatype == "BYTES":
        out = bytearray()
        for value in values:
            encoded = str(value).encode("utf-8")
            out += struct.pack("<I", len(encoded)) + encoded
        return bytes(out)
    return np.asarray(values, dtype=_NUMPY[datatype]).tobytes()


def _bad(field: str, rule: str, detail: str) -> BadRequest:
    return BadRequest(400, f"{field}: {rule} ({detail})", [Problem(field, rule, detail)])
