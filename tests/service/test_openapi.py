"""The OpenAPI document: a typed schema for every response body and a description for every field.

Built in this process from the app (no server, no database connection): ``openapi()`` only walks the
routes and their pydantic models.
"""

from typing import Any

import pytest

from service.api.app import create_app
from service.settings import Settings

# Operations whose success answer is not JSON, so it has no JSON schema to check (GET only):
NOT_JSON = {
    "/metrics",  # Prometheus text format (response_class=Response)
    "/v1/events/stream",  # Server-Sent Events, text/event-stream: an endless stream, not one body
    "/v1/events/{event_id}/snapshot",  # the person's snapshot, image/jpeg (FileResponse)
    "/v1/jobs/{job_id}/artefacts/{name}",  # a job's thumbnail, contact sheet or video (FileResponse)
    "/v1/subjects/{subject_id}/sequences/{sequence_id}/sheet",  # a sequence's contact sheet, image/png
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(database_url="sqlite://")).openapi()  # type: ignore[call-arg]


def _described(item: dict[str, Any]) -> bool:
    description = item.get("description")
    return isinstance(description, str) and bool(description.strip())


def test_every_component_schema_has_a_description(spec: dict[str, Any]):
    schemas = spec["components"]["schemas"]
    missing = sorted(name for name, schema in schemas.items() if not _described(schema))
    assert not missing, f"{len(missing)} of {len(schemas)} schemas have no description (class docstring): {missing}"


def test_every_field_of_every_component_has_a_description(spec: dict[str, Any]):
    fields = [
        (f"{name}.{field}", prop)
        for name, schema in spec["components"]["schemas"].items()
        for field, prop in schema.get("properties", {}).items()
    ]
    missing = [name for name, prop in fields if not _described(prop)]
    assert not missing, f"{len(missing)} of {len(fields)} fields have no description: {missing}"


def _typed(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """A schema that says what the body is: a reference to a component, or a type (anyOf/oneOf of such)."""
    if "$ref" in schema:
        return schema["$ref"].removeprefix("#/components/schemas/") in components
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf", schema.get("oneOf"))
        return bool(options) and all(_typed(option, components) for option in options)
    return "type" in schema


def test_every_json_answer_has_a_typed_schema(spec: dict[str, Any]):
    components = spec["components"]["schemas"]
    untyped, checked = [], 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2") or status == "204" or path in NOT_JSON:
                    continue  # 204 has no body; NOT_JSON answers text, an event stream or an image
                checked += 1
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if not _typed(schema, components):
                    untyped.append(f"{method.upper()} {path} {status}: {schema}")
    assert not untyped, f"success answers without a typed JSON schema: {untyped}"
    assert checked >= 25, f"only {checked} answers checked (29 when this was written): were the paths renamed?"


def test_the_non_json_exemptions_name_real_non_json_answers(spec: dict[str, Any]):
    """Each exempted path exists and declares no typed JSON answer, so the list cannot hide a JSON route."""
    for path in NOT_JSON:
        assert path in spec["paths"], f"{path} is exempted but no longer exists"
        ok = spec["paths"][path]["get"]["responses"]["200"]
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        assert not schema, f"{path} now answers typed JSON ({schema}); drop it from NOT_JSON"


def test_video_routes_document_only_the_inputs_they_take(spec: dict[str, Any]):
    """Only enrollment takes silhouettes and a ``track_id``; identify and previews take a video."""

    def body(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        return content["multipart/form-data"]["schema"]["properties"], content["application/json"]["schema"]

    form, json_body = body("/v1/subjects/{subject_id}/enrollments")
    assert set(form) == {"file", "url", "track_id"} and ".npy" in form["file"]["description"]
    assert set(json_body["properties"]) == {"url", "track_id"}
    for path in ("/v1/identify", "/v1/previews"):
        form, json_body = body(path)
        assert set(form) == {"file", "url"} and ".npy" not in form["file"]["description"], path
        assert set(json_body["properties"]) == {"url"}, path
