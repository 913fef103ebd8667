"""The blind-set measures count what the dispatch issue defines, on a small made-up set."""

from __future__ import annotations

from activities.dispatch.blind import BlindExpected, BlindItem, Decision, score


def _item(i: int, **expect: object) -> BlindItem:
    fields = {"tier": None, **expect}
    return BlindItem(id=f"x{i}", content="…", expect=BlindExpected(**fields))  # type: ignore[arg-type]


ITEMS = [
    _item(1, tier="T2H", lead="bj-gas"),                                   # right, alone
    _item(2, tier="T2H", lead="bj-power"),                                 # T24H: T2H missed
    _item(3, tier="T7D", lead="110105026", street="110105026", street_named=True),  # wrong lead
    _item(4, tier="T7D", lead="110101001", street="110101001", street_named=True),  # at the desk
    _item(5, redirect="120"),                                              # transferred
    _item(6, redirect="110"),                                              # dispatched instead
    _item(7, no_dispatch="CONSULTATION"),                                  # at the desk: good
    _item(8, no_dispatch="OUTSIDE_BEIJING"),                               # sent to a unit: bad
    _item(9, tier="T24H", lead="UNLOCATED"),                               # no lead to judge
]
DECISIONS = {
    "x1": Decision("DISPATCH", "T2H", "bj-gas", None),
    "x2": Decision("DISPATCH", "T24H", "bj-power", None),
    "x3": Decision("DISPATCH", "T7D", "110105", "110105026"),
    "x4": Decision("REVIEW", "T7D", "110101001", None),
    "x5": Decision("REDIRECTED", None, None, None, "120"),
    "x6": Decision("DISPATCH", "T2H", "bj-police", None),
    "x7": Decision("REVIEW", "T7D", "bj-gov-services", None),
    "x8": Decision("DISPATCH", "T7D", "bj-gov-services", None),
    "x9": Decision("DISPATCH", "T24H", "110105", None),
}


def test_each_measure_counts_its_own_requests() -> None:
    report = score(ITEMS, lambda item: DECISIONS[item.id])
    got = {name: (getattr(report, name).ok, getattr(report, name).of)
           for name in report.MEASURES}
    assert got == {
        "tier": (4, 5),               # x1 x3 x4 x9 right; x2 wrong
        "t2h_recall": (1, 2),
        "lead": (2, 3),               # alone with a known lead: x1 x2 right, x3 wrong
        "street_named": (1, 2),       # x3 right (street found), x4 not located
        "redirected": (1, 2),
        "no_dispatch_sent": (1, 2),
        "without_review": (4, 5),     # x4 waited
        "right_without_review": (1, 3),  # x1 only: x2 has the wrong tier
    }
    assert report.outcomes == {"DISPATCH": 6, "REVIEW": 2, "REDIRECTED": 1}
