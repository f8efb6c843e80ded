"""Reading an image's Content Credentials back: ``headshots verify``."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from headshots.credentials.manifest import ASSERTION, JPEG_SOI, PNG_SIGNATURE
from headshots.errors import HeadshotsError

UNTRUSTED = "signingCredential.untrusted"


class NotAnImage(HeadshotsError):
    status_code = 422
    code = "not_an_image"
    message = "This file is not a PNG or JPEG image whose credentials can be read."


@dataclass(frozen=True)
class Verdict:
    """What an image's credentials say, and whether they hold."""

    has_credentials: bool
    # The signature and every hash check out (the image is as signed).
    valid: bool = False
    # The signing certificate leads to a trust anchor the reader knows.
    trusted: bool = False
    signer: str | None = None
    claim_generator: str | None = None
    digital_source_type: str | None = None
    actions: list[str] = field(default_factory=list)
    made: dict[str, Any] = field(default_factory=dict)
    # Validation failures other than an untrusted certificate.
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.has_credentials and self.valid

    def as_dict(self) -> dict[str, Any]:
        return {
            "has_credentials": self.has_credentials,
            "valid": self.valid,
            "trusted": self.trusted,
            "signer": self.signer,
            "claim_generator": self.claim_generator,
            "digital_source_type": self.digital_source_type,
            "actions": self.actions,
            "engine": self.made.get("engine"),
            "model": self.made.get("model"),
            "style": self.made.get("style"),
            "failures": self.failures,
        }


def verify(data: bytes, *, trust_anchors: bytes | None = None) -> Verdict:
    """Validate the credentials in ``data``; ``trust_anchors`` are extra CA certificates (PEM)."""
    import c2pa

    if data.startswith(PNG_SIGNATURE):
        mime = "image/png"
    elif data.startswith(JPEG_SOI):
        mime = "image/jpeg"
    else:
        raise NotAnImage()
    settings: dict[str, Any] = {"verify": {"verify_trust": True}}
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors.decode("ascii", "replace")}
    context = c2pa.Context.from_json(json.dumps(settings))
    try:
        reader = c2pa.Reader(mime, io.BytesIO(data), None, context)
    except c2pa.C2paError as error:
        if type(error).__name__.endswith("ManifestNotFound"):
            return Verdict(has_credentials=False)
        raise NotAnImage(
            "The credentials in this image cannot be read; the file may be damaged."
        ) from error
    with reader:
        report = json.loads(reader.json())
        state = reader.get_validation_state()
    active = report.get("manifests", {}).get(report.get("active_manifest") or "", {})
    statuses = report.get("validation_status") or []
    codes = [status.get("code", "") for status in statuses]
    actions, made = _actions_and_made(active)
    generator = (active.get("claim_generator_info") or [{}])[0]
    signature = active.get("signature_info") or {}
    return Verdict(
        has_credentials=True,
        valid=state in ("Valid", "Trusted"),
        trusted=state == "Trusted",
        signer=signature.get("issuer") or signature.get("common_name"),
        claim_generator=" ".join(
            str(part) for part in (generator.get("name"), generator.get("version")) if part
        )
        or None,
        digital_source_type=next(
            (a.get("digitalSourceType") for a in actions if a.get("digitalSourceType")), None
        ),
        actions=[str(a.get("action")) for a in actions],
        made=made,
        failures=[code for code in codes if code != UNTRUSTED],
    )


def _actions_and_made(active: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    made: dict[str, Any] = {}
    for assertion in active.get("assertions") or []:
        label = str(assertion.get("label", ""))
        data = assertion.get("data") or {}
        if label.startswith("c2pa.actions"):
            actions.extend(data.get("actions") or [])
        elif label == ASSERTION:
            made = dict(data)
    return actions, made
