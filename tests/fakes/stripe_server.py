"""A fake of Stripe's Checkout Session API: a real HTTP server on 127.0.0.1.

The real ``stripe`` SDK talks to it (``HEADSHOTS_STRIPE_API_BASE``), so the
provider's request building, error handling and retries all run for real.
It speaks only what the provider uses: create and retrieve a Checkout
Session, with Stripe's form encoding, bearer keys and JSON error bodies.

``sign_stripe_event`` signs a webhook body with the SDK's own helper, as
Stripe would with the endpoint's secret.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import stripe

API_KEY = "sk_test_fake_" + "0" * 24
WEBHOOK_SECRET = "whsec_fake_" + "1" * 32
SESSION_PATH = re.compile(r"^/v1/checkout/sessions/(?P<id>[A-Za-z0-9_]+)$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    # The form body decoded into nested dicts and lists, as Stripe reads it.
    params: dict[str, Any]


@dataclass
class FakeStripe:
    """Start with :meth:`start`; ``url`` is the base address for the SDK."""

    api_key: str = API_KEY
    # When set, every API call answers this HTTP status with a Stripe error body.
    fail_with: int | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval makes shutdown quick between tests.
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- what a test does with a session -------------------------------------

    def complete(self, session_id: str, payment_status: str = "paid") -> dict[str, Any]:
        """The person paid on the hosted page: the session as Stripe now reports it."""
        with self._lock:
            session = self.sessions[session_id]
            session.update(status="complete", payment_status=payment_status)
            return json.loads(json.dumps(session))  # type: ignore[no-any-return]

    def event(self, event_type: str, session: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A webhook event around ``session``, shaped as Stripe sends it."""
        return checkout_event(event_type, session, **extra)

    # --- the HTTP side ---------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        path, _, query = handler.path.partition("?")
        params = decode_form(body if method == "POST" else query)
        headers = {key.lower(): value for key, value in handler.headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, params))

        if path.startswith("/pay/"):
            self._reply(handler, 200, "Fake Stripe Checkout: nothing to pay here.", "text/plain")
            return
        if self.fail_with is not None:
            self._error(handler, self.fail_with, "api_error", "Something went wrong on our end.")
            return
        if headers.get("authorization") != f"Bearer {self.api_key}":
            self._error(handler, 401, "invalid_request_error", "Invalid API Key provided.")
            return
        if method == "POST" and path == "/v1/checkout/sessions":
            self._reply(handler, 200, self._create_session(params))
            return
        match = SESSION_PATH.match(path)
        if method == "GET" and match:
            with self._lock:
                session = self.sessions.get(match["id"])
            if session is None:
                self._error(
                    handler, 404, "invalid_request_error", "No such checkout.session.", "session"
                )
            else:
                self._reply(handler, 200, session)
            return
        self._error(handler, 404, "invalid_request_error", f"Unrecognized request URL ({path}).")

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        items = params.get("line_items") or []
        amount = sum(
            int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1)) for item in items
        )
        session_id = "cs_test_" + secrets.token_hex(16)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": int(time.time()),
            "currency": items[0]["price_data"]["currency"] if items else None,
            "expires_at": int(params.get("expires_at") or time.time() + 86_400),
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": params.get("mode"),
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"{self.url}/pay/{session_id}",
        }
        with self._lock:
            self.sessions[session_id] = session
        return session

    def _error(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        kind: str,
        message: str,
        param: str | None = None,
    ) -> None:
        error: dict[str, Any] = {"type": kind, "message": message}
        if param:
            error["param"] = param
        self._reply(handler, status, {"error": error})

    def _reply(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        content_type: str = "application/json",
    ) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Request-Id", "req_" + secrets.token_hex(8))
        handler.end_headers()
        handler.wfile.write(data)


def decode_form(body: str) -> dict[str, Any]:
    """``a[b][0][c]=1`` into ``{"a": {"b": [{"c": "1"}]}}``, as Stripe's API reads it."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        name, _, rest = key.partition("[")
        parts = [name, *re.findall(r"([^\[\]]*)\]", "[" + rest)] if rest else [name]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)  # type: ignore[no-any-return]


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_lists(node[key]) for key in sorted(node, key=int)]
    return {key: _lists(value) for key, value in node.items()}


def checkout_event(
    event_type: str,
    session: dict[str, Any],
    *,
    event_id: str | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    """A Stripe event whose ``data.object`` is the Checkout Session."""
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": stripe.api_version,
        "created": int(time.time()),
        "data": {"object": session},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def sign_stripe_event(
    payload: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers Stripe would POST to the webhook endpoint."""
    body = json.dumps(payload, indent=2)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return body.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}
