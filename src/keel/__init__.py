"""keel: a release system for machine-learning models.

import keel
with keel.Project.open("path/to/project") as project:
    print(project.status().ok)
"""

from keel.domain.digest import Digest
from keel.errors import (
    ApprovalRequired,
    ConfigError,
    Conflict,
    ContractViolation,
    DataError,
    DependencyMissing,
    GateFailed,
    IntegrityError,
    KeelError,
    NotFound,
    PermissionDenied,
    StoreError,
    UserCodeError,
)
from keel.project import Project, ProjectStatus
from keel.settings import Settings
from keel.spec import ProjectSpec, load_spec

__version__ = "0.1.0"

__all__ = [
    "ApprovalRequired",
    "ConfigError",
    "Conflict",
    "ContractViolation",
    "DataError",
    "DependencyMissing",
    "Digest",
    "GateFailed",
    "IntegrityError",
    "KeelError",
    "NotFound",
    "PermissionDenied",
    "Project",
    "ProjectSpec",
    "ProjectStatus",
    "Settings",
    "StoreError",
    "UserCodeError",
    "__version__",
    "load_spec",
]
