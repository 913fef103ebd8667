"""Learned dispatch models that read the same whatever the text: for tests of what the
rules and guards do with a given reading, whichever model the project ships."""
from __future__ import annotations

import math

from activities.dispatch.learned import CLASSES, TierModel


def reading(**probs: float) -> TierModel:
    """A model over every outcome (format /2) giving each class named its probability and
    the rest an even share of what is left, whatever the text."""
    rest = (1.0 - sum(probs.values())) / (len(CLASSES) - len(probs))
    return TierModel(version="fixed-2", classes=CLASSES,
                     intercepts=tuple(math.log(probs.get(c, rest)) for c in CLASSES),
                     features={"\x00": (1.0, *[0.0] * len(CLASSES))}, threshold=0.9,
                     redirect_threshold=0.5, no_dispatch_threshold=0.4)
