"""The hosted engine: FLUX.1 Kontext on Replicate, one prediction per seed.

Every seed of a call (and, through :meth:`ReplicateEngine.agenerate`, every
style of an order) is in flight at once. The one bound on how many is the
scheduler's (``jobs.lanes``, ``HEADSHOTS_REPLICATE_CONCURRENCY`` calls of one
seed each); a direct call, as ``headshots generate`` makes, has at most 16
seeds. A prediction is created with
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

import httpx
from PIL import Image
from replicate.client import Client
from replicate.exceptions import ReplicateError

from headshots.config import Settings
from headshots.engines.base import (
    EngineDefaults,
    Failed,
    Outcome,
    Rendered,
    Shape,
    Size,
    check_seeds,
)
from headshots.engines.replicate.clients import Clients, LoopClients, make_clients
from headshots.engines.replicate.models import (
    HEADSHOT_BACKGROUNDS,
    ModelSpec,
    build_input,
    model_spec,
)
from headshots.engines.replicate.outputs import download, finished_image
from headshots.engines.replicate.transport import RetryPolicy
from headshots.engines.replicate.webhooks import WAITERS, WEBHOOK_PATH
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


class ReplicateEngine(EngineDefaults):
    name: ClassVar[str] = "replicate"
    description: ClassVar[str] = "FLUX.1 Kontext on Replicate (hosted, generative)."
    generative: ClassVar[bool] = True
    # A failed seed is worth another: the identity check may re-roll.
    rerolls_help: ClassVar[bool] = True
    repairs_crop: ClassVar[bool] = True
    # The prompt names the style's wardrobe and the model paints it.
    changes_clothes: ClassVar[bool] = True
    # A prompt can name the colour; professional-headshot, which has no
    # prompt, gets the closest of its five backgrounds instead.
    takes_backdrop_colour: ClassVar[bool] = True

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
        self._clients = LoopClients(self._make_clients)
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

    def _make_clients(self) -> Clients:
        timeout = httpx.Timeout(
            self.timing.read_seconds, connect=self.timing.connect_seconds, pool=None
        )
        return make_clients(self._token, self._base_url, timeout, self.timing.retry)

    # --- readiness ----------------------------------------------------------

    def check_ready(self) -> None:
        """Validate the token against the API; ``ConfigurationError`` if it is refused."""
        if time.monotonic() < self._ready_until:
            return
        _run_sync(self._then_close(self.acheck_ready()))
        self._ready_until = time.monotonic() + self.timing.ready_cache_seconds

    async def acheck_ready(self) -> None:
        try:
            await self._clients.get().api.accounts.async_current()
        except ReplicateError as error:
            if error.status in (401, 403):
                raise _token_refused(error.status) from None
            raise HeadshotsError(
                f"Replicate answered HTTP {error.status} to the readiness check."
            ) from None
        except httpx.TransportError:
            raise HeadshotsError("Replicate cannot be reached from this machine.") from None

    async def _then_close(self, work: Coroutine[Any, Any, T]) -> T:
        """``work``, then the clients of its loop closed: a loop of its own ends with it."""
        try:
            return await work
        finally:
            await self._clients.close()

    # --- generation ---------------------------------------------------------

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: Size
    ) -> list[Outcome]:
        return _run_sync(self._then_close(self.agenerate(selfie, style, seeds, size)))

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
        clients = self._clients.get()
        taken = set(seeds)
        return list(
            await asyncio.gather(
                *(
                    self._variation(clients, fields, style, seed, size, taken)
                    for seed, fields in zip(seeds, inputs, strict=True)
                )
            )
        )

    async def _variation(
        self,
        clients: Clients,
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
            attempt = await self._predict(clients, fields, current, size)
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
        self, clients: Clients, fields: dict[str, Any], seed: int, size: Size
    ) -> _Attempt:
        api = clients.api
        attempt = _Attempt(seed=seed)
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
        return await self._conclude(clients, attempt, prediction, size)

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
        clients: Clients,
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
                data = await download(clients.files, prediction.get("output"))
                # Decoding and fitting are CPU work (Pillow releases the GIL):
                # on threads, the outputs of an order are finished in parallel.
                attempt.image = await asyncio.to_thread(finished_image, data, size)
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
        await self._cancel(clients.api, pid)
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
