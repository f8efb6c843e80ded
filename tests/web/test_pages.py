"""The pages and the security of the web layer, through the app's own HTTP interface.

Runs on SQLite and PostgreSQL with the real consumer, storage and local
payments (the browser tests in tests/e2e drive the same pages in Chromium).
"""

from __future__ import annotations

import io
import json
import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from headshots.jobs.tasks import run_sweep
from headshots.orders.db import transaction
from headshots.orders.drafts import Draft
from headshots.orders.models import utcnow
from headshots.runtime import Runtime, build_runtime
from headshots.web import events as event_stream
from headshots.web import pages
from headshots.web.app import create_app
from headshots.web.security import RateLimited, RateLimiter
from tests.selfie_set import shoulder_cut
from tests.support import InstantEngine, make_settings, upload, wait_ready

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()
HTML = {"Accept": "text/html"}
PAGES = ["/", "/start", "/privacy", "/guide", "/deleted"]


def csrf_of(page: Any) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def start_upload(client: TestClient, photo: bytes = SELFIE, *, token: str | None = None) -> Any:
    token = token if token is not None else csrf_of(client.get("/start"))
    return client.post(
        "/start",
        data={"csrf": token},
        files={"selfie": ("IMG_0042.jpg", photo, "image/jpeg")},
        follow_redirects=False,
    )


def make_order(
    client: TestClient, tier: str = "starter", styles: tuple[str, ...] = ("corporate",)
) -> str:
    draft_url = start_upload(client).headers["location"]
    page = client.get(draft_url)
    chosen = client.post(
        draft_url,
        data={"csrf": csrf_of(page), "tier": tier, "styles": list(styles)},
        follow_redirects=False,
    )
    assert chosen.status_code == 303, chosen.text
    return str(chosen.headers["location"]).rsplit("/", 1)[1]


def cookie_header(response: Any, name_prefix: str) -> str:
    headers = response.headers.get_list("set-cookie")
    found = [h for h in headers if h.startswith(name_prefix)]
    assert found, headers
    return str(found[0])


@pytest.mark.parametrize("path", [*PAGES, "/api/orders/AAAAAAAAAAAAAAAAAAAAAA", "/static/app.css"])
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path, headers=HTML)
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "default-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_no_inline_script_or_style_and_no_outside_assets(
    client: TestClient, path: str
) -> None:
    page = client.get(path).text
    assert "<script>" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert not re.search(r"\son[a-z]+=", page), "inline event handler"
    assert not re.search(r"\sstyle=", page), "inline style attribute"
    assert "<style" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "an asset from another site"


def test_a_form_without_its_csrf_token_is_refused_and_stores_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    client.get("/start")  # the browser has its CSRF cookie
    for token in ("", "forged-token"):
        refused = start_upload(client, token=token)
        assert refused.status_code == 403
        assert "reload the page" in refused.text
    # A token from another browser does not match this browser's cookie.
    with TestClient(create_app(runtime, run_consumer=False)) as other:
        foreign = csrf_of(other.get("/start"))
    assert start_upload(client, token=foreign).status_code == 403
    blobs = runtime.settings.data_dir / "blobs"
    assert not blobs.exists() or not any(blobs.iterdir())


