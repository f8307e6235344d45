"""Requests in, responses out: the Open Inference Protocol (v2 REST) and plain JSON records.

Everything a client sends is checked here against the model's inference contract before
the model sees it: malformed JSON, too deep or too large documents, missing and unknown
inputs, wrong types, nulls where the model had none, a tensor whose shape and data
disagree. Each problem names the field and the rule, and becomes a 4xx; nothing a client
sends can make the model raise.

Tabular requests follow MLServer's pandas codec: one named input tensor per column, shape
`[N]` or `[N, 1]`, strings, timestamps (ISO 8601) and dates (`YYYY-MM-DD`) as BYTES.

`body` parses the JSON, `values` holds values to the contract, `oip` and `records` decode the
two request shapes (and `oip` encodes responses), `problems` is what a refusal carries.
"""

from keel.serving.codec.body import parse_json, refuse_nul, unparsable
from keel.serving.codec.oip import OIP_DATATYPES, decode_oip, encode_oip, oip_datatype
from keel.serving.codec.problems import BadRequest, Batch, Problem
from keel.serving.codec.records import decode_records, to_frame
from keel.serving.codec.values import bound_problems

__all__ = [
    "OIP_DATATYPES",
    "BadRequest",
    "Batch",
    "Problem",
    "bound_problems",
    "decode_oip",
    "decode_records",
    "encode_oip",
    "oip_datatype",
    "parse_json",
    "refuse_nul",
    "to_frame",
    "unparsable",
]
