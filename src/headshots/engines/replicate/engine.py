"""The hosted engine: image-editing models on Replicate, one prediction per variation.

Every seed of a call (and, through :meth:`ReplicateEngine.agenerate`, every
style of an order) is in flight at once. The one bound on how many is the
scheduler's (``jobs.lanes``, ``HEADSHOTS_REPLICATE_CONCURRENCY`` calls of one
seed each); a direct call, as ``headshots generate`` makes, has at most 16
seeds. A prediction is created with
``Prefer: wait`` so a fast one comes back on the create call itself; a slower
one is polled, or woken by a signed webhook when ``HEADSHOTS_PUBLIC_URL`` is
set. Each output is downloaded at once (the provider deletes it after about
an hour), checked, and fitted to the order's size. A model without a seed
makes each variation with a call of its own; its images cannot be remade.

A create is sent again only when it surely never left this machine. One
whose answer was lost (a 502 or 504 from a proxy, a connection cut
mid-way) may have made a prediction, which is looked for in the account's
prediction list before anything else is paid; if it cannot be found, that
variation is given up with a sentence saying so.

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
    Price,
    build_input,
    model_spec,
)
from headshots.engines.replicate.outputs import FINISHING, download, finished_image
from headshots.engines.replicate.transport import RetryPolicy, never_sent
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
# Answers to a create that do not say whether a prediction was made.
UNCERTAIN_STATUSES = frozenset({500, 502, 503, 504})
# Pages of the prediction list read when looking for a create's prediction:
# it was made seconds ago, and the list is newest first.
LOOKUP_PAGES = 3
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
    # What the provider charges for this prediction (0 when it made nothing).
    cost_usd: float = 0.0
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
        """The selfie's data URI, made on first use."""
        key = id(selfie)
        # Held while encoding, so concurrent styles wait for one encoding
        # instead of each doing their own.
        with self._lock:
            uri = self._uris.get(key)
            if uri is None:
                uri = self._uris[key] = selfie_data_uri(selfie.image)
                weakref.finalize(selfie, self._uris.pop, key, None)
            return uri


