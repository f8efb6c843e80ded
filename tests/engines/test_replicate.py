"""The hosted engine against a fake Replicate that speaks the real API.

The real ``replicate`` client, the real retry transport and real images run;
only the paid service is a local HTTP server. Assertions are about what
reached that server and what a person would get back.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from headshots.config import Settings
from headshots.engines.base import Failed, Rendered, get_engine
from headshots.engines.replicate.clients import Clients
from headshots.engines.replicate.engine import ReplicateEngine, Timing
from headshots.engines.replicate.models import MODELS
from headshots.engines.replicate.transport import RetryPolicy
from headshots.errors import ConfigurationError
from headshots.imaging.intake import Photo
from headshots.imaging.selfie import PreparedSelfie, prepare_photo, prepare_selfie
from headshots.jobs.lanes import Lanes
from headshots.styles import EXTEND_CROP, get_style
from headshots.web.replicate_webhook import build_replicate_webhook_router
from tests import selfie_set
from tests.fakes.replicate_schema import models as snapshot_models
from tests.fakes.replicate_schema import schema
from tests.fakes.replicate_server import TOKEN, WEBHOOK_SECRET, FakeReplicate

FIXTURES = Path(__file__).parents[1] / "fixtures"
SIZE = (1024, 1280)
FAST = Timing(
    sync_wait_seconds=60,
    poll_seconds=0.05,
    webhook_poll_seconds=30.0,
    retry=RetryPolicy(attempts=4, backoff_seconds=0.01, max_retry_after_seconds=5),
)
CORPORATE = get_style("corporate")


@pytest.fixture(scope="module")
def selfie() -> PreparedSelfie:
    return prepare_selfie((FIXTURES / "obama.jpg").read_bytes(), Settings())


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    server = FakeReplicate(delay=0.2).start()
    yield server
    server.stop()


def engine(
    settings: Settings, fake: FakeReplicate, timing: Timing = FAST, **changes: Any
) -> ReplicateEngine:
    update: dict[str, Any] = {
        "replicate_api_token": SecretStr(TOKEN),
        "replicate_base_url": fake.url,
        "replicate_timeout_seconds": 5.0,
    }
    update.update(changes)
    return ReplicateEngine(settings.model_copy(update=update), timing)


def create_inputs(fake: FakeReplicate) -> list[dict[str, Any]]:
    return [call.body["input"] for call in fake.creates()]


# --- the happy path ---------------------------------------------------------


def test_four_seeds_run_at_once_with_the_style_prompt_and_their_own_seeds(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.delay = 1.0
    outcomes = engine(settings, fake).generate(selfie, CORPORATE, [11, 22, 33, 44], SIZE)

    assert [type(o) for o in outcomes] == [Rendered] * 4
    assert all(o.image.size == SIZE for o in outcomes if isinstance(o, Rendered))
    creates = fake.creates()
    assert {c.path for c in creates} == {
        "/v1/models/black-forest-labs/flux-kontext-pro/predictions"
    }
    inputs = create_inputs(fake)
    assert sorted(i["seed"] for i in inputs) == [11, 22, 33, 44]
    assert all(i["prompt"] == CORPORATE.prompt for i in inputs)
    assert all(i["aspect_ratio"] == "4:5" and i["output_format"] == "png" for i in inputs)
    assert all(i["safety_tolerance"] == 2 for i in inputs)
    assert fake.peak_in_flight == 4
    # Answered on the create call itself (sync mode): no polling needed.
    assert fake.calls("GET", r"^/v1/predictions/") == []
    first = outcomes[0]
    assert first.seed == 11
    assert first.details["model"] == "black-forest-labs/flux-kontext-pro"
    assert first.details["prediction_id"] in fake.predictions
    assert first.details["predict_time"] == 1.0
    assert first.details["cost_usd"] == 0.04


@pytest.mark.parametrize("crop", [selfie_set.forehead_cut, selfie_set.closeup])
def test_a_tightly_cropped_selfie_asks_the_model_to_complete_the_head(
    settings: Settings, fake: FakeReplicate, crop: Any
) -> None:
    photo = crop("obama.jpg")
    tight = prepare_photo(Photo(image=photo, source_format="PNG", source_size=photo.size))
    assert tight.cropped_tightly
    outcomes = engine(settings, fake).generate(tight, CORPORATE, [5], SIZE)

    assert [type(o) for o in outcomes] == [Rendered]
    (sent,) = create_inputs(fake)
    assert sent["prompt"] == f"{CORPORATE.prompt} {EXTEND_CROP}"
    # A whole head (the other tests' selfie) is never asked for more.
    assert EXTEND_CROP not in CORPORATE.prompt


def test_the_selfie_travels_inline_as_a_jpeg_without_exif(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    engine(settings, fake).generate(selfie, CORPORATE, [1], SIZE)

    uri = create_inputs(fake)[0]["input_image"]
    assert uri.startswith("data:image/jpeg;base64,")
    data = base64.b64decode(uri.split(",", 1)[1])
    # No APP1 segment (EXIF/XMP) anywhere before the image data starts.
    assert b"\xff\xe1" not in data[: data.index(b"\xff\xda")]
    with Image.open(io.BytesIO(data)) as sent:
        assert sent.format == "JPEG"
        assert not sent.getexif()
        assert sent.width * sent.height <= 1_500_000


def test_the_cost_per_image_is_a_setting_per_model(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    priced = engine(
        settings,
        fake,
        replicate_cost_usd={"black-forest-labs/flux-kontext-pro": 0.055},
    )
    (outcome,) = priced.generate(selfie, CORPORATE, [5], SIZE)
    assert outcome.details["cost_usd"] == 0.055


def test_styles_of_one_order_run_concurrently_from_async_code(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.delay = 1.0
    hosted = engine(settings, fake)

    async def order() -> list[list[Any]]:
        return await asyncio.gather(
            hosted.agenerate(selfie, get_style("corporate"), [1, 2, 3], SIZE),
            hosted.agenerate(selfie, get_style("minimal"), [4, 5, 6], SIZE),
        )

    results = asyncio.run(order())
    assert [type(o) for style in results for o in style] == [Rendered] * 6
    assert fake.peak_in_flight == 6


def test_the_concurrency_setting_bounds_predictions_in_flight_through_the_scheduler(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.delay = 0.5
    bounded = engine(settings, fake, replicate_concurrency=2)
    lanes = Lanes()
    try:
        calls = [
            future.result(timeout=30)
            for style in ("corporate", "minimal")
            for _, future in lanes.submit(bounded, selfie, get_style(style), [1, 2, 3], SIZE)
        ]
    finally:
        lanes.close()
    assert [type(o) for call in calls for o in call.outcomes] == [Rendered] * 6
    assert fake.peak_in_flight == 2


def test_calls_on_one_event_loop_share_one_connection_pool(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    opened: list[int] = []
    real = ReplicateEngine._make_clients

    def counting(self: ReplicateEngine) -> Clients:
        opened.append(1)
        return real(self)

    async def order() -> list[list[Any]]:
        return await asyncio.gather(
            *(
                hosted.agenerate(selfie, get_style(s), [1, 2], SIZE)
                for s in ("corporate", "minimal")
            )
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ReplicateEngine, "_make_clients", counting)
        hosted = engine(settings, fake)
        asyncio.run(order())
        asyncio.run(order())
    # One set of clients per loop, not per style or per prediction.
    assert len(opened) == 2


# --- the other models -----------------------------------------------------


def test_professional_headshot_gets_a_background_instead_of_a_prompt(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    hosted = engine(settings, fake, replicate_model="flux-kontext-apps/professional-headshot")
    (outcome,) = hosted.generate(selfie, get_style("executive"), [9], SIZE)

    assert isinstance(outcome, Rendered)
    (create,) = fake.creates()
    assert create.path == "/v1/models/flux-kontext-apps/professional-headshot/predictions"
    sent = create.body["input"]
    assert "prompt" not in sent
    assert (sent["background"], sent["gender"], sent["seed"]) == ("black", "none", 9)


def test_a_pinned_version_is_created_through_the_versions_endpoint(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    version = "a" * 64
    hosted = engine(settings, fake, replicate_model_version=version)
    hosted.generate(selfie, CORPORATE, [3], SIZE)
    (create,) = fake.creates()
    assert (create.path, create.body["version"]) == ("/v1/predictions", version)


def test_kontext_dev_gets_no_safety_tolerance_field(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    hosted = engine(settings, fake, replicate_model="black-forest-labs/flux-kontext-dev")
    hosted.generate(selfie, CORPORATE, [3], SIZE)
    assert "safety_tolerance" not in create_inputs(fake)[0]


def test_settings_that_cannot_work_are_refused_before_any_call(
    settings: Settings, fake: FakeReplicate
) -> None:
    with pytest.raises(ConfigurationError, match="REPLICATE_API_TOKEN"):
        get_engine(settings, "replicate")
    with pytest.raises(ConfigurationError, match="Choose one of"):
        engine(settings, fake, replicate_model="someone/else")
    with pytest.raises(ConfigurationError, match="64-character"):
        engine(settings, fake, replicate_model_version="latest")
    assert fake.requests == []


# --- provider failures ------------------------------------------------------


def test_a_refused_token_is_a_configuration_error_at_readiness_and_for_the_order(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.token = "r8_another_token"
    hosted = engine(settings, fake)

    with pytest.raises(ConfigurationError, match="refused the API token") as refused:
        hosted.check_ready()
    assert TOKEN not in refused.value.detail
    outcomes = hosted.generate(selfie, CORPORATE, [1, 2], SIZE)
    assert all(isinstance(o, Failed) and o.code == "configuration" for o in outcomes)
    assert all("REPLICATE_API_TOKEN" in o.reason for o in outcomes if isinstance(o, Failed))


def test_forbidden_is_a_configuration_error_too(settings: Settings, fake: FakeReplicate) -> None:
    fake.fail_next("account", 403)
    with pytest.raises(ConfigurationError, match="HTTP 403"):
        engine(settings, fake).check_ready()


def test_a_good_token_passes_the_readiness_check(settings: Settings, fake: FakeReplicate) -> None:
    engine(settings, fake).check_ready()
    assert len(fake.calls("GET", r"^/v1/account$")) == 1


def test_invalid_input_fails_that_variation_with_the_providers_reason(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.fail_next("create", 422)
    outcomes = engine(settings, fake, replicate_concurrency=1).generate(
        selfie, CORPORATE, [1, 2], SIZE
    )

    failed = [o for o in outcomes if isinstance(o, Failed)]
    assert len(failed) == 1 and sum(isinstance(o, Rendered) for o in outcomes) == 1
    assert failed[0].code == "invalid_input"
    assert "aspect_ratio must be one of" in failed[0].reason
    # A new seed would not fix an invalid request: no re-roll.
    assert len(fake.creates()) == 2


def test_throttling_waits_for_retry_after_then_goes_on(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.fail_next("create", 429, Retry_After="1")
    (outcome,) = engine(settings, fake).generate(selfie, CORPORATE, [1], SIZE)

    assert isinstance(outcome, Rendered)
    throttled, accepted = fake.creates()
    assert accepted.at - throttled.at >= 1.0


def test_server_errors_on_polls_are_retried_a_bounded_number_of_times(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    # Still running at the first poll, however slowly this machine renders.
    fake.honour_wait = False
    fake.delay = 3.0
    fake.fail_next("get", 502, times=2)
    (outcome,) = engine(settings, fake).generate(selfie, CORPORATE, [1], SIZE)
    assert isinstance(outcome, Rendered)
    assert len(fake.calls("GET", r"^/v1/predictions/")) >= 3
    assert len(fake.creates()) == 1


def test_a_create_answered_504_after_the_provider_made_it_is_found_and_paid_once(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.lost_answers = [504]
    (outcome,) = engine(settings, fake).generate(selfie, CORPORATE, [1], SIZE)

    assert isinstance(outcome, Rendered)
    # Never sent again: the one prediction was found in the account's list.
    assert len(fake.creates()) == 1
    assert len(fake.calls("GET", r"^/v1/predictions$")) == 1
    assert fake.paid() == 1
    assert outcome.details["prediction_id"] in fake.predictions


def test_lost_answers_for_one_input_each_adopt_a_prediction_of_their_own(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    # A model without a seed sends the same input four times; two answers are lost.
    fake.lost_answers = [502, 504]
    hosted = engine(settings, fake, replicate_model="google/nano-banana")
    outcomes = hosted.generate(selfie, CORPORATE, [1, 2, 3, 4], SIZE)

    assert [type(o) for o in outcomes] == [Rendered] * 4
    assert len(fake.creates()) == 4 and fake.paid() == 4
    assert len({o.details["prediction_id"] for o in outcomes}) == 4


def test_a_lost_answer_that_takes_a_prediction_still_on_its_way_gives_its_own_back(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    # The two lost answers are looked for only once the two other creates
    # are at the provider and still waiting for their images: the newest
    # predictions of that input, which the lookups take, are theirs.
    fake.lost_answers = [502, 504]
    hosted = engine(settings, fake, replicate_model="google/nano-banana")
    look_for_lost = hosted._find_created

    async def once_all_are_made(api: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        while len(fake.creates()) < 4:
            await asyncio.sleep(0.01)
        return await look_for_lost(api, fields)

    hosted._find_created = once_all_are_made  # type: ignore[method-assign]
    outcomes = hosted.generate(selfie, CORPORATE, [1, 2, 3, 4], SIZE)

    assert [type(o) for o in outcomes] == [Rendered] * 4
    # Four images from four predictions: none shown twice, none paid and unused.
    assert len({o.details["prediction_id"] for o in outcomes}) == 4
    assert len(fake.creates()) == 4 and fake.paid() == 4


def test_a_create_whose_prediction_cannot_be_found_is_given_up_not_sent_again(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    # A 500 before anything was made: nothing to find, and nothing resent.
    fake.fail_next("create", 500, times=3)
    (outcome,) = engine(settings, fake).generate(selfie, CORPORATE, [1], SIZE)

    assert isinstance(outcome, Failed) and outcome.code == "provider_answer_lost"
    assert "never paid for twice" in outcome.reason
    assert not outcome.retryable
    assert len(fake.creates()) == 1
    assert fake.paid() == 0


def test_the_clients_own_retrier_does_not_multiply_ours(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    # Polling GETs answered 503: the client alone would try each one 10 times.
    fake.honour_wait = False
    # Long enough that the prediction is still running at the first poll,
    # however slowly this machine renders the fake output.
    fake.delay = 5.0
    fake.fail_next("get", 503, times=50)
    (outcome,) = engine(settings, fake).generate(selfie, CORPORATE, [1], SIZE)

    assert isinstance(outcome, Failed) and outcome.code == "provider_unreachable"
    assert len(fake.calls("GET", r"^/v1/predictions/")) == FAST.retry.attempts
    # The prediction we stopped waiting for is not left running at our cost.
    assert len(fake.calls("POST", r"/cancel$")) == 1


def test_an_unreachable_provider_fails_the_variation_not_the_process(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.stop()
    (outcome,) = engine(settings, fake).generate(selfie, CORPORATE, [1], SIZE)
    assert isinstance(outcome, Failed) and outcome.code == "provider_unreachable"
    assert outcome.retryable


def test_a_refused_render_is_rerolled_once_with_a_new_seed(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.outcomes = ["fail"]
    (outcome,) = engine(settings, fake).generate(selfie, CORPORATE, [7], SIZE)

    assert isinstance(outcome, Rendered)
    seeds = [i["seed"] for i in create_inputs(fake)]
    assert seeds[0] == 7 and seeds[1] != 7
    assert outcome.seed == seeds[1]
    assert outcome.details["requested_seed"] == 7
    assert len(outcome.details["prediction_ids"]) == 2


def test_a_render_refused_twice_fails_with_a_sentence_a_person_understands(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.outcomes = ["fail", "fail"]
    (outcome,) = engine(settings, fake).generate(selfie, CORPORATE, [7], SIZE)

    assert isinstance(outcome, Failed)
    assert outcome.code == "safety_filter"
    assert outcome.reason == "The provider's safety filter refused this image."
    assert len(fake.creates()) == 2  # HEADSHOTS_REPLICATE_REROLLS=1


def test_a_slow_prediction_is_cancelled_through_the_api(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.outcomes = ["slow"]
    hosted = engine(settings, fake, replicate_timeout_seconds=1.0)
    (outcome,) = hosted.generate(selfie, CORPORATE, [1], SIZE)

    assert isinstance(outcome, Failed) and outcome.code == "timeout"
    assert "longer than 1 second " in outcome.reason
    (cancel,) = fake.calls("POST", r"/cancel$")
    assert cancel.path == f"/v1/predictions/{outcome.details['prediction_id']}/cancel"
    assert fake.predictions[outcome.details["prediction_id"]].canceled


def test_junk_output_is_never_handed_back_as_an_image(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.outcomes = ["junk"]
    (outcome,) = engine(settings, fake, replicate_rerolls=0).generate(selfie, CORPORATE, [1], SIZE)
    assert isinstance(outcome, Failed) and outcome.code == "bad_output"


def test_the_order_completes_with_what_worked_and_says_why_the_rest_failed(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    # The four creates reach the provider in any order; which seed meets
    # which ending does not matter, only that each is told apart.
    fake.outcomes = ["ok", "crash", "ok", "slow"]
    hosted = engine(settings, fake, replicate_rerolls=0, replicate_timeout_seconds=1.0)
    outcomes = hosted.generate(selfie, CORPORATE, [1, 2, 3, 4], SIZE)

    assert [o.seed for o in outcomes] == [1, 2, 3, 4]
    assert sum(isinstance(o, Rendered) for o in outcomes) == 2
    crashed, slow = sorted(
        (o for o in outcomes if isinstance(o, Failed)), key=lambda o: o.code != "prediction_failed"
    )
    assert crashed.code == "prediction_failed"
    assert "could not make this variation" in crashed.reason
    assert slow.code == "timeout"


def test_no_token_image_or_link_reaches_the_logs(
    settings: Settings,
    fake: FakeReplicate,
    selfie: PreparedSelfie,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.outcomes = ["fail", "ok", "slow"]
    caplog.set_level(logging.DEBUG)
    hosted = engine(settings, fake, replicate_timeout_seconds=1.0)
    outcomes = hosted.generate(selfie, CORPORATE, [1, 2], SIZE)

    text = "\n".join(r.getMessage() for r in caplog.records) + repr(hosted)
    text += repr([o.details for o in outcomes]) + repr([getattr(o, "reason", "") for o in outcomes])
    assert "replicate prediction" in text
    assert TOKEN not in text
    assert "base64" not in text
    assert "/files/" not in text
    assert CORPORATE.prompt[:40] not in text


# --- webhooks ---------------------------------------------------------------


def test_with_a_public_url_predictions_carry_a_webhook_that_wakes_the_wait(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.honour_wait = False
    # Still running when the create answers, however slowly this machine
    # renders the fake output: only a webhook can end the wait early.
    fake.delay = 2.0
    app = FastAPI()
    app.include_router(
        build_replicate_webhook_router(
            settings.model_copy(update={"replicate_webhook_secret": SecretStr(WEBHOOK_SECRET)})
        )
    )
    delivered: list[int] = []
    with TestClient(app) as web:

        def sink(url: str, headers: dict[str, str], body: bytes) -> None:
            response = web.post(
                url.removeprefix("https://headshots.example"), headers=headers, content=body
            )
            delivered.append(response.status_code)

        fake.webhook_sink = sink
        hosted = engine(settings, fake, public_url="https://headshots.example")
        outcomes = hosted.generate(selfie, CORPORATE, [1, 2], SIZE)

    assert [type(o) for o in outcomes] == [Rendered, Rendered]
    for create in fake.creates():
        assert create.body["webhook"] == "https://headshots.example/api/webhooks/replicate"
        assert create.body["webhook_events_filter"] == ["completed"]
    assert delivered == [200, 200]
    # The fallback poll is 30 s away: only the webhooks can have ended the wait.
    assert fake.calls("GET", r"^/v1/predictions/") == []


# --- every model in the table ------------------------------------------------


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_is_driven_end_to_end_with_an_input_its_schema_accepts(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie, model: str
) -> None:
    spec = MODELS[model]
    hosted = engine(settings, fake, replicate_model=model, replicate_rerolls=0)
    outcomes = hosted.generate(selfie, CORPORATE, [11, 22], SIZE)

    # The fake refuses (422) whatever its schema snapshot would: none was refused.
    assert [type(o) for o in outcomes] == [Rendered, Rendered], outcomes
    assert all(o.image.size == SIZE for o in outcomes if isinstance(o, Rendered))
    sent = create_inputs(fake)[0]
    image = sent[spec.image_field]
    assert isinstance(image, list) == spec.image_list
    assert (image[0] if isinstance(image, list) else image).startswith("data:image/jpeg;base64,")
    assert ("seed" in sent) == spec.seeded
    # Outputs come as the model answers them: one link or a list of links.
    answered = fake.predictions[outcomes[0].details["prediction_id"]].output
    shape = schema(model)["output"]["type"]  # type: ignore[index]
    assert isinstance(answered, list) == (shape == "array")
    assert all(o.details["cost_usd"] > 0 for o in outcomes)


def test_the_schema_snapshots_cover_every_model_in_the_table() -> None:
    assert snapshot_models() == sorted(MODELS)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"guidance_scale": 3}, "- input: Additional property guidance_scale is not allowed"),
        ({"seed": "7"}, "- input.seed: Invalid type. Expected: integer, given: string"),
        ({"aspect_ratio": "7:5"}, "- input.aspect_ratio: aspect_ratio must be one of"),
        ({"safety_tolerance": 9}, "- input.safety_tolerance: Must be less than or equal to 6"),
    ],
)
def test_the_fake_refuses_what_the_provider_would_with_its_422(
    fake: FakeReplicate, change: dict[str, Any], expected: str
) -> None:
    body = {"input": {"prompt": "a headshot", "input_image": "data:,", "seed": 1, **change}}
    answer = httpx.post(
        f"{fake.url}/v1/models/black-forest-labs/flux-kontext-pro/predictions",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["title"] == "Input validation failed" and problem["status"] == 422
    assert expected in problem["detail"]
    assert problem["invalid_fields"][0]["field"] in problem["detail"]
    assert fake.predictions == {}


@pytest.mark.parametrize("model", sorted(m for m, spec in MODELS.items() if not spec.seeded))
def test_a_model_without_a_seed_still_makes_four_different_variations_and_claims_no_seed(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie, model: str
) -> None:
    hosted = engine(settings, fake, replicate_model=model)
    outcomes = hosted.generate(selfie, CORPORATE, [1, 2, 3, 4], SIZE)

    rendered = [o for o in outcomes if isinstance(o, Rendered)]
    assert len(rendered) == 4 and len(fake.creates()) == 4
    assert len({o.image.tobytes() for o in rendered}) == 4
    assert all(o.details["seed"] is None for o in rendered)
    assert all(o.details["reproducible"] is False for o in rendered)


def test_a_price_per_megapixel_is_paid_on_the_image_as_made_and_rerolls_add_up(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    fake.outcomes = ["junk"]
    hosted = engine(settings, fake, replicate_model="black-forest-labs/flux-2-pro")
    (outcome,) = hosted.generate(selfie, CORPORATE, [1], SIZE)

    assert isinstance(outcome, Rendered)
    # 880 x 1104 made, the selfie sent at under 1.5 MP (2 started megapixels):
    # $0.015 a run + $0.015 a megapixel out + $0.015 a started megapixel in.
    made = 0.015 + 0.015 * 880 * 1104 / 1_000_000 + 0.015 * 2
    junk = 0.015 + 0.015 * 1024 * 1024 / 1_000_000 + 0.015 * 2
    assert outcome.details["cost_usd"] == pytest.approx(made + junk, abs=1e-6)
    assert len(outcome.details["prediction_ids"]) == 2


def test_the_format_asked_for_is_a_quality_95_jpeg_where_the_model_takes_a_quality(
    settings: Settings, fake: FakeReplicate, selfie: PreparedSelfie
) -> None:
    engine(settings, fake, replicate_model="qwen/qwen-image-edit-plus").generate(
        selfie, CORPORATE, [1], SIZE
    )
    engine(settings, fake).generate(selfie, CORPORATE, [1], SIZE)
    qwen, kontext = create_inputs(fake)
    assert (qwen["output_format"], qwen["output_quality"]) == ("jpg", 95)
    # Kontext [pro]'s JPEG quality cannot be set: PNG keeps the image.
    assert kontext["output_format"] == "png" and "output_quality" not in kontext
