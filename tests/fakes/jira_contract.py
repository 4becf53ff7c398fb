"""Validates every response the fake Jira serves against Atlassian's published API description.

Responses to `/rest/api/{2,3}/...` are checked against `specs/jira-platform-rest-v3.openapi.json.gz` (source and
version in `specs/README.md`)
(v2 requests are checked at the same path under v3: the shapes are the same, only rich-text fields
differ and those are free-form in the description). The enhanced search `/search/jql`, newer than
that file, is checked against `specs/search_jql.openapi.json`. Error statuses the
description does not list for a path (429, 5xx) are checked against its `ErrorCollection` schema.
Bodies that a test deliberately breaks (malformed JSON) are not validated.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_schema_validator import OAS30Validator
from werkzeug.wrappers import Request, Response

REPO_ROOT = Path(__file__).resolve().parents[2]
SPECS = Path(__file__).with_name("specs")
SPEC = SPECS / "jira-platform-rest-v3.openapi.json.gz"
SEARCH_JQL_SPEC = SPECS / "search_jql.openapi.json"
_V2 = re.compile(r"^/rest/api/2/")


@cache
def _load(path: Path) -> tuple[OpenAPI, dict[str, Any]]:
    raw = path.read_bytes()
    data = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
    data["servers"] = [{"url": "/"}]  # the fake answers on 127.0.0.1, not your-domain.atlassian.net
    # The published file is trusted; skipping its self-check keeps loading at a few milliseconds.
    config = Config(spec_validator_cls=None)  # pyright: ignore[reportArgumentType]  # None is openapi-core's "skip"
    return OpenAPI.from_dict(data, config=config), data


class _V3PathRequest(WerkzeugOpenAPIRequest):
    """The request as the v3 description knows it: `/rest/api/2/x` is looked up as `/rest/api/3/x`."""

    @property
    def path(self) -> str:
        return _V2.sub("/rest/api/3/", self.request.path)


def violations(request: Request, response: Response) -> list[str]:
    """What is wrong with `response` to `request` according to the API description; [] when it conforms."""
    path = _V2.sub("/rest/api/3/", request.path)
    api, data = _load(SEARCH_JQL_SPEC if path.endswith("/search/jql") else SPEC)
    where = f"{request.method} {request.path} -> {response.status_code}"
    try:
        api.validate_response(_V3PathRequest(request), WerkzeugOpenAPIResponse(response))
    except ResponseNotFound:
        if response.status_code < 400:
            return [f"{where}: status not described for this operation"]
        schema = data["components"]["schemas"]["ErrorCollection"]
        body = response.get_json(silent=True)
        return [f"{where}: {err.message}" for err in OAS30Validator(schema).iter_errors(body)]
    except Exception as exc:  # openapi-core raises a family of errors; each is a contract violation
        cause = exc.__cause__ or exc
        return [f"{where}: {type(exc).__name__}: {cause}"[:2000]]
    return []
