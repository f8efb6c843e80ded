"""Settings: one typed object read from ``HEADSHOTS_*`` environment variables.

Provider secrets keep the names their own ecosystems use
(``REPLICATE_API_TOKEN``, ``STRIPE_API_KEY``, ``STRIPE_WEBHOOK_SECRET``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1024 * 1024


class Settings(BaseSettings):
    # A variable set but empty (``HEADSHOTS_FLUX_WEIGHTS_DIR=`` in a compose
    # file or a template) means unset for every setting: it takes the default,
    # instead of an empty path becoming "." or an empty token turning an
    # engine on.
    model_config = SettingsConfigDict(
        env_prefix="HEADSHOTS_", extra="ignore", validate_default=True, env_ignore_empty=True
    )

    # Where the database, the encrypted blobs and (in development) the
    # generated master key live.
    data_dir: Path = Path("data")
    # Development mode allows insecure conveniences: a generated master key,
    # http cookies. Never set it on a public server.
    dev_mode: bool = False

    # Intake.
    max_upload_bytes: Annotated[int, Field(ge=1024, le=200 * MB)] = 15 * MB
    max_pixels: Annotated[int, Field(ge=100_000, le=200_000_000)] = 40_000_000
    # Long side, in pixels, of the prepared selfie every engine receives.
    working_size: Annotated[int, Field(ge=512, le=4096)] = 1536

    # Generation. ``engine`` empty means: replicate when a token is set,
    # flux-local when weights are configured, otherwise the offline studio.
    engine: str | None = None
    variations: Annotated[int, Field(ge=1, le=8)] = 4
    output_width: Annotated[int, Field(ge=256, le=4096)] = 1024
    output_height: Annotated[int, Field(ge=256, le=4096)] = 1280

    # Hosted engine (Replicate).
    replicate_api_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REPLICATE_API_TOKEN", "HEADSHOTS_REPLICATE_API_TOKEN"),
    )
    replicate_model: str = "black-forest-labs/flux-kontext-pro"
    replicate_model_version: str | None = None
    replicate_concurrency: Annotated[int, Field(ge=1, le=64)] = 24
    replicate_timeout_seconds: Annotated[float, Field(gt=0, le=900)] = 120.0
    replicate_rerolls: Annotated[int, Field(ge=0, le=3)] = 1
    replicate_webhook_secret: SecretStr | None = None
    # US dollars per image by model, as JSON; a model left out uses the
    # published price in engines/replicate/models.py.
    replicate_cost_usd: dict[str, float] = Field(default_factory=dict)
    # Where the client sends API calls; empty means Replicate itself. Tests
    # point it at a local fake.
    replicate_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REPLICATE_BASE_URL", "HEADSHOTS_REPLICATE_BASE_URL"),
    )

    # Local GPU engine: a folder with FLUX.2 [klein] or FLUX.1 Kontext [dev]
    # in diffusers layout. Steps and guidance left unset take the model's own
    # defaults (engines/flux_models.py): 4 and 1.0 for [klein], 28 and 2.5
    # for Kontext.
    flux_weights_dir: Path | None = None
    flux_steps: Annotated[int | None, Field(ge=1, le=100)] = None
    flux_guidance: Annotated[float | None, Field(ge=0, le=20)] = None
    flux_device: Literal["auto", "cuda", "cpu"] = "auto"

    # Studio engine: calls at once per process; 0 means one per CPU core.
    studio_calls: Annotated[int, Field(ge=0, le=64)] = 0

    # Identity check.
    identity_threshold: Annotated[float, Field(gt=0, lt=2)] = 0.6
    identity_rerolls: Annotated[int, Field(ge=0, le=3)] = 1
    # Worker processes that compute identity scores in parallel (dlib holds
    # the GIL); empty means one per CPU core, 0 scores in the job's process.
    identity_processes: Annotated[int, Field(ge=0, le=64)] | None = None

    # Orders, storage and jobs.
    master_key: SecretStr | None = None
    # Where encrypted blobs live: unset (or file:///PATH) for the data dir,
    # s3://BUCKET/PREFIX for an S3-compatible bucket, whose endpoint, region
    # and credentials come from the AWS_* variables (see storage/s3.py).
    blob_url: str | None = None
    # The longest one request to the bucket may wait (it is tried 3 times).
    blob_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    database_url: str | None = None
    queue_url: str | None = None
    # Style jobs a process works on at once (its consumer threads); 0 means
    # enough to keep the engine's own bound busy (jobs.worker). Engine calls
    # are bounded by each engine's shape, not by this.
    concurrency: Annotated[int, Field(ge=0, le=64)] = 0
    retention_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 24.0
    # How many times a person may have one of an order's variations made
    # again with a new seed; 0 turns redo off. An order keeps the number it
    # was made with, as it keeps its price (orders.redo).
    redos_per_order: Annotated[int, Field(ge=0, le=100)] = 4
    # A worker holds each variation it works on for this long and renews the
    # lease every lease_renew_seconds; a lease that runs out (the worker
    # died) lets the sweep hand the variation to another worker.
    lease_seconds: Annotated[float, Field(ge=1, le=3600)] = 15.0
    lease_renew_seconds: Annotated[float, Field(gt=0, le=1200)] = 5.0
    # A variation still waiting this long after it was enqueued is enqueued
    # again (its job may have been lost with a worker that had taken it).
    stuck_after_seconds: Annotated[float, Field(ge=1, le=86_400)] = 60.0
    # How often the sweep (expiry, lost work) runs, across all consumers.
    sweep_seconds: Annotated[float, Field(ge=1, le=3600)] = 5.0
    # A decrypted selfie stays in a worker's memory this long after its last
    # use, and goes at once when its order is shredded.
    selfie_cache_seconds: Annotated[float, Field(ge=1, le=3600)] = 120.0
    preview_max: Annotated[int, Field(ge=128, le=2048)] = 768
    public_url: str | None = None
    # Uploads and new orders each client (IP address) may make per hour,
    # counted in Redis when HEADSHOTS_QUEUE_URL is redis (shared by every web
    # process), otherwise in the process.
    upload_rate_per_hour: Annotated[int, Field(ge=1, le=100_000)] = 30
    host: str = "127.0.0.1"
    # A `headshots worker` serves its engine metrics on this port when set
    # (web processes serve them at /metrics).
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    # Host names the service answers for, comma-separated ("*": any). Empty:
    # 127.0.0.1, localhost, [::1], the host of public_url and the bind host.
    allowed_hosts: str | None = None
    # Seconds a request body may take to arrive before it is answered 408.
    body_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 60
    # Request bodies one client address may be sending at once (429 beyond).
    uploads_per_client: Annotated[int, Field(ge=1, le=10_000)] = 4
    port: Annotated[int, Field(ge=1, le=65535)] = 8000

    # The landing page's sample pictures: a folder with STYLE.jpg files and a
    # samples.json naming the engine that made them (web/samples.py); unset
    # means the shipped ones, made by the studio engine. Pages show samples
    # only when the configured engine made them.
    samples_dir: Path | None = None

    # Tiers as JSON (see tiers.py); empty means the three default tiers.
    tiers: str | None = None
    # The price of one team seat by tier id, in the tier currency's smallest
    # unit, as JSON ({"professional": 1500}); a tier left out costs its own
    # price per seat (orders/teams/service.py).
    team_seat_prices: dict[str, Annotated[int, Field(ge=50, le=1_000_000)]] = Field(
        default_factory=dict
    )

    # Payments.
    payments: str | None = None
    stripe_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("STRIPE_API_KEY", "HEADSHOTS_STRIPE_API_KEY")
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET", "HEADSHOTS_STRIPE_WEBHOOK_SECRET"),
    )
    # Where the Stripe SDK sends API calls; empty means Stripe itself. Tests
    # point it at a local fake.
    stripe_api_base: str | None = None

    # Content Credentials (C2PA) on every image a person can download. Off
    # only when set off explicitly; outside development mode the operator's
    # certificate chain and private key (PEM files) are required.
    c2pa: bool = True
    c2pa_cert: Path | None = None
    c2pa_key: Path | None = None
    # An RFC 3161 timestamp authority; without one the credentials still
    # validate, for as long as the certificate does.
    c2pa_tsa_url: str | None = None

    @model_validator(mode="after")
    def _renewed_before_expiry(self) -> Settings:
        if self.lease_renew_seconds * 2 > self.lease_seconds:
            raise ValueError(
                "HEADSHOTS_LEASE_RENEW_SECONDS must be at most half of HEADSHOTS_LEASE_SECONDS, "
                "so a live worker renews its lease before it runs out."
            )
        return self

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def output_size(self) -> tuple[int, int]:
        return (self.output_width, self.output_height)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
