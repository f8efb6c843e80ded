"""`headshots check` and `headshots compare`, and identity in `generate`'s report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from headshots.cli import app
from headshots.config import Settings
from tests.test_render import StrangerEngine

FIXTURES = Path(__file__).parent / "fixtures"
runner = CliRunner()


def test_check_passes_a_good_selfie(settings: Settings) -> None:
    result = runner.invoke(app, ["check", str(FIXTURES / "obama.jpg")])
    assert result.exit_code == 0, result.output
    assert "can be used" in result.output


def test_check_refuses_a_group_photo_with_one_line_per_finding(settings: Settings) -> None:
    result = runner.invoke(app, ["check", str(FIXTURES / "group_of_five.jpg")])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error several_faces: More than one person")


def test_check_json_lists_findings_with_values_and_limits(settings: Settings) -> None:
    result = runner.invoke(app, ["check", "--json", str(FIXTURES / "astronaut.png")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    [finding] = report["findings"]
    assert finding["code"] == "low_resolution" and finding["severity"] == "warning"
    assert finding["value"] < finding["limit"] and finding["message"].endswith(".")


def test_check_judges_a_tight_crop_for_the_engine_asked(settings: Settings) -> None:
    photo = str(FIXTURES / "obama_partial_face.jpg")  # the edge runs through the cheek
    studio = runner.invoke(app, ["check", "--json", "--engine", "studio", photo])
    assert studio.exit_code == 1
    [finding] = json.loads(studio.output)["findings"]
    assert finding["code"] == "tight_crop" and finding["severity"] == "error"
    assert "studio engine cannot add" in finding["message"]
    generative = runner.invoke(app, ["check", "--json", "--engine", "replicate", photo])
    assert generative.exit_code == 0, generative.output
    [finding] = json.loads(generative.output)["findings"]
    assert finding["code"] == "tight_crop" and finding["severity"] == "warning"


def test_check_refuses_a_face_missing_its_chin_with_exit_code_1(
    settings: Settings, tmp_path: Path
) -> None:
    from tests.selfie_set import chin_cut

    photo = tmp_path / "chin.png"
    chin_cut("obama.jpg").save(photo)
    result = runner.invoke(app, ["check", "--json", "--engine", "replicate", str(photo)])
    assert result.exit_code == 1
    assert [f["code"] for f in json.loads(result.output)["findings"]] == ["face_cut_off"]


def test_check_reports_an_unreadable_file(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1 and "not a photo we can read" in result.output


def test_compare_tells_same_person_from_different_people(settings: Settings) -> None:
    same = runner.invoke(
        app, ["compare", str(FIXTURES / "obama.jpg"), str(FIXTURES / "obama3.jpg")]
    )
    assert same.exit_code == 0 and "same person" in same.output
    other = runner.invoke(
        app, ["compare", "--json", str(FIXTURES / "obama.jpg"), str(FIXTURES / "biden.jpg")]
    )
    verdict = json.loads(other.output)
    assert verdict["same_person"] is False and verdict["distance"] > verdict["threshold"] == 0.6


def test_compare_names_the_photo_without_a_face(settings: Settings) -> None:
    result = runner.invoke(
        app, ["compare", str(FIXTURES / "obama.jpg"), str(FIXTURES / "no_face_street.jpg")]
    )
    assert result.exit_code == 1
    assert "no_face_street.jpg: We could not find a face" in result.output


def test_generate_reports_the_identity_of_each_variation(
    settings: Settings, tmp_path: Path
) -> None:
    assert StrangerEngine.name == "stranger"  # registered on import
    out = tmp_path / "out"
    args = ["generate", str(FIXTURES / "obama.jpg"), "-s", "minimal", "--engine", "stranger"]
    result = runner.invoke(app, [*args, "--variations", "2", "--seed", "6", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    first, second = report["variations"]
    assert first["identity"]["passed"] is True and first["identity"]["flag"] is None
    # Seed 7 gave a stranger and was re-rolled with a seed that brought the person back.
    assert [t["flag"] for t in second["details"]["identity_tries"]] == ["different_person", None]
    assert second["seed"] != 7 and second["identity"]["distance"] < 0.6


def test_check_tells_each_thing_an_outside_tester_found_in_one_photo(
    settings: Settings, tmp_path: Path
) -> None:
    # decision 0008: a microphone in front of the chin, the mouth open mid-word,
    # the eyes looking aside and part of a second person at the edge were
    # passed as "All checks passed... well framed".
    from tests.selfie_set import head_and_shoulders, microphone_on, neighbour_on

    photo = tmp_path / "tester.png"
    neighbour_on(microphone_on(head_and_shoulders("obama2.jpg", 640)), "shards_avatar-1.jpg").save(
        photo
    )
    studio = runner.invoke(app, ["check", "--engine", "studio", str(photo)])
    assert studio.exit_code == 1
    lines = [line for line in studio.output.splitlines() if line.strip()]
    assert any(line.startswith("error face_covered: Something covers your mouth") for line in lines)
    for code in ("mouth_open", "eyes_off_camera", "other_person"):
        assert any(line.startswith(f"warning {code}: ") for line in lines), code
    generative = runner.invoke(app, ["check", "--json", "--engine", "replicate", str(photo)])
    assert generative.exit_code == 0, generative.output
    found = {f["code"]: f["severity"] for f in json.loads(generative.output)["findings"]}
    assert found == dict.fromkeys(
        ("mouth_open", "eyes_off_camera", "face_covered", "other_person"), "warning"
    )
