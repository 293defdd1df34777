"""A verifier's threshold from scores: a target escalation rate, or a target quality."""

from __future__ import annotations

import pytest

from orkestra import ConfigurationError
from orkestra.verifiers import (
    Answer,
    Request,
    calibrate_threshold,
    escalation_share,
    function,
    heuristic,
)

SCORES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3, 0.5, 0.9])
def test_a_premium_share_is_hit_exactly_when_scores_are_distinct(share: float) -> None:
    threshold = calibrate_threshold(SCORES, premium_share=share)
    assert escalation_share(SCORES, threshold) == pytest.approx(share)


def test_everything_can_escalate_but_a_perfect_score() -> None:
    assert escalation_share(SCORES, calibrate_threshold(SCORES, premium_share=1.0)) == 0.9
    below_one = [0.2, 0.4]
    assert escalation_share(below_one, calibrate_threshold(below_one, premium_share=1.0)) == 1


def test_thresholds_fall_midway_between_scores() -> None:
    # So that a new answer scoring a hair below a calibration answer is judged like it.
    threshold = calibrate_threshold([0.1, 0.9, 0.9], premium_share=0.3)
    assert threshold == pytest.approx(0.5)
    assert escalation_share([0.8999, 0.1001], threshold) == 0.5


def test_equal_scores_escalate_together() -> None:
    scores = [0.2, 0.5, 0.5, 0.5, 0.9]
    threshold = calibrate_threshold(scores, premium_share=0.4)
    # 0.2 alone is 20%, with the three 0.5s 80%: 20% is closer to 40%.
    assert escalation_share(scores, threshold) == pytest.approx(0.2)


def test_a_quality_target_takes_the_fewest_escalations() -> None:
    scores = [0.1, 0.2, 0.6, 0.7, 0.9, 0.95]
    correct = [0, 0, 1, 0, 1, 1]  # the cheap answers' grades
    # Always escalating (premium right everywhere) is 1.0; 5/6 needs one wrong answer kept.
    threshold = calibrate_threshold(scores, quality=5 / 6, correct=correct)
    assert threshold == pytest.approx(0.4)  # escalate 0.1 and 0.2; the wrong 0.7 stays
    assert escalation_share(scores, threshold) == pytest.approx(2 / 6)
    # Relative to a premium model that is itself wrong on the last prompt (mean 5/6): the
    # cascade can beat it, keeping the cheap answer where premium fails.
    premium = [1, 1, 1, 1, 1, 0]
    threshold = calibrate_threshold(scores, quality=1.0, correct=correct, premium_correct=premium)
    assert escalation_share(scores, threshold) == pytest.approx(2 / 6)
    threshold = calibrate_threshold(scores, quality=1.2, correct=correct, premium_correct=premium)
    assert escalation_share(scores, threshold) == pytest.approx(4 / 6)  # all six right


def test_an_unreachable_quality_escalates_everything() -> None:
    threshold = calibrate_threshold([0.3, 0.6], quality=1.0, correct=[0, 0], premium_correct=[0, 1])
    assert escalation_share([0.3, 0.6], threshold) == 1.0


def test_bad_calibration_input_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="one target"):
        calibrate_threshold(SCORES)
    with pytest.raises(ConfigurationError, match="one target"):
        calibrate_threshold(SCORES, premium_share=0.2, quality=0.9, correct=[1] * 10)
    with pytest.raises(ConfigurationError, match="premium_share"):
        calibrate_threshold(SCORES, premium_share=1.5)
    with pytest.raises(ConfigurationError, match="correct"):
        calibrate_threshold(SCORES, quality=0.9)
    with pytest.raises(ConfigurationError, match="one value per score"):
        calibrate_threshold(SCORES, quality=0.9, correct=[1, 0])
    with pytest.raises(ConfigurationError, match="at least one"):
        calibrate_threshold([], premium_share=0.2)
    with pytest.raises(ConfigurationError, match=r"\[0, 1\]"):
        calibrate_threshold([0.5, 1.5], premium_share=0.2)


def test_a_verifier_calibrates_on_its_own_verdicts() -> None:
    by_length = function(lambda request, answer: min(1.0, len(answer.text) / 10))
    samples = [(Request.of("Say something"), Answer("x" * n)) for n in range(1, 11)]
    threshold = by_length.calibrate(samples, premium_share=0.3)
    assert by_length.threshold == threshold
    verdicts = [by_length.verify(r, a) for r, a in samples]
    assert sum(not v.passed for v in verdicts) == 3


def test_the_heuristic_verifier_calibrates_to_a_quality_target() -> None:
    prompt = "Tom has 12 apples and buys 3 more. How many apples does he have?"
    samples = [
        (Request.of(prompt), Answer("12 + 3 = 15\n#### 15")),
        (Request.of(prompt), Answer("12 + 3 = 16\n#### 16")),
        (Request.of(prompt), Answer("He has some apples")),
        (Request.of(prompt), Answer("12 + 3 = 15 apples.\nSo he has 15 apples.")),
    ]
    verifier = heuristic()
    verifier.calibrate(samples, quality=1.0, correct=[1, 0, 0, 1])
    assert [verifier.verify(r, a).passed for r, a in samples] == [True, False, False, True]
