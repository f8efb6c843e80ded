"""Ids of orders and drafts, and the tokens that open them.

An id names a row and is no secret; the token is the secret, and only its
hash is stored, so a copy of the database opens nothing. Apart from the
service so that the parts that only check or pass ids along (the change and
shred channels, drafts) need not import the order service.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ORDER_ID = re.compile(r"[A-Za-z0-9_-]{16,32}")


def is_order_id(value: str) -> bool:
    """Whether ``value`` can be an order's or a draft's id.

    fullmatch, never match with ``$``, which also accepts a trailing newline
    (the rule storage.base writes down).
    """
    return ORDER_ID.fullmatch(value) is not None


def new_id() -> str:
    return secrets.token_urlsafe(16)  # 22 characters, 128 bits


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_opens(token_hash: str | None, token: str | None) -> bool:
    """Whether ``token`` matches the stored hash, compared in constant time.

    The comparison runs even when there is nothing to match, so the time
    taken does not tell a missing record from a wrong token.
    """
    matches = hmac.compare_digest(token_hash or "0" * 64, hash_token(token or ""))
    return matches and token_hash is not None and bool(token)
