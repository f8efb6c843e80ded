"""The identity gate's decision on a checked try: keep, re-roll or give up."""

from __future__ import annotations

import pytest

from headshots.imaging.identity import IdentityScore
from headshots.reroll import REROLL_STRIDE, Attempts, Decision, Step, decide, reroll_seed

THRESHOLD = 0.6


def face(distance: float | None, flag: str | None = None) -> IdentityScore:
    """A score as the check gives it: passed when one face is close enough."""
    if flag is None and (distance is None or distance > THRESHOLD):
        flag = "no_face" if distance is None else "different_person"
    return IdentityScore(
        distance=distance,
        faces=0 if distance is None else (2 if flag == "several_faces" else 1),
        passed=flag is None,
        flag=flag,
        sentence=None if flag is None else "This one may not look like you.",
        threshold=THRESHOLD,
    )


PASSED = face(0.35)
DRIFTED = face(0.72)
CLOSER = face(0.65)
FARTHER = face(0.81)
NO_FACE = face(None)

# (what the check said of the try, best so far, re-rolls made, allowed) -> decision
CASES = {
    "a first try that passes is kept": (PASSED, None, 0, 1, Decision(Step.KEEP, True)),
    "a first try that drifted is re-rolled": (DRIFTED, None, 0, 1, Decision(Step.REROLL, True)),
    "a first try that drifted where seeds cannot help is given up": (
        DRIFTED,
        None,
        0,
        0,
        Decision(Step.GIVE_UP, True),
    ),
    "a first try whose check could not run is kept unscored": (
        None,
        None,
        0,
        1,
        Decision(Step.KEEP, False),
    ),
    "a re-roll that passes replaces the drifted try": (
        PASSED,
        DRIFTED,
        1,
        1,
        Decision(Step.KEEP, True),
    ),
    "a closer re-roll replaces it, and with none left is given up": (
        CLOSER,
        DRIFTED,
        1,
        1,
        Decision(Step.GIVE_UP, True),
    ),
    "a farther re-roll is dropped, and with none left the first is given up": (
        FARTHER,
        DRIFTED,
        1,
        1,
        Decision(Step.GIVE_UP, False),
    ),
    "a closer re-roll that still drifted is re-rolled while one is left": (
        CLOSER,
        DRIFTED,
        1,
        2,
        Decision(Step.REROLL, True),
    ),
    "a farther re-roll is dropped and another tried while one is left": (
        FARTHER,
        DRIFTED,
        1,
        2,
        Decision(Step.REROLL, False),
    ),
    "a re-roll that failed or went unchecked counts, and another is tried": (
        None,
        DRIFTED,
        1,
        2,
        Decision(Step.REROLL, False),
    ),
    "a re-roll that failed with none left gives up on the first": (
        None,
        DRIFTED,
        1,
        1,
        Decision(Step.GIVE_UP, False),
    ),
    "a re-roll without a face never replaces a face": (
        NO_FACE,
        FARTHER,
        1,
        1,
        Decision(Step.GIVE_UP, False),
    ),
    "any face replaces a try without one": (FARTHER, NO_FACE, 1, 1, Decision(Step.GIVE_UP, True)),
    "a pass replaces a closer flagged try": (
        face(0.55),
        face(0.3, "several_faces"),
        1,
        1,
        Decision(Step.KEEP, True),
    ),
    "an equally far re-roll does not replace the try that shows": (
        face(0.72),
        DRIFTED,
        1,
        1,
        Decision(Step.GIVE_UP, False),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_decide(case: str) -> None:
    identity, best, made, allowed, expected = CASES[case]
    attempts = Attempts(best=best, rerolls_made=made, rerolls_allowed=allowed)
    assert decide(identity, attempts) == expected


def test_a_reroll_seed_is_new_and_counted_from_the_first_seed() -> None:
    assert reroll_seed(7, 1, {7, 8, 9, 10}) == 7 + REROLL_STRIDE
    assert reroll_seed(7, 2, {7, 8}) == 7 + 2 * REROLL_STRIDE
    # A seed already used (another variation's re-roll) is stepped past.
    taken = {7, 7 + REROLL_STRIDE}
    assert reroll_seed(7, 1, taken) == 7 + REROLL_STRIDE + 1
    assert reroll_seed(2**31 - 1, 1, set()) == (2**31 - 1 + REROLL_STRIDE) % 2**31
