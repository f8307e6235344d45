"""Model formats and packages: estimators stored without pickle, with their feature code.

`save_package` / `load_package` are the entry points; `infer_inference_contract` and
`validate_request` describe and check what a model takes.
"""

from keel.models.formats import EstimatorFile, Flavor, PythonFunctionModel, flavor_of
from keel.models.package import LoadedModel, load_package, package_digest, save_package
from keel.models.signature import (
    InferenceContract,
    InputField,
    OutputField,
    RequestProblem,
    infer_inference_contract,
    validate_request,
)

__all__ = [
    "EstimatorFile",
    "Flavor",
    "InferenceContract",
    "InputField",
    "LoadedModel",
    "OutputField",
    "PythonFunctionModel",
    "RequestProblem",
    "flavor_of",
    "infer_inference_contract",
    "load_package",
    "package_digest",
    "save_package",
    "validate_request",
]
