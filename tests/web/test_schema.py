"""The published schema: every answer typed, and a client made from it follows an order.

The client's models are generated from the running service's /openapi.json
with datamodel-code-generator, forbidding fields the schema does not name,
so an answer that drifts from its schema in either direction fails here.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from datamodel_code_generator import DataModelType, Formatter, InputFileType, generate
from fastapi.testclient import TestClient
from PIL import Image

from headshots.orders.models import VariationStatus
from headshots.runtime import build_runtime
from headshots.web.app import create_app
from headshots.web.schemas import Progress
from tests.support import InstantEngine, LiveServer, confirm_local_payment, make_settings

SELFIE = (Path(__file__).parents[1] / "fixtures" / "obama.jpg").read_bytes()

# The answers a client of an order reads, and the refusals each declares.
ORDER_ANSWERS = [
    ("/api/orders", "post", {"413", "422", "429", "507"}),
    ("/api/orders/{order_id}", "get", {"404", "422"}),
    ("/api/orders/{order_id}/checkout", "post", {"404", "409", "422"}),
]


@pytest.fixture
def schema(tmp_path: Path) -> Iterator[dict[str, Any]]:
    runtime = build_runtime(make_settings(tmp_path, None))
    try:
        with TestClient(create_app(runtime, run_consumer=False)) as client:
            yield client.get("/openapi.json").json()
    finally:
        runtime.close()


def untyped(node: dict[str, Any], components: dict[str, Any], where: str) -> list[str]:
    """Where in ``node`` a value is left undescribed: ``{}`` or an object without fields."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return untyped(components[name], components, name)
    found: list[str] = []
    if not node or (node.get("type") == "object" and "properties" not in node):
        extra = node.get("additionalProperties")
        if not isinstance(extra, dict) or not extra:
            found.append(where)
    for name, field in node.get("properties", {}).items():
        found += untyped(field, components, f"{where}.{name}")
    for key in ("anyOf", "oneOf", "allOf"):
        for option in node.get(key, []):
            found += untyped(option, components, where)
    if isinstance(node.get("items"), dict):
        found += untyped(node["items"], components, f"{where}[]")
    if isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"]:
        found += untyped(node["additionalProperties"], components, f"{where}{{}}")
    return found


@pytest.mark.parametrize(("path", "method", "refusals"), ORDER_ANSWERS)
def test_the_order_variation_and_checkout_answers_name_every_field(
    schema: dict[str, Any], path: str, method: str, refusals: set[str]
) -> None:
    components = schema["components"]["schemas"]
    responses = schema["paths"][path][method]["responses"]
    for status, response in responses.items():
        body = response["content"]["application/json"]["schema"]
        assert untyped(body, components, f"{method} {path} {status}") == []
        if not status.startswith("2"):
            assert body == {"$ref": "#/components/schemas/Error"}, status
            assert response["description"], status
    assert refusals <= set(responses)
    order = components["Order"]["properties"]
    assert {"status", "progress", "variations", "zip_url", "expires_at"} <= set(order)
    variation = components["Variation"]["properties"]
    assert {"status", "identity", "failure", "preview_url", "download_url"} <= set(variation)


def test_the_files_an_order_offers_are_declared_as_files(schema: dict[str, Any]) -> None:
    files = {
        "/api/orders/{order_id}/variations/{variation_id}/preview": "image/jpeg",
        "/api/orders/{order_id}/variations/{variation_id}/download": "image/png",
        "/api/orders/{order_id}/download.zip": "application/zip",
    }
    for path, media_type in files.items():
        content = schema["paths"][path]["get"]["responses"]["200"]["content"]
        assert content == {media_type: {"schema": {"type": "string", "format": "binary"}}}


def test_progress_counts_every_state_a_variation_can_be_in() -> None:
    assert list(Progress.model_fields) == [status.value for status in VariationStatus]


def generated_models(schema: dict[str, Any], folder: Path, monkeypatch: Any) -> ModuleType:
    """The schema's models as a module, written by datamodel-code-generator and imported."""
    code = generate(
        json.dumps(schema),
        input_file_type=InputFileType.OpenAPI,
        output_model_type=DataModelType.PydanticV2BaseModel,
        extra_fields="forbid",
        disable_timestamp=True,
        formatters=[Formatter.BUILTIN],
    )
    assert isinstance(code, str)
    path = folder / "headshots_client.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("headshots_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Pydantic resolves the models' annotations through the module's entry.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """The service on a real socket, its queue consumer inside."""
    InstantEngine.reset()
    runtime = build_runtime(make_settings(tmp_path, None))
    live = LiveServer(create_app(runtime, run_consumer=True))
    try:
        yield live
    finally:
        live.stop()
        runtime.close()


def test_a_client_generated_from_the_schema_follows_a_whole_order(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        api = generated_models(http.get("/openapi.json").json(), tmp_path, monkeypatch)

        styles = api.Styles.model_validate_json(http.get("/api/styles").content)
        chosen = [style.id for style in styles.styles[:2]]
        created = http.post(
            "/api/orders",
            data={"tier": "professional", "styles": chosen},
            files={"selfie": ("me.jpg", io.BytesIO(SELFIE), "image/jpeg")},
        )
        assert created.status_code == 201, created.text
        order = api.NewOrder.model_validate_json(created.content)
        assert order.styles == chosen
        auth = {"Authorization": f"Bearer {order.token}"}

        def fetch() -> Any:
            answer = http.get(f"/api/orders/{order.id}", headers=auth)
            assert answer.status_code == 200, answer.text
            return api.Order.model_validate_json(answer.content)

        deadline = time.monotonic() + 60
        current = fetch()
        while current.status != api.OrderStatus.ready and time.monotonic() < deadline:
            time.sleep(0.05)
            current = fetch()
        assert current.status == api.OrderStatus.ready
        assert current.progress.done == len(current.variations) == 8
        assert current.expires_at > current.created_at
        first = current.variations[0]
        assert first.download_url is None and current.zip_url is None

        preview = http.get(first.preview_url, headers=auth)
        assert preview.headers["content-type"] == "image/jpeg"
        unpaid = http.get(f"/api/orders/{order.id}/download.zip", headers=auth)
        assert unpaid.status_code == 402
        assert api.Error.model_validate_json(unpaid.content).error == "payment_required"
        stranger = http.get(f"/api/orders/{order.id}", headers={"Authorization": "Bearer x"})
        assert api.Error.model_validate_json(stranger.content).error == "not_found"

        answer = http.post(f"/api/orders/{order.id}/checkout", headers=auth)
        checkout = api.Checkout.model_validate_json(answer.content)
        assert checkout.test_mode is True
        assert confirm_local_payment(http, checkout.checkout_url).status_code == 303

        paid = fetch()
        assert paid.paid is True
        for variation in paid.variations:
            clean = http.get(variation.download_url, headers=auth)
            assert clean.headers["content-type"] == "image/png", clean.text
            assert Image.open(io.BytesIO(clean.content)).size == (1024, 1280)
        archive = http.get(paid.zip_url, headers=auth)
        with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
            assert len(bundle.namelist()) == len(paid.variations)