def upload_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size the selfie travels at: its own, or scaled down to 1.5 MP."""
    width, height = size
    if width * height <= UPLOAD_MAX_PIXELS:
        return width, height
    scale = math.sqrt(UPLOAD_MAX_PIXELS / (width * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


def selfie_data_uri(image: Image.Image) -> str:
    """The selfie as an inline JPEG: fresh pixels, no EXIF, at most 1.5 MP."""
    rgb = image.convert("RGB")
    if upload_size(rgb.size) != rgb.size:
        rgb = rgb.resize(upload_size(rgb.size), Image.Resampling.LANCZOS)
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
    description: ClassVar[str] = "Image models on Replicate (hosted, generative)."
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
        self.price = price_of(self.spec, settings)
        self._token = token
        self._base_url = settings.replicate_base_url or None
        self._clients = LoopClients(self._make_clients)
        self._uploads = _Uploads()
        self._ready_until = 0.0
        # Predictions this process created or adopted, so a lost create's
        # lookup never takes one that another variation already has.
        self._claimed: dict[str, None] = {}
        self._claimed_lock = threading.Lock()
        self.webhook_url = (
            settings.public_url.rstrip("/") + WEBHOOK_PATH if settings.public_url else None
        )

    def shape(self) -> Shape:
        # One prediction per seed, every one of them in flight on one event
        # loop, up to HEADSHOTS_REPLICATE_CONCURRENCY per process.
        return Shape(calls=self.settings.replicate_concurrency, batch=1, asynchronous=True)

    def __repr__(self) -> str:  # never the token
        return f"ReplicateEngine(model={self.spec.name!r})"

    def describe(self) -> dict[str, Any]:
        """The model, what a headshot costs and whether it can be remade, for /readyz."""
        return {
            "model": self.spec.name,
            "title": self.spec.title,
            "seed": self.spec.seeded,
            "price_usd_per_headshot": self.price.of(*typical_pixels()),
            "price_source": self.price.source,
        }

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
        input_pixels = math.prod(upload_size(selfie.image.size))
        # Build every input first: a bad one stops the call before any money is spent.
        extend = selfie.cropped_tightly
        inputs = [
            build_input(
                self.spec,
                style,
                image_uri,
                seed if self.spec.seeded else None,
                size,
                extend_crop=extend,
            )
            for seed in seeds
        ]
        clients = self._clients.get()
        taken = set(seeds)
        return list(
            await asyncio.gather(
                *(
                    self._variation(clients, fields, style, seed, size, taken, input_pixels)
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
        input_pixels: int,
    ) -> Outcome:
        started = time.monotonic()
        attempts: list[_Attempt] = []
        current = seed
        for round_ in range(self.settings.replicate_rerolls + 1):
            if round_ and self.spec.seeded:
                current = _fresh_seed(current, taken)
                fields = {**fields, "seed": current}
            # Without a seed, the same input sent again is a new draw.
            attempt = await self._predict(clients, fields, current, size, input_pixels)
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
        seeded = self.spec.seeded
        details: dict[str, Any] = {
            "provider": "replicate",
            "model": self.spec.name,
            "model_version": self.settings.replicate_model_version,
            "style": style.id,
            # A model without a seed cannot remake an image: no seed is
            # claimed for it.
            "seed": last.seed if seeded else None,
            "requested_seed": seed if seeded else None,
            "reproducible": seeded,
            "prediction_id": last.prediction_id,
            "prediction_ids": [a.prediction_id for a in attempts if a.prediction_id],
            "seeds_tried": [a.seed for a in attempts] if seeded else [],
            "predict_time": last.predict_time,
            "status": last.status,
            # Every prediction that made an image is paid, a re-rolled one
            # too; one that failed is not billed per image.
            "cost_usd": round(sum(a.cost_usd for a in attempts), 6),
        }
        if not self.spec.prompted:
            details["background"] = HEADSHOT_BACKGROUNDS.get(style.id, "neutral")
        return details

    async def _predict(
        self,
        clients: Clients,
        fields: dict[str, Any],
        seed: int,
        size: Size,
        input_pixels: int,
    ) -> _Attempt:
        api = clients.api
        attempt = _Attempt(seed=seed)
        deadline = time.monotonic() + self.settings.replicate_timeout_seconds
        found: dict[str, Any] | None
        try:
            prediction = await self._create(api, fields, deadline)
        except ReplicateError as error:
            if (error.status or 0) not in UNCERTAIN_STATUSES:
                return _refused(attempt, error)
            log.warning("replicate create answered HTTP %s; looking for it", error.status)
            found = await self._find_created(api, fields)
            if found is None:
                return _lost(attempt)
            prediction = found
        except httpx.TransportError as error:
            log.warning("replicate create failed: %s", type(error).__name__)
            if never_sent(error):
                attempt.code = "provider_unreachable"
                attempt.reason = "The image service could not be reached; try again shortly."
                attempt.retryable = True
                return attempt
            found = await self._find_created(api, fields)
            if found is None:
                return _lost(attempt)
            prediction = found
        else:
            prediction = await self._owned(api, prediction, fields)
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
        return await self._conclude(clients, attempt, prediction, size, input_pixels)

    async def _owned(
        self, api: Client, created: dict[str, Any], fields: dict[str, Any]
    ) -> dict[str, Any]:
        """The prediction a create answered, claimed; or, where it was taken, the one left.

        Another variation's lost answer may have been looked for while this
        create was on its way, and taken its prediction (a model without a
        seed gives every variation the same input): the one that lookup
        missed is then this variation's, so no image is shown twice and none
        is paid for and left unused.
        """
        if self._claim(str(created.get("id") or "") or None):
            return created
        found = await self._find_created(api, fields)
        return created if found is None else found

    def _claim(self, prediction_id: str | None) -> bool:
        """Mark a prediction as this process's; False if it already was."""
        if not prediction_id:
            return True
        with self._claimed_lock:
            if prediction_id in self._claimed:
                return False
            self._claimed[prediction_id] = None
            # Bounded: the oldest ids are long finished.
            while len(self._claimed) > 10_000:
                self._claimed.pop(next(iter(self._claimed)))
            return True

    async def _find_created(self, api: Client, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The prediction a create whose answer was lost made, if the provider has it.

        It is the newest one of this model with exactly this input that no
        variation here has: inputs differ by seed, and where a model has no
        seed, predictions of the same input are alike, so any one unclaimed
        is as good as the lost one.
        """
        try:
            page = await api.predictions.async_list()
            for _ in range(LOOKUP_PAGES):
                for listed in page.results:
                    candidate = _as_dict(listed)
                    if (
                        candidate.get("model") == self.spec.name
                        and candidate.get("input") == fields
                        and self._claim(str(candidate.get("id") or ""))
                    ):
                        log.info("replicate prediction %s found after a lost answer", listed.id)
                        return candidate
                if not page.next:
                    break
                page = await api.predictions.async_list(page.next)
        except (ReplicateError, httpx.TransportError) as error:
            log.warning("replicate prediction lookup failed: %s", type(error).__name__)
        return None

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
        input_pixels: int,
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
                # Decoding and fitting are CPU work outside the GIL, one
                # thread per core: of an order's outputs landing together,
                # the first is finished (and its preview shown) first,
                # instead of all of them at a share of the cores each.
                attempt.image, made = await asyncio.get_running_loop().run_in_executor(
                    FINISHING, finished_image, data, size
                )
                attempt.cost_usd = self.price.of(made[0] * made[1], input_pixels)
            except (ValueError, OSError, httpx.HTTPError) as error:
                # Made and so paid, even if unusable: billed per output.
                attempt.cost_usd = self.price.of(typical_pixels()[0], input_pixels)
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


def price_of(spec: ModelSpec, settings: Settings) -> Price:
    """The model's published price, or the operator's (HEADSHOTS_REPLICATE_COST_USD)."""
    override = settings.replicate_cost_usd.get(spec.name)
    if override is None:
        return spec.price
    return Price(per_image=override, source="HEADSHOTS_REPLICATE_COST_USD", confirmed=True)


def typical_pixels() -> tuple[int, int]:
    """Output and input pixels of a typical headshot: about 1 MP out, 1.5 MP in."""
    return 1024 * 1024, UPLOAD_MAX_PIXELS


def _lost(attempt: _Attempt) -> _Attempt:
    attempt.status = "unknown"
    attempt.code = "provider_answer_lost"
    attempt.reason = (
        "The image service did not answer whether it started this image, and it could not be "
        "found on the account; it was not asked again, so that it is never paid for twice."
    )
    return attempt


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
