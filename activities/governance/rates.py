"""The three rates (三率): one definition for rankings, the monthly report and the demo.

DESIGN.md "Callback and evaluation", over a unit's *counted* cases:
response = responded / counted; resolution = resolved / counted; satisfaction =
(satisfied + basically satisfied) / counted cases whose citizen was reached. A citizen
never reached is neither satisfied nor unsatisfied: the ledger's evaluation then has no
``satisfaction``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The five counts, as SQL over ``evaluations`` (in this order; see ThreeRates).
RATE_COUNTS_SQL = """count(*) FILTER (WHERE counted),
       count(*) FILTER (WHERE counted AND responded),
       count(*) FILTER (WHERE counted AND resolved),
       count(*) FILTER (WHERE counted AND satisfaction IS NOT NULL),
       count(*) FILTER (WHERE counted AND satisfied AND satisfaction IS NOT NULL)"""


@dataclass(frozen=True)
class ThreeRates:
    """Counts of counted cases, and the three rates and score they give."""

    counted: int
    responded: int
    resolved: int
    reached: int
    satisfied: int

    @property
    def response(self) -> float:
        return self.responded / self.counted if self.counted else 0.0

    @property
    def resolution(self) -> float:
        return self.resolved / self.counted if self.counted else 0.0

    @property
    def satisfaction(self) -> float:
        return self.satisfied / self.reached if self.reached else 0.0

    def score(self, weights: Mapping[str, float]) -> float:
        """100 × the weighted rates (rules.yaml ``weights``)."""
        return 100.0 * (weights.get("response", 0.0) * self.response
                        + weights.get("resolution", 0.0) * self.resolution
                        + weights.get("satisfaction", 0.0) * self.satisfaction)
