"""The hosted engine: FLUX.1 Kontext on Replicate, one prediction per seed.

Every seed of a call (and, through :meth:`ReplicateEngine.agenerate`, every
style of an order) is in flight at once, bounded by
``HEADSHOTS_REPLICATE_CONCURRENCY``. A prediction is created with
``Prefer: wait`` so a fast one comes back on the create call itself; a slower
one is polled, or woken by a signed webhook when ``HEADSHOTS_PUBLIC_URL`` is
set. Each output is downloaded at once (the provider deletes it after about
an hour), checked, and fitted to the order's size.

What leaves the machine: the prepared selfie as an inline JPEG data URI
(no metadata) and the style's prompt. Neither, nor the token, is ever logged
or put in an error message.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import io
import logging
import math
import re
import threading
import time
import weakref
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import cv2
import httpx
import numpy as np
from PIL import Image
from replicate.client import Client
from replicate.exceptions import ReplicateError

from headshots.config import Settings
from headshots.engines.base import Failed, Outcome, Rendered, Shape, Size, check_seeds
from headshots.engines.replicate_models import (
    HEADSHOT_BACKGROUNDS,
    ModelSpec,
    build_input,
    model_spec,
)
from headshots.engines.replicate_transport import RetryingTransport, RetryPolicy, tls_context
from headshots.engines.replicate_webhooks import WAITERS, WEBHOOK_PATH
from headshots.errors import ConfigurationError, HeadshotsError
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import Style

log = logging.getLogger(__name__)
# httpx logs every request URL at INFO; an output URL is a bearer link to a
# person's image, so those lines stay below the default level.
logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))

T = TypeVar("T")

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
# The selfie sent to the provider: enough for Kontext (it works at about one
# megapixel), small enough to travel inline.
UPLOAD_MAX_PIXELS = 1_500_000
UPLOAD_JPEG_QUALITY = 92
# Outputs: Kontext answers about one megapixel; anything outside these bounds
# is not an image we asked for.
OUTPUT_MAX_BYTES = 40 * 1024 * 1024
OUTPUT_MIN_SIDE = 256
OUTPUT_MAX_SIDE = 4096
_DATA_URI = re.compile(r"data:[^\s\"']{0,100}?;base64,[A-Za-z0-9+/=]+")
_URL = re.compile(r"https?://\S+")
_SAFETY_WORDS = ("nsfw", "sensitive", "safety", "flagged", "moderation", "content policy")


@dataclass(frozen=True)
class Timing:
    """How long to wait for what. Tests shrink these; operators rarely need to."""

    # Seconds a create call may hold the connection until the prediction is
    # done (Replicate's sync mode allows 1..60); 0 turns it off.
    sync_wait_seconds: int = 60
    poll_seconds: float = 1.0
    # With webhooks on, polling is only the fallback for a lost webhook.
    webhook_poll_seconds: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    connect_seconds: float = 5.0
    read_seconds: float = 30.0
    # A successful readiness check is trusted this long before asking again.
    ready_cache_seconds: float = 60.0


@dataclass
class _Attempt:
    seed: int
    prediction_id: str | None = None
    status: str = "error"
    image: Image.Image | None = None
    predict_time: float | None = None
    code: str = "engine_failed"
    reason: str = "The image service could not make this image."
    retryable: bool = False
    # Whether a fresh seed is worth a try (a refused or failed render is;
    # an invalid request or a timeout is not).
    reroll: bool = False


class _Slots:
    """A concurrency bound shared by every thread and event loop using the engine."""

    def __init__(self, size: int) -> None:
        self._semaphore = threading.BoundedSemaphore(size)

    async def __aenter__(self) -> None:
        # Polling keeps the wait non-blocking in any loop; it only happens
        # when more predictions are queued than the bound allows.
        while not self._semaphore.acquire(blocking=False):
            await asyncio.sleep(0.02)

    async def __aexit__(self, *exc: object) -> None:
        self._semaphore.release()


class _Uploads:
    """The data URI of each live selfie, encoded once for all styles of an order.

    An entry lives exactly as long as its selfie object: the pixels are in
    memory then anyway, and go when the selfie goes.
    """

    def __init__(self) -> None:
        self._uris: dict[int, str] = {}
        self._lock = threading.Lock()

    def get(self, selfie: PreparedSelfie) -> str:
        key = id(selfie)
        # Held while encoding, so concurrent styles wait for one encoding
        # instead of each doing their own.
        with self._lock:
            uri = self._uris.get(key)
            if uri is None:
                uri = self._uris[key] = selfie_data_uri(selfie.image)
                weakref.finalize(selfie, self._uris.pop, key, None)
            return uri


def selfie_data_uri(image: Image.Image) -> str:
    """The selfie as an inline JPEG: fresh pixels, no EXIF, at most 1.5 MP."""
    rgb = image.convert("RGB")
    pixels = rgb.width * rgb.height
    if pixels > UPLOAD_MAX_PIXELS:
        scale = math.sqrt(UPLOAD_MAX_PIXELS / pixels)
        rgb = rgb.resize(
            (max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale))),
            Image.Resampling.LANCZOS,
        )
    # Copying into a new image drops any info (EXIF, ICC, comments) the
    # source might still carry; only pixels travel.
    clean = Image.new("RGB", rgb.size)
    clean.paste(rgb)
    buffer = io.BytesIO()
    clean.save(buffer, format="JPEG", quality=UPLOAD_JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def provider_text(text: object, limit: int = 240) -> str:
    """A provider message made safe to show: no inline data, no links, bounded."""
    cleaned = _DATA_URI.sub("[image]", str(text or ""))
    cleaned = _URL.sub("[link]", cleaned)
    cleaned = " ".join(cleaned.split())
    return cleaned[:limit].rstrip(" .") or "no reason given"


def _failure_sentence(error: object) -> tuple[str, str]:
    text = provider_text(error)
    if any(word in text.lower() for word in _SAFETY_WORDS):
        return "safety_filter", "The provider's safety filter refused this image."
    return "prediction_failed", f"The image model could not make this variation ({text})."


def _run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run async work from sync code, also when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class ReplicateEngine:
    name: ClassVar[str] = "replicate"
    description: ClassVar[str] = "FLUX.1 Kontext on Replicate (hosted, generative)."
    generative: ClassVar[bool] = True
    # A failed seed is worth another: the identity check may re-roll.
    rerolls_help: ClassVar[bool] = True
    repairs_crop: ClassVar[bool] = True
    # The prompt names the style's wardrobe and the model paints it.
    changes_clothes: ClassVar[bool] = True

    def __init__(self, settings: Settings, timing: Timing | None = None) -> None:
        if settings.replicate_api_token is None:
            raise ConfigurationError(
                "The replicate engine needs an API token: set REPLICATE_API_TOKEN "
                "(from replicate.com/account/api-tokens)."
            )
        token = settings.replicate_api_token.get_secret_value().strip()
        if not token:
            raise ConfigurationError("REPLICATE_API_TOKEN is set but empty.")
        self.settings = settings
        self.timing = timing or Timing()
        self.spec: ModelSpec = model_spec(
            settings.replicate_model, settings.replicate_model_version or None
        )
        self.cost_usd = settings.replicate_cost_usd.get(self.spec.name, self.spec.cost_usd)
        self._token = token
        self._base_url = settings.replicate_base_url or None
        self._slots = _Slots(settings.replicate_concurrency)
        self._uploads = _Uploads()
        self._ready_until = 0.0
        self.webhook_url = (
            settings.public_url.rstrip("/") + WEBHOOK_PATH if settings.public_url else None
        )

    def shape(self) -> Shape:
        # One prediction per seed, every one of them in flight on one event
        # loop, up to HEADSHOTS_REPLICATE_CONCURRENCY per process.
        return Shape(calls=self.settings.replicate_concurrency, batch=1, asynchronous=True)

    def __repr__(self) -> str:  # never the token
        return f"ReplicateEngine(model={self.spec.name!r})"

    # --- clients -----------------------------------------------------------

    def _clients(self) -> tuple[Client, httpx.AsyncClient, RetryingTransport]:
        """A client per event loop: httpx connections belong to the loop that made them."""
        transport = RetryingTransport(policy=self.timing.retry)
        timeout = httpx.Timeout(
            self.timing.read_seconds, connect=self.timing.connect_seconds, pool=None
        )
        # Mounting our transport for every URL replaces the client's own
        # retrier, so retries do not multiply (see replicate_transport.py).
        api = Client(
            api_token=self._token,
            base_url=self._base_url,
            timeout=timeout,
            mounts={"all://": transport},
            # Never used (the mount takes every URL), but without it the
            # client would build a default transport and its TLS context.
            transport=transport,
            verify=tls_context(),
        )
        # Outputs are fetched without the token: the download host needs none.
        files = httpx.AsyncClient(
            transport=transport, timeout=timeout, follow_redirects=True, verify=tls_context()
        )
        return api, files, transport

    # --- readiness ----------------------------------------------------------

    def check_ready(self) -> None:
        """Validate the token against the API; ``ConfigurationError`` if it is refused."""
        if time.monotonic() < self._ready_until:
            return
        _run_sync(self.acheck_ready())
        self._ready_until = time.monotonic() + self.timing.ready_cache_seconds

    async def acheck_ready(self) -> None:
        api, files, transport = self._clients()
        try:
            await api.accounts.async_current()
        except ReplicateError as error:
            if error.status in (401, 403):
                raise _token_refused(error.status) from None
            raise HeadshotsError(
                f"Replicate answered HTTP {error.status} to the readiness check."
            ) from None
        except httpx.TransportError:
            raise HeadshotsError("Replicate cannot be reached from this machine.") from None
        finally:
            await files.aclose()
            await transport.aclose()

    # --- generation ---------------------------------------------------------

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: Size
    ) -> list[Outcome]:
        return _run_sync(self.agenerate(selfie, style, seeds, size))

    async def agenerate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: Size
    ) -> list[Outcome]:
        """All seeds at once; one outcome per seed, in order. Safe to run many concurrently."""
        check_seeds(seeds)
        # Encoding is CPU work: off the loop, so other styles keep moving.
        image_uri = await asyncio.to_thread(self._uploads.get, selfie)
        # Build every input first: a bad one stops the call before any money is spent.
        extend = selfie.cropped_tightly
        inputs = [
            build_input(self.spec, style, image_uri, seed, size, extend_crop=extend)
            for seed in seeds
        ]
        api, files, transport = self._clients()
        taken = set(seeds)
        try:
            return list(
                await asyncio.gather(
                    *(
                        self._variation(api, files, fields, style, seed, size, taken)
                        for seed, fields in zip(seeds, inputs, strict=True)
                    )
                )
            )
        finally:
            await files.aclose()
            await transport.aclose()

    async def _variation(
        self,
        api: Client,
        files: httpx.AsyncClient,
        fields: dict[str, Any],
        style: Style,
        seed: int,
        size: Size,
        taken: set[int],
    ) -> Outcome:
        started = time.monotonic()
        attempts: list[_Attempt] = []
        current = seed
        for round_ in range(self.settings.replicate_rerolls + 1):
            if round_:
                current = _fresh_seed(current, taken)
                fields = {**fields, "seed": current}
            attempt = await self._predict(api, files, fields, current, size)
            attempts.append(attempt)
            if attempt.image is not None or not attempt.reroll:
                break
        last = attempts[-1]
        details = self._details(style, seed, attempts)
        seconds = time.monotonic() - started
        if last.image is not None:
            return Rendered(seed=last.seed, image=last.image, seconds=seconds, details=details)
        return Failed(
            seed=last.seed,
            reason=last.reason,
            code=last.code,
            retryable=last.retryable,
            seconds=seconds,
            details=details,
        )

    def _details(self, style: Style, seed: int, attempts: list[_Attempt]) -> dict[str, Any]:
        last = attempts[-1]
        details: dict[str, Any] = {
            "provider": "replicate",
            "model": self.spec.name,
            "model_version": self.settings.replicate_model_version,
            "style": style.id,
            "seed": last.seed,
            "requested_seed": seed,
            "prediction_id": last.prediction_id,
            "prediction_ids": [a.prediction_id for a in attempts if a.prediction_id],
            "seeds_tried": [a.seed for a in attempts],
            "predict_time": last.predict_time,
            "status": last.status,
            # Only a delivered image is counted; what a failed prediction
            # costs is on the provider's invoice.
            "cost_usd": self.cost_usd if last.image is not None else 0.0,
        }
        if not self.spec.prompted:
            details["background"] = HEADSHOT_BACKGROUNDS.get(style.id, "neutral")
        return details

    async def _predict(
        self,
        api: Client,
        files: httpx.AsyncClient,
        fields: dict[str, Any],
        seed: int,
        size: Size,
    ) -> _Attempt:
        attempt = _Attempt(seed=seed)
        async with self._slots:
            deadline = time.monotonic() + self.settings.replicate_timeout_seconds
            try:
                prediction = await self._create(api, fields, deadline)
            except ReplicateError as error:
                return _refused(attempt, error)
            except httpx.TransportError as error:
                log.warning("replicate create failed: %s", type(error).__name__)
                attempt.code = "provider_unreachable"
                attempt.reason = "The image service could not be reached; try again shortly."
                attempt.retryable = True
                return attempt
            attempt.prediction_id = str(prediction.get("id") or "") or None
            try:
                prediction = await self._wait(api, prediction, deadline)
            except (ReplicateError, httpx.TransportError) as error:
                log.warning("replicate poll failed: %s", type(error).__name__)
                await self._cancel(api, attempt.prediction_id)
                attempt.code = "provider_unreachable"
                attempt.reason = "The image service stopped answering; try again shortly."
                attempt.retryable = True
                return attempt
            return await self._conclude(api, files, attempt, prediction, size)

    async def _create(self, api: Client, fields: dict[str, Any], deadline: float) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.webhook_url:
            params["webhook"] = self.webhook_url
            params["webhook_events_filter"] = ["completed"]
        wait = min(self.timing.sync_wait_seconds, math.ceil(deadline - time.monotonic()))
        if wait >= 1:
            params["wait"] = int(wait)
        version = self.settings.replicate_model_version
        if version:
            created = await api.predictions.async_create(version=version, input=fields, **params)
        else:
            # Straight to the model's namespace: the generic create drops ``wait``
            # before it delegates (replicate 1.0.7).
            created = await api.models.predictions.async_create(
                model=self.spec.name, input=fields, **params
            )
        log.info("replicate prediction %s created (%s)", created.id, created.status)
        return _as_dict(created)

    async def _wait(
        self, api: Client, prediction: dict[str, Any], deadline: float
    ) -> dict[str, Any]:
        """Until the prediction ends or the deadline passes; polls, or wakes on a webhook."""
        prediction_id = str(prediction.get("id", ""))
        if prediction.get("status") in TERMINAL or not prediction_id:
            return prediction
        interval = (
            self.timing.webhook_poll_seconds if self.webhook_url else self.timing.poll_seconds
        )
        woken = WAITERS.register(prediction_id)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return prediction
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(interval, remaining))
                woken.clear()
                pushed = WAITERS.payload(prediction_id)
                if pushed is not None and pushed.get("status") in TERMINAL:
                    return pushed
                if time.monotonic() >= deadline:
                    return prediction
                prediction = _as_dict(await api.predictions.async_get(prediction_id))
                if prediction.get("status") in TERMINAL:
                    return prediction
        finally:
            WAITERS.forget(prediction_id)

    async def _conclude(
        self,
        api: Client,
        files: httpx.AsyncClient,
        attempt: _Attempt,
        prediction: dict[str, Any],
        size: Size,
    ) -> _Attempt:
        status = str(prediction.get("status", ""))
        attempt.status = status
        metrics = prediction.get("metrics") or {}
        if isinstance(metrics.get("predict_time"), int | float):
            attempt.predict_time = round(float(metrics["predict_time"]), 3)
        pid = attempt.prediction_id
        if status == "succeeded":
            try:
                data = await _download(files, prediction.get("output"))
                # Decoding and fitting are CPU work (Pillow releases the GIL):
                # on threads, the outputs of an order are finished in parallel.
                attempt.image = await asyncio.to_thread(_finished_image, data, size)
            except (ValueError, OSError, httpx.HTTPError) as error:
                log.warning("replicate output of %s unusable: %s", pid, type(error).__name__)
                attempt.code = "bad_output"
                attempt.reason = "The image service returned something that is not a usable image."
                attempt.reroll = True
            log.info("replicate prediction %s succeeded", pid)
            return attempt
        if status == "failed":
            attempt.code, attempt.reason = _failure_sentence(prediction.get("error"))
            attempt.retryable = attempt.reroll = True
            log.info("replicate prediction %s failed (%s)", pid, attempt.code)
            return attempt
        if status == "canceled":
            attempt.code = "canceled"
            attempt.reason = "This image was cancelled at the image service."
            return attempt
        # Still running at the deadline: stop paying for it.
        attempt.status = "timeout"
        attempt.code = "timeout"
        seconds = self.settings.replicate_timeout_seconds
        unit = "second" if seconds == 1 else "seconds"
        attempt.reason = f"The image service took longer than {seconds:g} {unit} for this image."
        attempt.retryable = True
        await self._cancel(api, pid)
        return attempt

    async def _cancel(self, api: Client, prediction_id: str | None) -> None:
        """Stop a prediction we no longer wait for, so it is not paid to the end."""
        if not prediction_id:
            return
        try:
            await api.predictions.async_cancel(prediction_id)
            log.info("replicate prediction %s cancelled", prediction_id)
        except (ReplicateError, httpx.TransportError) as error:
            log.warning("replicate cancel of %s failed: %s", prediction_id, type(error).__name__)


def _token_refused(status: int | None) -> ConfigurationError:
    return ConfigurationError(
        f"Replicate refused the API token (HTTP {status}): check REPLICATE_API_TOKEN "
        "and that the account may run models."
    )


def _refused(attempt: _Attempt, error: ReplicateError) -> _Attempt:
    status = error.status or 0
    attempt.status = "rejected"
    if status in (401, 403):
        log.error("replicate refused the API token (HTTP %s)", status)
        refused = _token_refused(status)
        attempt.code, attempt.reason = refused.code, refused.detail
    elif status == 422:
        attempt.code = "invalid_input"
        attempt.reason = (
            f"The image service refused the request: {provider_text(error.detail or error.title)}."
        )
    elif status == 402:
        attempt.code = "provider_billing"
        attempt.reason = (
            "The image service account has no credit left; the operator must top it up."
        )
    else:
        attempt.code = "provider_unavailable"
        attempt.reason = f"The image service is unavailable (HTTP {status}); try again shortly."
        attempt.retryable = True
    log.warning("replicate create refused: HTTP %s", status)
    return attempt


def _as_dict(prediction: Any) -> dict[str, Any]:
    data = prediction.dict() if hasattr(prediction, "dict") else dict(prediction)
    return {key: value for key, value in data.items() if not key.startswith("_")}


def _fresh_seed(seed: int, taken: set[int]) -> int:
    """A new seed derived from the old one, so a re-run re-rolls the same way."""
    candidate = seed
    while True:
        candidate = (candidate * 1_103_515_245 + 12_345) % 2**31
        if candidate not in taken:
            taken.add(candidate)
            return candidate


async def _download(files: httpx.AsyncClient, output: Any) -> bytes:
    if isinstance(output, list):
        output = output[0] if output else None
    if not isinstance(output, str):
        raise ValueError("no output")
    if output.startswith("data:"):
        _, _, encoded = output.partition(",")
        if len(encoded) > OUTPUT_MAX_BYTES * 4 // 3 + 4:
            raise ValueError("output too large")
        return base64.b64decode(encoded, validate=True)
    if output.startswith(("https://", "http://")):
        return await _fetch(files, output)
    raise ValueError("output is not a link")


async def _fetch(files: httpx.AsyncClient, url: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async with files.stream("GET", url) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > OUTPUT_MAX_BYTES:
                raise ValueError("output too large")
            chunks.append(chunk)
    return b"".join(chunks)


def _finished_image(data: bytes, size: Size) -> Image.Image:
    """A real image of sane size, fitted to the order's size around the head.

    The header is read first (Pillow, no pixels decoded) so a decompression
    bomb is refused before any memory is spent. OpenCV then decodes and
    scales: about twice as fast as Pillow here, and it releases the GIL, so
    the 24 outputs of an order that land together are finished on every core.
    """
    with Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP"]) as header:
        width, height = header.size
    if not (
        OUTPUT_MIN_SIDE <= width <= OUTPUT_MAX_SIDE and OUTPUT_MIN_SIDE <= height <= OUTPUT_MAX_SIDE
    ):
        raise ValueError("output of an unexpected size")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None or pixels.shape[:2] != (height, width):
        raise ValueError("output does not decode")
    target_w, target_h = size
    scale = max(target_w / width, target_h / height)
    scaled_w = max(target_w, round(width * scale))
    scaled_h = max(target_h, round(height * scale))
    if (scaled_w, scaled_h) != (width, height):
        pixels = cv2.resize(pixels, (scaled_w, scaled_h), interpolation=cv2.INTER_CUBIC)
    # Crop the overflow evenly left and right, and a little more from the
    # bottom than the top: the head sits in the upper part of a headshot.
    left = (scaled_w - target_w) // 2
    top = int((scaled_h - target_h) * 0.4)
    pixels = pixels[top : top + target_h, left : left + target_w]
    return Image.fromarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB))
