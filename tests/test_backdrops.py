from __future__ import annotations

import pytest

from headshots.backdrops import NAMED, Backdrop, nearest_name, parse_backdrop, with_backdrop
from headshots.styles import STYLES, get_style


@pytest.mark.parametrize("text", [None, "", "style", "  Style "])
def test_no_choice_means_each_style_keeps_its_own(text: str | None) -> None:
    assert parse_backdrop(text) is None
    assert with_backdrop(get_style("corporate"), None) is get_style("corporate")


@pytest.mark.parametrize(
    ("text", "name", "rgb"),
    [
        ("navy", "navy", NAMED["navy"]),
        ("Light Grey", "light-grey", NAMED["light-grey"]),
        ("mid-gray", "mid-grey", NAMED["mid-grey"]),
        ("#1f2a44", "#1F2A44", (0x1F, 0x2A, 0x44)),
    ],
)
def test_named_colours_and_brand_colours_are_read(
    text: str, name: str, rgb: tuple[int, int, int]
) -> None:
    assert parse_backdrop(text) == Backdrop(name, rgb)


@pytest.mark.parametrize("text", ["purple", "#12345", "#GGGGGG", "1F2A44", "rgb(1,2,3)", "x" * 500])
def test_anything_else_is_refused_with_a_sentence_naming_the_choices(text: str) -> None:
    with pytest.raises(ValueError, match=r"choose one of white, light-grey.*#RRGGBB") as refused:
        parse_backdrop(text)
    assert len(str(refused.value)) < 220  # a long value is not echoed whole


@pytest.mark.parametrize("style", STYLES, ids=lambda style: style.id)
def test_a_chosen_backdrop_reaches_the_look_and_every_text(style) -> None:
    navy = parse_backdrop("navy")
    changed = with_backdrop(style, navy)
    assert changed.look.background == changed.look.background_accent == NAMED["navy"]
    assert changed.look.backdrop == "solid" and changed.look.exact_backdrop
    assert "navy blue (#1F2A44)" in changed.prompt
    assert changed.studio.startswith("A plain navy blue studio backdrop, ")
    assert style.light in changed.studio
    assert "navy blue" in changed.scene
    # The light and colour of the style are kept.
    assert changed.look.key == style.look.key and changed.look.warmth == style.look.warmth


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("white", "white"),
        ("cream", "white"),
        ("light-grey", "gray"),
        ("mid-grey", "gray"),
        ("charcoal", "black"),
        ("navy", "black"),
        ("#C8B89A", "neutral"),
    ],
)
def test_a_model_that_knows_a_few_names_gets_the_nearest(text: str, name: str) -> None:
    backdrop = parse_backdrop(text)
    assert backdrop is not None
    assert nearest_name(backdrop) == name
