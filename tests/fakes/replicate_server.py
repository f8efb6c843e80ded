"""A fake of the Replicate API: a real HTTP server on 127.0.0.1.

The real ``replicate`` client talks to it (``base_url``), so the engine's
request building, sync-mode waits, polling, cancelling, retries and
downloads all run for real. It speaks what the engine uses:

- ``GET /v1/account``
- ``POST /v1/models/{owner}/{name}/predictions`` and ``POST /v1/predictions``
  (with ``Prefer: wait=N`` honoured: the answer is held until the prediction
  ends or N seconds pass)
- ``GET /v1/predictions/{id}`` and ``POST /v1/predictions/{id}/cancel``
- ``GET /v1/predictions``: every prediction, newest first, in pages
- ``GET /v1/webhooks/default/secret``
- ``GET /files/{name}``: the output images

A create for a model with a schema snapshot (tests/fixtures/replicate_schemas)
is checked against it and refused with the provider's 422 body, as the real
one would (tests/fakes/replicate_schema.py). Outputs take the model's shape
(one URI or a list) and the format asked for (PNG, JPEG or WebP); a model
without a seed answers a different image to every prediction.

Behaviour is scripted: ``errors`` answers the next calls of a kind with an
HTTP status (401, 422, 429 with Retry-After, 500...); ``lost_answers`` makes
the next creates record their prediction and then answer an error (a 504
from a proxy after the provider took the work); ``outcomes`` decides
how the next predictions end ("ok", "fail", "slow", "junk"), ``delay`` is how
long a prediction takes. With ``webhook_sink`` set, a prediction that ends
sends a signed ``completed`` webhook to the URL it was created with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import itertools
import json
import random
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image, ImageOps

from tests.fakes import replicate_schema

TOKEN = "r8_fake_" + "7" * 32
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"fake replicate signing key 32 by").decode()
OUTPUT_SIZE = (880, 1104)  # what Kontext answers for 4:5
_CREATE_MODEL = re.compile(r"^/v1/models/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+)/predictions$")
_PREDICTION = re.compile(r"^/v1/predictions/(?P<id>\w+)(?P<cancel>/cancel)?$")
_FILE = re.compile(r"^/files/(?P<name>[\w.]+)$")
_PILLOW_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
_MIME = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
# Where each model takes its image, in the order they are looked for.
_IMAGE_FIELDS = ("input_image", "input_images", "images", "image", "image_input")

WebhookSink = Callable[[str, dict[str, str], bytes], None]


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header Replicate would send."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class _Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    outcome: str
    created: float
    finish_at: float
    webhook: str | None
    status: str = "starting"
    output: str | list[str] | None = None
    error: str | None = None
    canceled: bool = False
    notified: bool = False


@dataclass
class FakeReplicate:
    token: str = TOKEN
    # Seconds each prediction takes from creation to its end; with a spread,
    # each takes a time drawn evenly from (low, high) instead.
    delay: float = 0.0
    spread: tuple[float, float] | None = None
    # Scripted HTTP errors, consumed one per call: kind -> [(status, headers)].
    # Kinds: "create", "get", "cancel", "account", "file".
    errors: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    # How the next predictions end, one per create; then "ok".
    # "ok", "fail" (the safety filter), "crash" (a model error), "slow"
    # (never ends by itself), "junk" (the output is not an image).
    outcomes: list[str] = field(default_factory=list)
    honour_wait: bool = True
    # Statuses answered to the next creates after their prediction was made.
    lost_answers: list[int] = field(default_factory=list)
    # Predictions a page of GET /v1/predictions holds.
    page_size: int = 100
    webhook_sink: WebhookSink | None = None
    webhook_secret: str = WEBHOOK_SECRET
    requests: list[Recorded] = field(default_factory=list)
    # The most predictions running at once, seen at each create.
    peak_in_flight: int = 0
    predictions: dict[str, _Prediction] = field(default_factory=dict)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _outputs: dict[str, bytes] = field(default_factory=dict)
    _draws: itertools.count[int] = field(default_factory=itertools.count)

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> FakeReplicate:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # An order opens dozens of connections at once; the default
            # backlog of 5 would drop some, which no real provider does.
            request_queue_size = 128

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _duration(self) -> float:
        if self.spread is None:
            return self.delay
        return random.uniform(*self.spread)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def fail_next(self, kind: str, status: int, times: int = 1, **headers: str) -> None:
        with self._lock:
            self.errors.setdefault(kind, []).extend([(status, headers)] * times)

    # --- what reached the server -------------------------------------------

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def creates(self) -> list[Recorded]:
        return self.calls("POST", r"^/v1/(models/.+/)?predictions$")

    # --- the API ---------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(
                Recorded(
                    method,
                    path,
                    {k.lower(): v for k, v in handler.headers.items()},
                    body,
                    time.monotonic(),
                )
            )
        kind = self._kind(method, path)
        if kind != "file" and handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self._problem(
                handler, 401, "Unauthenticated", "You did not pass a valid authentication token"
            )
        scripted = self._scripted(kind)
        if scripted is not None:
            status, headers = scripted
            detail = {
                422: "- input.aspect_ratio: aspect_ratio must be one of the following",
                429: "Request was throttled.",
            }.get(status, "Internal server error")
            return self._problem(handler, status, "Scripted", detail, headers)
        if kind == "account":
            return self._json(
                handler,
                200,
                {"type": "user", "username": "fake", "name": "Fake", "github_url": None},
            )
        if kind == "secret":
            return self._json(handler, 200, {"key": self.webhook_secret})
        if kind == "create":
            return self._create(handler, path, body)
        if kind == "list":
            return self._list(handler, handler.path)
        if kind in ("get", "cancel"):
            match = _PREDICTION.match(path)
            assert match is not None
            prediction = self.predictions.get(match["id"])
            if prediction is None:
                return self._problem(handler, 404, "Not found", "Not found")
            if kind == "cancel":
                with self._lock:
                    if prediction.status not in ("succeeded", "failed", "canceled"):
                        prediction.canceled = True
                        prediction.status = "canceled"
            return self._json(handler, 200, self._view(prediction))
        if kind == "file":
            match = _FILE.match(path)
            data = self._outputs.get(match["name"]) if match else None
            if data is None or match is None:
                return self._problem(handler, 404, "Not found", "Not found")
            mime = _MIME.get(match["name"].rsplit(".", 1)[-1], "application/octet-stream")
            return self._send(handler, 200, data, mime)
        return self._problem(handler, 404, "Not found", "Not found")

    @staticmethod
    def _kind(method: str, path: str) -> str:
        if path == "/v1/account":
            return "account"
        if path == "/v1/webhooks/default/secret":
            return "secret"
        if method == "POST" and (path == "/v1/predictions" or _CREATE_MODEL.match(path)):
            return "create"
        if method == "GET" and path == "/v1/predictions":
            return "list"
        match = _PREDICTION.match(path)
        if match:
            return "cancel" if match["cancel"] else "get"
        if _FILE.match(path):
            return "file"
        return "unknown"

    def _scripted(self, kind: str) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            queue = self.errors.get(kind)
            return queue.pop(0) if queue else None

    def _create(self, handler: BaseHTTPRequestHandler, path: str, body: dict[str, Any]) -> None:
        match = _CREATE_MODEL.match(path)
        model = f"{match['owner']}/{match['name']}" if match else "pinned/model"
        given = body.get("input")
        invalid = replicate_schema.problems(model, given if isinstance(given, dict) else {})
        if invalid:
            return self._json(
                handler,
                422,
                {
                    "title": "Input validation failed",
                    "detail": "\n".join(f"- {p['field']}: {p['description']}" for p in invalid),
                    "status": 422,
                    "invalid_fields": invalid,
                },
            )
        with self._lock:
            outcome = self.outcomes.pop(0) if self.outcomes else "ok"
            lost = self.lost_answers.pop(0) if self.lost_answers else None
        now = time.monotonic()
        prediction = _Prediction(
            id=secrets.token_hex(13),
            model=model,
            version=str(body.get("version") or "hidden"),
            input=dict(body.get("input") or {}),
            outcome=outcome,
            created=now,
            finish_at=now + (3600.0 if outcome == "slow" else self._duration()),
            webhook=body.get("webhook"),
        )
        if outcome in ("ok", "slow"):
            # Rendered now, inside the prediction's own time, as a provider would.
            self._render(prediction)
        with self._lock:
            self.predictions[prediction.id] = prediction
            running = sum(
                1 for p in self.predictions.values() if p.finish_at > now and not p.canceled
            )
            self.peak_in_flight = max(self.peak_in_flight, running)
        if prediction.webhook and self.webhook_sink is not None and outcome != "slow":
            timer = threading.Timer(
                max(0.0, prediction.finish_at - now), self._send_webhook, [prediction]
            )
            timer.daemon = True
            timer.start()
        if lost is not None:
            # The provider has the prediction (and will bill it); the answer
            # never reaches the client.
            return self._problem(handler, lost, "Gateway Timeout", "upstream timed out")
        prefer = handler.headers.get("Prefer", "")
        wait = re.match(r"wait(?:=(\d+))?", prefer)
        if wait and self.honour_wait:
            hold_until = now + float(wait.group(1) or 60)
            time.sleep(max(0.0, min(hold_until, prediction.finish_at) - time.monotonic()))
        self._json(handler, 201, self._view(prediction))

    def paid(self) -> int:
        """Predictions that ran to a result: what the provider would bill."""
        with self._lock:
            return sum(1 for p in self.predictions.values() if p.status == "succeeded")

    def _view(self, prediction: _Prediction) -> dict[str, Any]:
        with self._lock:
            self._advance(prediction)
            return {
                "id": prediction.id,
                "model": prediction.model,
                "version": prediction.version,
                "status": prediction.status,
                # Replicate echoes the input; the engine must not log it.
                "input": prediction.input,
                "output": prediction.output,
                "error": prediction.error,
                "logs": "",
                "metrics": {"predict_time": round(self.delay, 3)}
                if prediction.status == "succeeded"
                else {},
                "created_at": "2025-01-01T00:00:00Z",
                "started_at": None,
                "completed_at": None,
                "urls": {
                    "get": f"{self.url}/v1/predictions/{prediction.id}",
                    "cancel": f"{self.url}/v1/predictions/{prediction.id}/cancel",
                },
            }

    def _advance(self, prediction: _Prediction) -> None:
        if prediction.status in ("succeeded", "failed", "canceled"):
            return
        if time.monotonic() < prediction.finish_at:
            prediction.status = "processing"
            return
        if prediction.outcome == "fail":
            prediction.status = "failed"
            prediction.error = "Prediction failed: E005 input or output was flagged as sensitive"
        elif prediction.outcome == "crash":
            prediction.status = "failed"
            prediction.error = "CUDA out of memory while running the model"
        else:
            extension = _extension(prediction)
            name = f"{prediction.id}.{extension}"
            self._outputs[name] = (
                b"this is not an image"
                if prediction.outcome == "junk"
                else self._render(prediction)
            )
            prediction.status = "succeeded"
            url = f"{self.url}/files/{name}"
            found = replicate_schema.schema(prediction.model)
            listed = found is not None and found["output"].get("type") == "array"
            prediction.output = [url] if listed else url

    def _render(self, prediction: _Prediction) -> bytes:
        """The input photo at Kontext's output size, in the format asked for.

        A model with a seed answers the same image to the same input; one
        without answers each prediction a little differently, as a new draw.
        """
        uri = _input_image(prediction.input)
        extension = _extension(prediction)
        found = replicate_schema.schema(prediction.model)
        seedless = found is not None and "seed" not in found["input"]["properties"]
        key = hashlib.sha256(f"{extension}:{uri}".encode()).hexdigest()
        cached = self._outputs.get(key)
        if cached is not None and not seedless:
            return cached
        _, _, encoded = uri.partition(",")
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as source:
            output = ImageOps.fit(source.convert("RGB"), OUTPUT_SIZE, centering=(0.5, 0.35))
        if seedless:
            # Every draw its own light: no two predictions answer alike.
            # next() on a count is atomic; _render already runs under _lock
            # when a poll advances the prediction, so no lock is taken here.
            shift = (next(self._draws) * 7) % 61 - 30
            output = output.point(lambda v: max(0, min(255, v + shift)))
        buffer = io.BytesIO()
        output.save(buffer, format=_PILLOW_FORMATS[extension], **_SAVE_OPTIONS[extension])
        self._outputs[key] = buffer.getvalue()
        return self._outputs[key]

    def _list(self, handler: BaseHTTPRequestHandler, raw_path: str) -> None:
        """Newest first, ``page_size`` at a time, with a cursor to the next page."""
        _, _, query = raw_path.partition("?")
        cursor = int(query.split("cursor=", 1)[1]) if "cursor=" in query else 0
        with self._lock:
            ordered = sorted(self.predictions.values(), key=lambda p: p.created, reverse=True)
        page = ordered[cursor : cursor + self.page_size]
        after = cursor + self.page_size
        following = f"{self.url}/v1/predictions?cursor={after}" if after < len(ordered) else None
        self._json(
            handler,
            200,
            {"previous": None, "next": following, "results": [self._view(p) for p in page]},
        )

    def _send_webhook(self, prediction: _Prediction) -> None:
        view = self._view(prediction)
        if view["status"] not in ("succeeded", "failed", "canceled") or prediction.notified:
            return
        prediction.notified = True
        body = json.dumps(view).encode()
        webhook_id = "msg_" + secrets.token_hex(8)
        timestamp = int(time.time())
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(self.webhook_secret, webhook_id, timestamp, body),
            "content-type": "application/json",
        }
        assert self.webhook_sink is not None and prediction.webhook is not None
        self.webhook_sink(prediction.webhook, headers, body)

    # --- wire helpers -------------------------------------------------------

    def _json(self, handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        self._send(handler, status, json.dumps(payload).encode(), "application/json")

    def _problem(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps({"title": title, "detail": detail, "status": status}).encode()
        self._send(handler, status, payload, "application/problem+json", headers)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        data: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name.replace("_", "-"), value)
        handler.end_headers()
        handler.wfile.write(data)


_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "png": {"compress_level": 1},
    "jpg": {"quality": 95},
    "webp": {"quality": 90},
}


def _input_image(given: dict[str, Any]) -> str:
    for name in _IMAGE_FIELDS:
        value = given.get(name)
        if isinstance(value, list) and value:
            return str(value[0])
        if isinstance(value, str) and value:
            return value
    return ""


def _extension(prediction: _Prediction) -> str:
    """The format asked for; a model without the choice answers JPEG."""
    asked = prediction.input.get("output_format")
    return asked if asked in _PILLOW_FORMATS else "jpg"
