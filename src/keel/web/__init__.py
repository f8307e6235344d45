"""keel over HTTP: the JSON API (`/api/v1`) and, later, the web UI.

from keel.web import create_api
from keel.web.server import run_in_thread

with Project.open(".") as project, run_in_thread(create_api(project)) as url:
    ...  # GET {url}/api/v1/models with `Authorization: Bearer keel_...`
"""

from keel.web.api import API_PREFIX, api_mount, create_api

__all__ = ["API_PREFIX", "api_mount", "create_api"]
