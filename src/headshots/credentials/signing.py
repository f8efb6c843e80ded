"""Signing images with Content Credentials (c2pa-python).

One :class:`ImageSigner` per process and set of credentials holds the SDK's
signer in a context with the claim thumbnail turned off (the SDK would
otherwise embed a small JPEG of the image in the manifest). The context is
shared by threads; each image gets its own single-use builder.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from headshots.config import Settings
from headshots.credentials.keys import SigningCredentials, load_credentials
from headshots.credentials.manifest import Facts, jpeg_with_xmp, manifest, png_with_xmp, xmp_packet
from headshots.errors import ConfigurationError

# What the SDK must not add on its own: no thumbnail of the image.
SDK_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}


class ImageSigner:
    def __init__(self, credentials: SigningCredentials) -> None:
        import c2pa

        self.credentials = credentials
        try:
            signer = c2pa.Signer.from_info(
                c2pa.C2paSignerInfo(
                    credentials.algorithm.encode(),
                    credentials.chain_pem,
                    credentials.key_pem,
                    credentials.tsa_url,
                )
            )
        except c2pa.C2paError as error:
            # The SDK's message is not repeated: it is not ours to vouch for.
            raise ConfigurationError(
                "The Content Credentials signer refused the certificate chain and key; "
                "the chain needs the signing certificate first, then its CA, and a "
                "signing certificate that is not itself a CA."
            ) from error
        self._context = c2pa.Context.from_json(json.dumps(SDK_SETTINGS), signer=signer)

    def __repr__(self) -> str:
        return f"ImageSigner(signer={self.credentials.signer!r})"

    def sign(self, data: bytes, mime: str, facts: Facts) -> bytes:
        import c2pa

        builder = c2pa.Builder(manifest(facts, mime), self._context)
        out = io.BytesIO()
        builder.sign(mime, io.BytesIO(data), out)
        return out.getvalue()


def sign_png(signer: ImageSigner | None, facts: Facts, png: bytes) -> bytes:
    """The PNG with the XMP digital source type and, unless turned off, signed credentials."""
    marked = png_with_xmp(png, xmp_packet(facts.source_type))
    return marked if signer is None else signer.sign(marked, "image/png", facts)


def sign_jpeg(signer: ImageSigner | None, facts: Facts, jpeg: bytes) -> bytes:
    """The JPEG with the XMP digital source type and, unless turned off, signed credentials."""
    marked = jpeg_with_xmp(jpeg, xmp_packet(facts.source_type))
    return marked if signer is None else signer.sign(marked, "image/jpeg", facts)


# Signers by the settings that pick their credentials. A process normally has
# one; tests make a data dir (and a development chain) each, so keep a few.
_SIGNERS: dict[tuple[Any, ...], ImageSigner | None] = {}
_SIGNERS_LOCK = threading.Lock()
_SIGNERS_KEPT = 8


def signer_for(settings: Settings, *, development_fallback: bool = False) -> ImageSigner | None:
    """This process's signer for ``settings``; None when credentials are off.

    Raises ConfigurationError (naming EU AI Act Article 50) when they are
    required and missing.
    """
    key = (
        settings.c2pa,
        settings.dev_mode or development_fallback,
        settings.data_dir,
        settings.c2pa_cert,
        settings.c2pa_key,
        settings.c2pa_tsa_url,
    )
    with _SIGNERS_LOCK:
        if key in _SIGNERS:
            return _SIGNERS[key]
        credentials = load_credentials(settings, development_fallback=development_fallback)
        signer = None if credentials is None else ImageSigner(credentials)
        _SIGNERS[key] = signer
        while len(_SIGNERS) > _SIGNERS_KEPT:
            del _SIGNERS[next(iter(_SIGNERS))]
        return signer
