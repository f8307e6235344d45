"""Reproducible infrastructure for a model version: container images pinned to the
environment its run recorded, Kubernetes and KServe manifests for `keel serve`, and the
check that a running environment is the recorded one.

    source.py      the version, its recorded environment lock, the project files it needs
    container.py   port, health routes, user and Secret shared by every rendered file
    docker.py      Dockerfile.serve, Dockerfile.train, requirements.lock, .dockerignore
    kubernetes.py  Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget
    kserve.py      InferenceService with keel serve as a custom predictor
    folder.py      all-or-nothing writing of the rendered folder
    render.py      `keel deploy render`
    envcheck.py    `keel env check`
"""

from keel.deploy.envcheck import EnvironmentCheck, check_environment
from keel.deploy.render import TARGETS, RenderResult, Target, render

__all__ = ["TARGETS", "EnvironmentCheck", "RenderResult", "Target", "check_environment", "render"]
