"""Model names become valid Kubernetes and KServe names."""

from __future__ import annotations

import re

import pytest

from keel.deploy.container import resource_name, store_secret

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # DNS-1035, and KServe's name rule


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("flights-delay", "flights-delay"),
        ("flights_v2.1", "flights-v2-1"),
        ("7up", "model-7up"),
        ("a" * 63, "a" * 63),
        ("x_" * 31 + "y", ("x-" * 31 + "y")[:63]),
    ],
)
def test_resource_names_are_dns_labels(model: str, name: str) -> None:
    assert resource_name(model) == name
    assert DNS_LABEL.match(resource_name(model)) and len(resource_name(model)) <= 63
    assert store_secret(model) == f"{name}-store"
