"""Order and draft ids, and the tokens that open them."""

from __future__ import annotations

import pytest

from headshots.orders import ids


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\x00"])
def test_an_order_id_with_anything_after_it_is_not_an_id(suffix: str) -> None:
    real = ids.new_id()
    assert ids.is_order_id(real)
    assert not ids.is_order_id(real + suffix)


def test_a_token_opens_only_its_own_hash() -> None:
    token = ids.new_token()
    stored = ids.hash_token(token)
    assert ids.token_opens(stored, token)
    assert not ids.token_opens(stored, ids.new_token())
    assert not ids.token_opens(stored, "")
    assert not ids.token_opens(None, token)
