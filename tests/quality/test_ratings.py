"""Likert and flag agreement, by hand."""

import pytest

from labeling.quality.dashboard import team_report

from .helpers import labelers, rank, task_in

pytestmark = pytest.mark.django_db


def test_likert_and_flag_agreement_by_hand():
    l1, l2, l3 = labelers(3)
    task = task_in(k=2)
    # output a: 7, 6, 4 -> pairs |1|, |3|, |2|; output b: 2, 2, 2 -> three exact pairs
    rank(task, l1, "a b", likert={"a": 7, "b": 2}, flags={"a": {"hallucination": True}})
    rank(task, l2, "a b", likert={"a": 6, "b": 2}, flags={"a": {"hallucination": True}})
    rank(task, l3, "a b", likert={"a": 4, "b": 2}, flags={"b": {"opinion": True}})
    report = team_report()
    assert report.likert.pairs == 6
    assert report.likert.exact == pytest.approx(3 / 6)
    assert report.likert.within_one == pytest.approx(4 / 6)
    assert report.likert.mean_abs_diff == pytest.approx((1 + 3 + 2) / 6)
    flags = {f.flag: f for f in report.flags}
    # hallucination on a: yes, yes, no -> 1 of 3 pairs agree; on b: all no -> 3 of 3
    assert flags["hallucination"].agreement == pytest.approx(4 / 6)
    assert flags["hallucination"].rate == pytest.approx(2 / 6)
    assert flags["opinion"].agreement == pytest.approx(4 / 6)
    assert flags["violent"].agreement == 1.0 and flags["violent"].alpha_nominal is None
    assert flags["hallucination"].alpha_nominal is not None
