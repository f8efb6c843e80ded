"""Group photos are refused, the single people in them accepted (decision 0008).

The cases are tests/group_set.py: real group photos, crops keeping two of
their people, and pairs composed from portraits (side by side, tilted
towards each other, overlapping, mirrored, one turned away); beside them
single-person crops of the same photos. Both parts of the set, tuning and
held apart, are pinned.
"""

from __future__ import annotations

import pytest

from headshots.imaging.faces import detect_faces, sitters
from headshots.imaging.preflight import preflight
from tests.group_set import Case, cases, photo

CASES = cases()
GROUPS = [case for case in CASES if case.kind == "group"]
SINGLES = [case for case in CASES if case.kind == "single"]


@pytest.mark.parametrize("case", GROUPS, ids=[case.name for case in GROUPS])
def test_every_group_is_refused_as_several_faces(case: Case) -> None:
    image = case.build()
    for repairs_crop in (False, True):
        report = preflight(image, repairs_crop=repairs_crop)
        assert [finding.code for finding in report.errors] == ["several_faces"], report.codes


@pytest.mark.parametrize("case", SINGLES, ids=[case.name for case in SINGLES])
def test_every_single_person_from_the_same_photos_is_accepted(case: Case) -> None:
    report = preflight(case.build(), repairs_crop=False)
    assert report.ok, report.codes


def test_four_hikers_in_a_panorama_are_four_faces() -> None:
    # The photo: heads tilted towards each other, two turned 30-50
    # degrees; shrunk whole into the detector's input only one face was seen.
    people = sitters(detect_faces(photo("adminbsb_profile-post-image.jpg")))
    assert len(people) == 4


def test_the_split_is_fixed_and_both_parts_hold_groups_and_singles() -> None:
    for tuning in (True, False):
        part = [case for case in CASES if case.tuning is tuning]
        assert {case.kind for case in part} == {"group", "single"}
