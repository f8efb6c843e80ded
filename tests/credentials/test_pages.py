"""People are told: the order and download pages and the privacy page."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import wait_ready
from tests.web.test_pages import csrf_of, make_order


def test_the_order_and_download_pages_say_the_images_carry_credentials(
    client: TestClient,
) -> None:
    order_id = make_order(client)
    wait_ready(client, order_id, client.cookies[f"order_{order_id}"])
    page = client.get(f"/orders/{order_id}")
    assert "Every image carries Content Credentials (C2PA)" in page.text
    # The test engine declares itself not generative, as its credentials say.
    assert "retouched it from your photo, without a generative AI model" in page.text
    assert "nothing about you" in page.text

    opened = client.post(
        f"/orders/{order_id}/pay", data={"csrf": csrf_of(page)}, follow_redirects=False
    )
    checkout = client.get(opened.headers["location"])
    client.post(opened.headers["location"], data={"csrf": csrf_of(checkout)})
    paid = client.get(f"/orders/{order_id}")
    assert "Download all (zip)" in paid.text
    assert "Each file carries Content Credentials stating that it was retouched" in paid.text


def test_the_privacy_page_lists_what_the_credentials_contain(client: TestClient) -> None:
    page = client.get("/privacy").text
    assert "Article 50" in page
    for item in ("the engine, the model and the style", "digital source type", "signature"):
        assert item in page
    assert "They contain nothing about you" in page
    assert "no file name, no order number or secret link" in page
