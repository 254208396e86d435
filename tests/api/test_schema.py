"""schemathesis against the live OpenAPI schema of a running ``tickwork serve``.

Every operation under ``/api/v1`` (but the endless event stream) gets requests that fit
its schema and requests that do not, from a fixed seed (derandomized): a few thousand
in all. Each answer must be no 5xx, a documented status code and content type, a body
matching its schema, and invalid requests must be refused with a 4xx. Whether valid
data is *accepted* is not asked: a request can fit the schema and still name an
unknown task or a schedule that does not exist.
"""

from __future__ import annotations

import http.cookiejar

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

from tests.api.conftest import Server, StartServer

#: Examples per operation and generation mode (about 2,500 requests in all).
EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]


@pytest.fixture
def fuzzed_server(sqlite_url: str, serve_api: StartServer) -> Server:
    # No rate limit: the fuzzer sends far more than 600 requests a minute.
    return serve_api(sqlite_url, env={"TICKWORK_RATE_LIMIT": "0"})


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_api_keeps_to_its_schema_under_generated_requests(fuzzed_server: Server) -> None:
    schema = (
        schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")
        .include(path_regex="^/api/v1/")
        .exclude(path_regex="/events")
    )
    # Every request carries the admin's token (``auth``): the bearer scheme the schema
    # declares is not a parameter to generate, nor to leave out as invalid data.
    schema.config.generation.update(with_security_parameters=False)
    auth = {"Authorization": f"Bearer {fuzzed_server.admin_token}"}
    # One session for every request: kept-alive connections, not one per request; it
    # keeps no cookie, so each request stands alone as with a session of its own.
    session = requests.Session()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    sent = 0
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                nonlocal sent
                sent += 1
                response = case.call(session=session, headers=auth, timeout=30)
                case.validate_response(response, headers=auth, checks=CHECKS)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing invalid to send (an operation without parameters)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # the failure group of schemathesis
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    session.close()
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
    assert sent >= 1500, sent


def test_the_schema_documents_every_error_status_a_route_answers(server: Server) -> None:
    """Every route under /api/v1 can meet a database that does not answer (503); the
    event stream answers 401, 422 and 429 before it starts, as any route."""
    paths = httpx.get(f"{server.url}/openapi.json", timeout=10).json()["paths"]
    for path, operations in paths.items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"401", "422", "429", "503"} <= documented, (method, path, documented)
