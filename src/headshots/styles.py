"""The six style presets, as data.

Each preset carries two renderings of one idea: the prompt a generative
engine (FLUX.1 Kontext) receives, and the :class:`StudioLook` the offline
studio engine applies to the real photo. Prompts name wardrobe, light,
backdrop and framing, and always end with the same instruction to keep the
person's face, because Kontext edits what it is told to and keeps the rest.

What a person reads about a style depends on the engine, so each preset
has three short texts and ``engines.base.describe_style`` composes them
from what the engine declares: the studio engine keeps the person's own
clothes and applies its look (``studio``: backdrop, light, colour); a
generative engine paints the prompt's ``scene`` and dresses the person in
its ``wardrobe``.
"""

from __future__ import annotations

from dataclasses import dataclass

from headshots.errors import UnknownStyleError

RGB = tuple[int, int, int]

KEEP_FACE = (
    "Keep the person's face, identity, facial features, skin tone, eye colour, "
    "hairstyle and expression exactly as they are; do not add jewellery, glasses "
    "or makeup that is not in the photo."
)


@dataclass(frozen=True)
class StudioLook:
    """What a retoucher would do for this preset, in numbers."""

    # Backdrop: "solid", "gradient" (top to bottom), "radial" (a spot of
    # light behind the head) or "blur" (the photo's own background, defocused
    # and tinted towards ``background``).
    backdrop: str
    background: RGB
    background_accent: RGB
    # Share of the frame height taken by the face box (chin to hairline-ish).
    head_share: float
    # Key light strength (0..1), fill (how much of the shadow side is lifted),
    # rim light strength and colour.
    key: float
    fill: float
    rim: float
    rim_colour: RGB
    # Colour grade: warmth (-1 cool .. 1 warm), saturation and contrast factors.
    warmth: float
    saturation: float
    contrast: float
    # A colour the person chose (headshots.backdrops): painted as asked,
    # never a shade lighter or darker from one variation to the next.
    exact_backdrop: bool = False


@dataclass(frozen=True)
class Style:
    id: str
    title: str
    # What the studio engine does to the real photo: backdrop, light, colour.
    # Never a garment: it keeps the person's own clothes.
    studio: str
    # The light and colour part of ``studio`` alone, for a backdrop the
    # person chose instead of the style's (headshots.backdrops).
    light: str
    # What a generative engine's prompt asks for besides clothes: light, backdrop.
    scene: str
    # The clothes a generative engine's prompt dresses the person in.
    wardrobe: str
    prompt: str
    look: StudioLook


# Said of every style by an engine that keeps the photo's clothes.
OWN_CLOTHES = "You keep your own clothes."


# Said only when the photo cuts the head or the shoulders off (a close-up):
# a generative engine can paint in what the frame lost.
EXTEND_CROP = (
    "The photo is cropped tightly: complete the top of the head, the hair and the "
    "shoulders naturally, so the whole head and both shoulders are in the frame."
)


def _prompt(scene: str) -> str:
    return f"{scene} {KEEP_FACE}"


def prompt_for(style: Style, *, extend_crop: bool) -> str:
    """The style's prompt, asking to complete a cropped head when the selfie needs it."""
    return f"{style.prompt} {EXTEND_CROP}" if extend_crop else style.prompt


