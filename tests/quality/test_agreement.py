"""Agreement on a hand-made set of rankings, with every value worked out by hand in the comments."""

import krippendorff
import numpy as np
import pytest

from labeling.quality.agreement import kendall_tau, pair_agreement, tier_map
from labeling.quality.dashboard import team_report
from labeling.quality.selectors import ranking_rows
from labeling.vocab import Category

from .helpers import labelers, rank, task_in

pytestmark = pytest.mark.django_db


def test_pairs_that_either_labeler_ties_are_left_out():
    one = tier_map([[1], [2], [3], [4]])
    assert pair_agreement(one, tier_map([[2], [1], [3], [4]])) == (5, 6)  # only a/b swapped
    assert pair_agreement(one, tier_map([[1, 2], [3], [4]])) == (5, 5)  # a=b tied: that pair is not compared
    assert pair_agreement(one, tier_map([[4], [3], [2], [1]])) == (0, 6)
    assert pair_agreement(one, tier_map([[1, 2, 3, 4]])) == (0, 0)


def test_kendall_tau_b_by_hand():
    one = tier_map([[1], [2], [3], [4]])
    assert kendall_tau(one, tier_map([[2], [1], [3], [4]])) == pytest.approx(4 / 6)  # (5 - 1) / 6
    # one tie in the second ranking: 5 / sqrt(6 * 5)
    assert kendall_tau(one, tier_map([[1, 2], [3], [4]])) == pytest.approx(5 / np.sqrt(30))
    assert kendall_tau(one, tier_map([[1, 2, 3, 4]])) is None


@pytest.fixture
def hand_made():
    """Task 1 (generation, a b c d):  L1 'a b c d', L2 'b a c d', L3 'ab c d'
    Task 2 (open QA, p q r):         L1 'p q r',   L2 'r q p'
    L1-L2 on task 1: 5 of 6 pairs agree; L1-L3 and L2-L3: 5 of 5 (a/b tied by L3); task 1: 15/16.
    L1-L2 on task 2: 0 of 3.  Overall 15/19.  L1 and L2: (5+5+0)/(6+5+3) = 10/14; L3: 10/10."""
    l1, l2, l3 = labelers(3)
    t1 = task_in(k=4, category=Category.GENERATION)
    t2 = task_in(k=3, category=Category.OPEN_QA)
    rank(t1, l1, "a b c d")
    rank(t1, l2, "b a c d")
    rank(t1, l3, "ab c d")
    rank(t2, l1, "a b c")
    rank(t2, l2, "c b a")
    return {"labelers": (l1, l2, l3), "tasks": (t1, t2)}


def test_pairwise_agreement_overall_by_labeler_batch_and_category(hand_made):
    (l1, l2, l3), (t1, t2) = hand_made["labelers"], hand_made["tasks"]
    report = team_report().rankings
    assert report.overall.value == pytest.approx(15 / 19)
    assert (report.overall.numerator, report.overall.denominator, report.overall.tasks) == (15, 19, 2)
    assert report.by_labeler[l1.pk].value == pytest.approx(10 / 14)
    assert report.by_labeler[l2.pk].value == pytest.approx(10 / 14)
    assert report.by_labeler[l3.pk].value == 1.0
    assert report.by_batch[t1.batch_id].value == pytest.approx(15 / 16)
    assert report.by_batch[t2.batch_id].value == 0.0
    assert report.by_category["generation"].value == pytest.approx(15 / 16)
    assert report.by_category["open_qa"].value == 0.0
    # the bootstrap over the two tasks can only draw task 1 twice (15/16), task 2 twice (0) or both (15/19)
    assert report.overall.low == 0.0 and report.overall.high == pytest.approx(15 / 16)


def test_mean_kendall_tau_by_hand(hand_made):
    # task 1: 4/6, 5/sqrt(30), 5/sqrt(30); task 2: -1
    expected = (4 / 6 + 2 * 5 / np.sqrt(30) - 1) / 4
    assert team_report().rankings.kendall_tau.value == pytest.approx(expected)


def test_krippendorff_alpha_uses_mid_ranks_per_task_and_completion(hand_made):
    # units: task 1 a b c d, task 2 p q r; coders L1 L2 L3; values: mid-ranks within the task
    nan = np.nan
    data = np.array(
        [
            [1, 2, 3, 4, 1, 2, 3],
            [2, 1, 3, 4, 3, 2, 1],
            [1.5, 1.5, 3, 4, nan, nan, nan],
        ]
    )
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    assert team_report().rankings.alpha_ordinal == pytest.approx(expected)


def test_a_task_ranked_once_has_no_agreement():
    [one] = labelers(1)
    rank(task_in(), one, "a b c d")
    report = team_report().rankings
    assert report.overall.value is None and report.by_labeler == {} and report.alpha_ordinal is None


def test_perfect_agreement_gives_one_everywhere():
    l1, l2 = labelers(2)
    for _ in range(3):
        task = task_in()
        rank(task, l1, "a b cd")
        rank(task, l2, "a b cd")
    report = team_report().rankings
    assert report.overall.value == report.overall.low == report.overall.high == 1.0
    assert report.kendall_tau.value == pytest.approx(1.0)
    assert report.alpha_ordinal == pytest.approx(1.0)


def test_rows_can_be_limited_to_batches(hand_made):
    t1 = hand_made["tasks"][0]
    assert {r.task_id for r in ranking_rows(batches=[t1.batch])} == {t1.pk}