def test_the_upload_keeps_the_photo_encrypted_behind_an_httponly_cookie(
    client: TestClient, runtime: Runtime
) -> None:
    response = start_upload(client)
    assert response.status_code == 303
    draft_id = response.headers["location"].rsplit("/", 1)[1]
    cookie = cookie_header(response, f"draft_{draft_id}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    files = [p for p in (runtime.settings.data_dir / "blobs" / draft_id).rglob("*") if p.is_file()]
    assert files
    for stored in files:
        data = stored.read_bytes()
        assert b"\x89PNG" not in data and b"JFIF" not in data and b"IMG_0042" not in data

    photo = client.get(f"/drafts/{draft_id}/photo")
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["cache-control"] == "no-store"
    with TestClient(create_app(runtime, run_consumer=False)) as stranger:
        assert stranger.get(f"/drafts/{draft_id}/photo").status_code == 410
        assert stranger.get(f"/drafts/{draft_id}", headers=HTML).status_code == 410


def test_cookies_are_secure_over_https(runtime: Runtime) -> None:
    app = create_app(runtime, run_consumer=False)
    with TestClient(app, base_url="https://headshots.example") as client:
        response = start_upload(client)
        assert response.status_code == 303
        draft_id = response.headers["location"].rsplit("/", 1)[1]
        assert "Secure" in cookie_header(response, f"draft_{draft_id}=")


def test_the_preflight_warnings_are_shown_before_the_choice(client: TestClient) -> None:
    small_face = (FIXTURES / "astronaut.png").read_bytes()
    draft_url = start_upload(client, small_face).headers["location"]
    page = client.get(draft_url)
    assert page.status_code == 200
    assert 'data-code="low_resolution"' in page.text
    assert "Retake the photo" in page.text and 'href="/guide#low_resolution"' in page.text
    assert 'id="low_resolution"' in client.get("/guide").text


def test_well_framed_is_said_only_when_the_engine_can_use_the_frame(client: TestClient) -> None:
    # The test engine, like the studio engine, cannot extend a photo's frame.
    whole = client.get(start_upload(client).headers["location"])
    assert "All checks passed" in whole.text and "well framed" in whole.text
    buffer = io.BytesIO()
    shoulder_cut("obama.jpg").save(buffer, "JPEG", quality=90)
    cut = client.get(start_upload(client, buffer.getvalue()).headers["location"])
    assert 'data-code="cut_at_side"' in cut.text
    assert "well framed" not in cut.text


def test_a_refused_photo_comes_back_with_its_sentence(client: TestClient, runtime: Runtime) -> None:
    group = (FIXTURES / "group_of_five.jpg").read_bytes()
    response = start_upload(client, group)
    assert response.status_code == 422
    assert "more than one person" in response.text.lower()
    assert 'role="alert"' in response.text
    with runtime.sessions() as session:
        assert session.query(Draft).count() == 0


def test_every_refusal_of_the_upload_step_has_an_entry_in_the_selfie_guide(
    client: TestClient,
) -> None:
    from headshots.imaging import intake
    from headshots.imaging.preflight import CHECKS
    from headshots.web import limits, multipart, security

    def codes_of(base: type) -> set[str]:
        found = {base.code}  # type: ignore[attr-defined]
        for sub in base.__subclasses__():
            found |= codes_of(sub)
        return found

    refusals = (
        codes_of(intake.IntakeError)
        | {multipart.FormError.code, multipart.BodyTooLarge.code}
        | {security.RateLimited.code, limits.LimitsUnavailable.code}
        | {code for code, check in CHECKS.items() if check.severity == "error"}
    )
    guide = client.get("/guide").text
    missing = sorted(code for code in refusals if f'id="{code}"' not in guide)
    assert missing == []
    # A refused upload links to its own entry.
    refused = start_upload(client, b"not a photo at all")
    assert refused.status_code == 422 and 'href="/guide#unreadable"' in refused.text


def test_a_draft_becomes_an_order_and_leaves_nothing_behind(
    client: TestClient, runtime: Runtime
) -> None:
    draft_url = start_upload(client).headers["location"]
    draft_id = draft_url.rsplit("/", 1)[1]
    page = client.get(draft_url)
    chosen = client.post(
        draft_url,
        data={"csrf": csrf_of(page), "tier": "professional", "styles": ["corporate", "minimal"]},
        follow_redirects=False,
    )
    assert chosen.status_code == 303
    order_id = chosen.headers["location"].rsplit("/", 1)[1]
    cookie = cookie_header(chosen, f"order_{order_id}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
    assert 23 * 3600 < max_age <= 24 * 3600
    with runtime.sessions() as session:
        assert session.get(Draft, draft_id) is None
    assert not (runtime.settings.data_dir / "blobs" / draft_id).exists()
    # The pages answer the browser's cookie; the JSON API wants its bearer token.
    body = client.get(f"/orders/{order_id}/progress").json()
    assert body["styles"] == ["corporate", "minimal"]
    assert client.get(f"/api/orders/{order_id}").status_code == 404
    assert client.get(draft_url, headers=HTML).status_code == 410


def test_a_choice_the_tier_does_not_allow_is_refused_on_the_page(
    client: TestClient, runtime: Runtime
) -> None:
    draft_url = start_upload(client).headers["location"]
    page = client.get(draft_url)
    refused = client.post(
        draft_url,
        data={"csrf": csrf_of(page), "tier": "starter", "styles": ["corporate", "minimal"]},
    )
    assert refused.status_code == 422
    assert "1 style" in refused.text
    assert 'value="corporate" checked' in refused.text  # the choice is kept to correct it
    with runtime.sessions() as session:
        assert session.query(Draft).count() == 1


def test_an_abandoned_upload_is_deleted_by_the_sweep(client: TestClient, runtime: Runtime) -> None:
    draft_url = start_upload(client).headers["location"]
    draft_id = draft_url.rsplit("/", 1)[1]
    run_sweep(runtime)
    assert (runtime.settings.data_dir / "blobs" / draft_id).exists()
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Draft)
            .where(Draft.id == draft_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    run_sweep(runtime)
    assert not (runtime.settings.data_dir / "blobs" / draft_id).exists()
    with runtime.sessions() as session:
        assert session.get(Draft, draft_id) is None
    gone = client.get(draft_url, headers=HTML)
    assert gone.status_code == 410
    assert "deleted after an hour" in gone.text


def test_an_order_page_needs_its_own_cookie(client: TestClient, runtime: Runtime) -> None:
    order_id = make_order(client)
    assert client.get(f"/orders/{order_id}").status_code == 200
    with TestClient(create_app(runtime, run_consumer=False)) as stranger:
        for path in (f"/orders/{order_id}", f"/orders/{order_id}/delete"):
            page = stranger.get(path, headers=HTML)
            assert page.status_code == 404
            assert "text/html" in page.headers["content-type"]
            assert "no order here" in page.text
        for path in ("events", "progress", "download.zip"):
            assert stranger.get(f"/orders/{order_id}/{path}").status_code == 404


def test_progress_streams_as_server_sent_events_and_ends(client: TestClient) -> None:
    order_id = make_order(client)
    with client.stream("GET", f"/orders/{order_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    events = [line[6:] for line in text.splitlines() if line.startswith('data: {"')]
    assert events
    assert '"status":"ready"' in events[-1]
    assert text.rstrip().endswith("event: end\ndata: {}")


def streamed_order(client: TestClient) -> tuple[list[dict[str, Any]], str]:
    """A two-style order made image by image, read through its page's stream to the end."""
    order_id = make_order(client, tier="professional", styles=("corporate", "friendly"))
    with client.stream("GET", f"/orders/{order_id}/events") as stream:
        text = "".join(stream.iter_text())
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith('data: {"')]
    return events, text


@pytest.mark.timeout(90)
def test_the_progress_stream_wakes_at_each_change_not_on_a_timer(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A poll so slow that only the jobs' announcements can move the stream.
    monkeypatch.setattr(event_stream, "EVENTS_POLL_SECONDS", 3600)
    monkeypatch.setattr(InstantEngine, "delay", 0.2)
    events, _ = streamed_order(client)
    assert events[-1]["status"] == "ready"
    shown = [sum(bool(v["preview_url"]) for v in event["variations"]) for event in events]
    assert shown == sorted(shown) and len(set(shown)) > 2  # previews appeared along the way


@pytest.mark.timeout(90)
def test_the_progress_stream_shows_ready_at_once_whatever_it_was_gathering(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Changes are gathered for an hour and never polled: only the last
    # variation's announcement, final, can bring the order page to ready.
    monkeypatch.setattr(event_stream, "EVENTS_POLL_SECONDS", 3600)
    monkeypatch.setattr(event_stream, "EVENTS_GATHER_SECONDS", 3600)
    monkeypatch.setattr(InstantEngine, "delay", 0.2)
    events, text = streamed_order(client)
    assert events[-1]["status"] == "ready"
    assert text.rstrip().endswith("event: end\ndata: {}")


def test_returning_from_checkout_waits_for_the_webhook(client: TestClient) -> None:
    order_id = make_order(client)
    wait_ready(client, order_id, client.cookies[f"order_{order_id}"])
    order_page = client.get(f"/orders/{order_id}")
    opened = client.post(
        f"/orders/{order_id}/pay", data={"csrf": csrf_of(order_page)}, follow_redirects=False
    )
    assert opened.status_code == 303 and "/pay/local/" in opened.headers["location"]
    # The success address alone unlocks nothing: only the provider's webhook does.
    back = client.get(f"/orders/{order_id}?paid=1")
    assert "Confirming your payment" in back.text
    assert "Download PNG" not in back.text
    variation = client.get(f"/orders/{order_id}/progress").json()["variations"][0]
    clean = f"/orders/{order_id}/variations/{variation['id']}/download"
    assert client.get(clean).status_code == 402

    checkout = client.get(opened.headers["location"])
    paid = client.post(
        opened.headers["location"], data={"csrf": csrf_of(checkout)}, follow_redirects=False
    )
    assert paid.status_code == 303
    done = client.get(f"/orders/{order_id}?paid=1")
    assert "Confirming your payment" not in done.text
    assert "Download PNG" in done.text and "Download all (zip)" in done.text
    assert f'href="{clean}"' in done.text
    assert "/api/" not in done.text  # the API would not take the page's cookie
    assert client.get(clean).status_code == 200
    assert client.get(f"/orders/{order_id}/download.zip").status_code == 200


@pytest.mark.timeout(90)
def test_the_stream_of_a_page_confirming_payment_ends_when_the_webhook_lands(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = make_order(client)
    wait_ready(client, order_id, client.cookies[f"order_{order_id}"])
    order_page = client.get(f"/orders/{order_id}")
    opened = client.post(
        f"/orders/{order_id}/pay", data={"csrf": csrf_of(order_page)}, follow_redirects=False
    )
    checkout = client.get(opened.headers["location"])
    # Only the payment's announcement can end the stream: its poll is an
    # hour, and so is the time it gathers changes before reading.
    monkeypatch.setattr(event_stream, "EVENTS_POLL_SECONDS", 3600)
    monkeypatch.setattr(event_stream, "EVENTS_GATHER_SECONDS", 3600)
    streamed: list[str] = []
    opened_stream = threading.Event()

    def watch() -> None:
        with client.stream("GET", f"/orders/{order_id}/events?until=paid") as stream:
            for line in stream.iter_lines():
                streamed.append(line)
                if line.startswith('data: {"'):
                    opened_stream.set()  # the page shows "confirming payment"

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert opened_stream.wait(30)
    paid = client.post(
        opened.headers["location"], data={"csrf": csrf_of(checkout)}, follow_redirects=False
    )
    assert paid.status_code == 303
    watcher.join(60)
    assert not watcher.is_alive()
    events = [json.loads(line[6:]) for line in streamed if line.startswith('data: {"')]
    assert events[0]["paid"] is False and events[-1]["paid"] is True


def test_the_page_script_fetches_nothing_from_the_api() -> None:
    # The API takes no cookie: the page polls its own progress address.
    script = (Path(pages.__file__).parent / "static" / "app.js").read_text()
    assert "/api/" not in script
    assert '"/orders/" + id + "/progress"' in script


def test_cancelled_checkout_says_nothing_was_charged(client: TestClient) -> None:
    order_id = make_order(client)
    page = client.get(f"/orders/{order_id}?cancelled=1")
    assert "Nothing was charged" in page.text


def test_delete_everything_needs_its_token_and_destroys_the_order(
    client: TestClient, runtime: Runtime
) -> None:
    order_id = make_order(client)
    wait_ready(client, order_id, client.cookies[f"order_{order_id}"])
    blobs = runtime.settings.data_dir / "blobs" / order_id
    assert client.post(f"/orders/{order_id}/delete", data={"csrf": "x"}).status_code == 403
    assert blobs.exists()
    confirm = client.get(f"/orders/{order_id}/delete")
    assert "Yes, delete everything" in confirm.text
    deleted = client.post(
        f"/orders/{order_id}/delete", data={"csrf": csrf_of(confirm)}, follow_redirects=False
    )
    assert deleted.status_code == 303 and deleted.headers["location"] == "/deleted"
    assert not blobs.exists()
    assert client.get(f"/orders/{order_id}", headers=HTML).status_code == 404


def test_errors_are_pages_for_browsers_and_json_for_the_api(client: TestClient) -> None:
    page = client.get("/no/such/page", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Nothing here" in page.text and 'href="/start"' in page.text
    api = client.get("/api/orders/AAAAAAAAAAAAAAAAAAAAAA", headers=HTML)
    assert api.status_code == 404 and "detail" in api.json()


def test_uploads_are_limited_per_client(tmp_path: Path, database_url: str | None) -> None:
    limited = build_runtime(make_settings(tmp_path, database_url, upload_rate_per_hour=2))
    try:
        with TestClient(create_app(limited, run_consumer=False)) as client:
            assert start_upload(client).status_code == 303
            assert start_upload(client).status_code == 303
            refused = start_upload(client)
            assert refused.status_code == 429
            assert "wait a few minutes" in refused.text
            assert 1 <= int(refused.headers["retry-after"]) <= 1800
            api = upload(client, SELFIE)
            assert api.status_code == 429
            assert "wait a few minutes" in api.json()["detail"]
    finally:
        limited.close()


def test_the_rate_limit_refills_over_the_hour() -> None:
    limiter = RateLimiter(per_hour=3)
    for _ in range(3):
        limiter.take("198.51.100.7", now=0)
    with pytest.raises(RateLimited) as refused:
        limiter.take("198.51.100.7", now=1)
    assert refused.value.headers["Retry-After"] == "1199"
    limiter.take("203.0.113.9", now=1)  # another client is not affected
    limiter.take("198.51.100.7", now=1201)  # one upload earned back after 20 minutes
    with pytest.raises(RateLimited):
        limiter.take("198.51.100.7", now=1202)


def test_a_private_link_opens_the_order_only_with_its_secret(client: TestClient) -> None:
    order_id = make_order(client)
    page = client.get(f"/orders/{order_id}")
    link = re.search(r'id="private-link" type="text" readonly value="([^"]+)"', page.text)
    assert link is not None
    secret = link.group(1).split("#", 1)[1]
    opener = client.get(f"/orders/{order_id}/open")
    assert opener.status_code == 200 and secret not in opener.text
    fresh = TestClient(client.app)  # another browser: no cookie of this order
    landing = fresh.get(f"/orders/{order_id}/open")
    token = csrf_of(landing)
    refused = fresh.post(
        f"/orders/{order_id}/open", data={"csrf": token, "token": "x" * 43}, follow_redirects=False
    )
    assert refused.status_code == 404 and f"order_{order_id}" not in refused.headers.get(
        "set-cookie", ""
    )
    without_csrf = fresh.post(
        f"/orders/{order_id}/open", data={"token": secret}, follow_redirects=False
    )
    assert without_csrf.status_code == 403
    opened = fresh.post(
        f"/orders/{order_id}/open", data={"csrf": token, "token": secret}, follow_redirects=False
    )
    assert opened.status_code == 303 and opened.headers["location"] == f"/orders/{order_id}"
    assert "HttpOnly" in opened.headers["set-cookie"]
    assert fresh.get(f"/orders/{order_id}/progress").status_code == 200