STYLES: tuple[Style, ...] = (
    Style(
        id="corporate",
        title="Corporate",
        studio="A mid-grey studio backdrop, soft even light, natural colour.",
        light="soft even light, natural colour.",
        scene="Soft even studio light, a plain mid-grey seamless backdrop.",
        wardrobe="A tailored charcoal suit jacket over a crisp white shirt.",
        prompt=_prompt(
            "Make this a professional corporate headshot: the person wears a tailored "
            "charcoal suit jacket over a crisp white shirt, head-and-shoulders framing, "
            "soft even studio light with a gentle key from the front left, plain "
            "mid-grey seamless studio backdrop, sharp focus, natural skin texture."
        ),
        look=StudioLook(
            backdrop="gradient",
            background=(128, 132, 138),
            background_accent=(78, 82, 88),
            head_share=0.36,
            key=0.35,
            fill=0.7,
            rim=0.15,
            rim_colour=(255, 255, 255),
            warmth=0.0,
            saturation=0.92,
            contrast=1.05,
        ),
    ),
    Style(
        id="creative",
        title="Creative",
        studio=(
            "A deep teal backdrop glowing behind the head, warm "
            "directional light with a warm rim, rich colour."
        ),
        light="warm directional light with a warm rim, rich colour.",
        scene="Warm directional side light, a deep teal painted studio wall with a soft glow.",
        wardrobe="A relaxed dark crew-neck knit or an open overshirt.",
        prompt=_prompt(
            "Make this a creative-industry portrait: the person wears a relaxed dark "
            "crew-neck knit or an open overshirt, chest-up framing slightly off centre, "
            "warm directional side light with soft shadows, a deep teal painted studio "
            "wall behind them with a soft glow, editorial magazine look."
        ),
        look=StudioLook(
            backdrop="radial",
            background=(38, 110, 118),
            background_accent=(16, 46, 54),
            head_share=0.34,
            key=0.5,
            fill=0.45,
            rim=0.35,
            rim_colour=(255, 196, 140),
            warmth=0.15,
            saturation=1.02,
            contrast=1.08,
        ),
    ),
    Style(
        id="startup",
        title="Startup",
        studio=(
            "Your photo's own background, softly blurred and tinted a "
            "light sage, bright airy light, fresh colour."
        ),
        light="bright airy light, fresh colour.",
        scene=(
            "Bright airy window light, a softly blurred modern "
            "open-plan office with plants and warm wood."
        ),
        wardrobe="Smart casual: a plain t-shirt under a light jacket.",
        prompt=_prompt(
            "Make this a modern startup team photo: the person wears a smart casual "
            "plain t-shirt under a light jacket, head-and-shoulders framing, bright airy "
            "daylight from a large window, a softly blurred modern open-plan office with "
            "plants and warm wood behind them, shallow depth of field."
        ),
        look=StudioLook(
            backdrop="blur",
            background=(214, 220, 214),
            background_accent=(150, 170, 150),
            head_share=0.33,
            key=0.3,
            fill=0.8,
            rim=0.2,
            rim_colour=(255, 250, 235),
            warmth=0.15,
            saturation=1.05,
            contrast=0.98,
        ),
    ),
    Style(
        id="executive",
        title="Executive",
        studio=(
            "A deep charcoal backdrop fading to black, dramatic low-key "
            "light with a cool rim, muted high-contrast colour."
        ),
        light="dramatic low-key light with a cool rim, muted high-contrast colour.",
        scene=(
            "Dramatic low-key light with a subtle rim, a deep charcoal backdrop fading to black."
        ),
        wardrobe="A dark navy suit, a white shirt and, where it fits, a subdued tie.",
        prompt=_prompt(
            "Make this an executive portrait for a board or annual report: the person "
            "wears a dark navy suit, white shirt and, if appropriate, a subdued tie, "
            "head-and-shoulders framing, dramatic low-key studio light with a strong key "
            "from the side and a subtle rim light, deep charcoal backdrop fading to black."
        ),
        look=StudioLook(
            backdrop="radial",
            background=(62, 64, 70),
            background_accent=(14, 15, 18),
            head_share=0.38,
            key=0.6,
            fill=0.3,
            rim=0.45,
            rim_colour=(235, 240, 255),
            warmth=-0.05,
            saturation=0.94,
            contrast=1.08,
        ),
    ),
    Style(
        id="friendly",
        title="Friendly",
        studio="A warm cream backdrop, soft flattering light, warm golden colour.",
        light="soft flattering light, warm golden colour.",
        scene="Warm golden light from the front, a warm cream backdrop with a gentle gradient.",
        wardrobe="A soft sweater or an open-collar shirt in a muted colour.",
        prompt=_prompt(
            "Make this a warm, approachable profile photo: the person wears a soft "
            "sweater or an open-collar shirt in a muted colour, head-and-shoulders "
            "framing, warm flattering golden light from the front, a warm cream studio "
            "backdrop with a gentle gradient, relaxed and natural."
        ),
        look=StudioLook(
            backdrop="gradient",
            background=(236, 222, 200),
            background_accent=(206, 182, 150),
            head_share=0.34,
            key=0.3,
            fill=0.8,
            rim=0.15,
            rim_colour=(255, 226, 180),
            warmth=0.2,
            saturation=1.02,
            contrast=1.0,
        ),
    ),
    Style(
        id="minimal",
        title="Minimal",
        studio=(
            "A pure white backdrop, bright high-key light with almost no shadows, clean colour."
        ),
        light="bright high-key light with almost no shadows, clean colour.",
        scene="Bright high-key light with almost no shadows, a pure white seamless backdrop.",
        wardrobe="A plain dark crew-neck top.",
        prompt=_prompt(
            "Make this a clean minimalist headshot: the person wears a plain dark "
            "crew-neck top, centred head-and-shoulders framing, bright high-key studio "
            "light with almost no shadows, a pure white seamless backdrop."
        ),
        look=StudioLook(
            backdrop="solid",
            background=(246, 246, 246),
            background_accent=(246, 246, 246),
            head_share=0.35,
            key=0.15,
            fill=0.95,
            rim=0.0,
            rim_colour=(255, 255, 255),
            warmth=0.0,
            saturation=0.95,
            contrast=1.02,
        ),
    ),
)

_BY_ID = {style.id: style for style in STYLES}
STYLE_IDS: tuple[str, ...] = tuple(_BY_ID)


def get_style(style_id: str) -> Style:
    try:
        return _BY_ID[style_id]
    except KeyError:
        raise UnknownStyleError(
            f"There is no style called {style_id[:40]!r}. Choose from: {', '.join(STYLE_IDS)}."
        ) from None
