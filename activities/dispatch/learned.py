"""The learned dispatch model beside the rules: read its JSON file and predict what a
request needs.

``deploy/config/dispatch_model.json`` is written by ``hotline routing learn``
(:mod:`activities.dispatch.training`, scikit-learn): character n-grams (1–3) weighted by
TF-IDF and a multinomial logistic regression over the outcomes of a first look — the four
tiers, a transfer to 110/119/120 (``REDIRECT_110`` …), and the three kinds of request no
unit should get without a person's decision (``CONSULTATION``, ``OUTSIDE_BEIJING``,
``UNREASONABLE``). A file of format ``/1`` knows the four tiers only. It is JSON, not a pickle,
because config is data a person reviews and a pickle runs code when loaded; and the worker
predicts from it in pure Python (dict lookups over the text's n-grams), so it never needs
scikit-learn.

The file holds, per n-gram, ``[idf, coefficient of each class in "classes" order]``, the
class intercepts, the thresholds (on P(urgent) = P(T2H) + P(a transfer), chosen by
cross-validation; on P(transfer) and P(no dispatch), from the parameters), the CV figures,
and a ``version`` (sha256 of the training data and parameters) that each case records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from operator import add
from pathlib import Path
from typing import Any

from activities.dispatch.textmodel import (
    analyzer_settings,
    count_ngrams,
    number,
    probability,
    read_json,
    softmax,
    tf_weight,
)

FORMAT = "hotline-tier-model/2"
FORMATS = ("hotline-tier-model/1", FORMAT)
MODEL_FILE = "dispatch_model.json"
T2H = "T2H"
TIER_CLASSES = ("T2H", "T24H", "T7D", "T15D")
REDIRECT_PREFIX = "REDIRECT_"
SERVICES = ("110", "119", "120")
REDIRECT_CLASSES = tuple(REDIRECT_PREFIX + s for s in SERVICES)
NO_DISPATCH_CLASSES = ("CONSULTATION", "OUTSIDE_BEIJING", "UNREASONABLE")
CLASSES = (*TIER_CLASSES, *REDIRECT_CLASSES, *NO_DISPATCH_CLASSES)
# The second head: does a street (直派街乡) or a department or utility lead?
STREET, DEPARTMENT = "STREET", "DEPARTMENT"
LEAD_CLASSES = (DEPARTMENT, STREET)



class ModelError(ValueError):
    """The model file is missing or wrong; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Reading:
    """What the model reads in one request.

    ``p_urgent``: P(T2H) + P(a transfer), the probability that the request is urgent.
    ``tier``: the most probable of the four tiers (``tier_p`` its share among them).
    ``redirect``: the service (110/119/120) when a transfer is the most probable outcome
    and at least as probable as the file's ``redirect_threshold``; else None.
    ``no_dispatch``: the most probable kind of no-dispatch request when together they are
    more probable than any other outcome and at least ``no_dispatch_threshold``; else None.
    """

    p_urgent: float
    tier: str
    tier_p: float
    redirect: str | None = None
    redirect_p: float = 0.0
    no_dispatch: str | None = None
    no_dispatch_p: float = 0.0
    p_street: float | None = None   # P(a street leads); None: the file has no lead head


@dataclass(frozen=True)
class TierModel:
    """A loaded dispatch model: P(outcome) of a text, and the thresholds that turn it into
    a reading (:class:`Reading`)."""

    version: str
    classes: tuple[str, ...]
    intercepts: tuple[float, ...]
    # n-gram → (idf, coef of each class, then of each lead class when there is a lead head)
    features: dict[str, tuple[float, ...]]
    threshold: float
    ngram_min: int = 1
    ngram_max: int = 3
    lowercase: bool = True
    sublinear_tf: bool = False
    cv: dict[str, Any] | None = None
    redirect_threshold: float | None = None      # None: the model transfers nothing
    no_dispatch_threshold: float | None = None   # None: the model holds nothing back
    lead_intercepts: tuple[float, ...] = ()      # (DEPARTMENT, STREET); () no lead head
    street_threshold: float | None = None        # P(street) at which a street leads

    @property
    def decides_tier(self) -> bool:
        """A model over every outcome (format /2) decides the tier; one over the tiers
        alone (format /1) may only raise a tier to T2H."""
        return any(c not in TIER_CLASSES for c in self.classes)

    def __post_init__(self) -> None:
        # Each row's coefficients times its idf, and idf², ahead of time: most n-grams
        # occur once in a request, and then a row is added as it stands (0.71× the time
        # of weighting every coefficient per request, in an interleaved A/B).
        object.__setattr__(self, "_rows", {
            g: (r[0] * r[0], tuple(r[0] * c for c in r[1:])) for g, r in self.features.items()})

    def _decisions(self, text: str) -> list[float]:
        """Every column's decision value without its intercept: the outcome classes, then
        the lead head's (one pass over the text's n-grams for both)."""
        rows: dict[str, tuple[float, tuple[float, ...]]] = self._rows  # type: ignore[attr-defined]
        counts = count_ngrams(text, self.ngram_min, self.ngram_max, rows,
                              lowercase=self.lowercase)
        width = len(self.classes) + len(self.lead_intercepts)
        sums = [0.0] * width
        norm2 = 0.0
        for gram, count in counts.items():
            idf2, weighted = rows[gram]
            if count == 1:
                norm2 += idf2
                sums = list(map(add, sums, weighted))
            else:
                factor = tf_weight(count, 1.0, self.sublinear_tf)
                norm2 += idf2 * factor * factor
                sums = list(map(add, sums, (factor * c for c in weighted)))
        norm = math.sqrt(norm2) or 1.0  # no known n-gram: the intercepts alone
        return [s / norm for s in sums]

    def scores(self, text: str) -> list[float]:
        """The logistic regression's decision value for each class (``classes`` order)."""
        decisions = self._decisions(text)
        return [d + b for d, b in zip(decisions, self.intercepts, strict=False)]

    def probabilities(self, text: str) -> dict[str, float]:
        """P(outcome) for each class (a softmax over the decision values)."""
        return softmax(self.classes, self.scores(text))

    def read(self, text: str) -> Reading:
        """P(outcome) turned into what the dispatch decision uses (:class:`Reading`)."""
        decisions = self._decisions(text)
        width = len(self.classes)
        outcome = [d + b for d, b in zip(decisions[:width], self.intercepts, strict=True)]
        reading = reading_of(softmax(self.classes, outcome), self.redirect_threshold,
                             self.no_dispatch_threshold)
        if not self.lead_intercepts:
            return reading
        lead = [d + b for d, b in zip(decisions[width:], self.lead_intercepts, strict=True)]
        return replace(reading, p_street=softmax(LEAD_CLASSES, lead)[STREET])


def reading_of(probs: dict[str, float], redirect_threshold: float | None,
               no_dispatch_threshold: float | None) -> Reading:
    """The reading of one request's P(outcome) (the model's and cross-validation's)."""
    tiers = {c: probs[c] for c in TIER_CLASSES if c in probs}
    tier = max(tiers, key=lambda c: tiers[c])
    p_urgent = probs.get(T2H, 0.0) + sum(probs.get(c, 0.0) for c in REDIRECT_CLASSES)
    top = max(probs, key=lambda c: probs[c])
    redirect, redirect_p = None, 0.0
    if (redirect_threshold is not None and top in REDIRECT_CLASSES
            and probs[top] >= redirect_threshold):
        redirect, redirect_p = top.removeprefix(REDIRECT_PREFIX), probs[top]
    held = {c: probs[c] for c in NO_DISPATCH_CLASSES if c in probs}
    p_held = sum(held.values())
    others = max((p for c, p in probs.items() if c not in held), default=0.0)
    no_dispatch, no_dispatch_p = None, 0.0
    # The three kinds together: a consultation that is half a complaint about an
    # outside place is still not for a unit to act on.
    if (no_dispatch_threshold is not None and held and p_held >= no_dispatch_threshold
            and p_held >= others):
        no_dispatch, no_dispatch_p = max(held, key=lambda c: held[c]), p_held
    return Reading(p_urgent, tier, tiers[tier] / (sum(tiers.values()) or 1.0),
                   redirect, redirect_p, no_dispatch, no_dispatch_p)


def model_from_document(doc: Any, *, classes_expected: tuple[str, ...] = CLASSES
                        ) -> TierModel:
    """Check a parsed model document and build the model; ValueError says what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError("the top level must be a JSON object")
    if doc.get("format") not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, FORMATS))}, "
                         f"not {doc.get('format')!r}")
    missing = [k for k in ("version", "classes", "intercepts", "features", "t2h_threshold",
                           "analyzer") if k not in doc]
    if missing:
        raise ValueError(f"missing key(s): {', '.join(missing)}")
    version = doc["version"]
    if not isinstance(version, str) or not version:
        raise ValueError("version must be a non-empty string")
    classes = doc["classes"]
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)
            and len(set(classes)) == len(classes)):
        raise ValueError("classes must be a list of distinct class names")
    if T2H not in classes:
        raise ValueError(f"classes must include {T2H}")
    if not set(classes) <= set(classes_expected):
        raise ValueError(f"unknown class(es): {sorted(set(classes) - set(classes_expected))}")
    width = len(classes)
    intercepts = doc["intercepts"]
    if not isinstance(intercepts, list) or len(intercepts) != width:
        raise ValueError(f"intercepts must be a list of {width} numbers (one per class)")
    lead = doc.get("lead")
    lead_intercepts: tuple[float, ...] = ()
    street_threshold = None
    if lead is not None:
        if not (isinstance(lead, dict) and lead.get("classes") == list(LEAD_CLASSES)
                and isinstance(lead.get("intercepts"), list)
                and len(lead["intercepts"]) == len(LEAD_CLASSES)):
            raise ValueError(f"lead must be an object with classes {list(LEAD_CLASSES)}, "
                             "two intercepts and a street_threshold")
        lead_intercepts = tuple(number(v, "lead.intercepts") for v in lead["intercepts"])
        street_threshold = probability(lead.get("street_threshold"), "lead.street_threshold")
        width += len(LEAD_CLASSES)
    nmin, nmax, lowercase, sublinear = analyzer_settings(doc["analyzer"])
    features = doc["features"]
    if not isinstance(features, dict) or not features:
        raise ValueError("features must be a non-empty object of n-gram → [idf, coefs…]")
    rows: dict[str, tuple[float, ...]] = {}
    for gram, row in features.items():
        if not (isinstance(row, list) and len(row) == width + 1):
            raise ValueError(f"feature {gram!r} must be [idf, {width} coefficients]")
        rows[gram] = tuple(number(v, f"feature {gram!r}") for v in row)
    if doc["format"] == FORMATS[0] and not set(classes) <= set(TIER_CLASSES):
        raise ValueError(f"a {FORMATS[0]} model knows the tiers only, not "
                         f"{sorted(set(classes) - set(TIER_CLASSES))}")
    threshold = probability(doc["t2h_threshold"], "t2h_threshold")
    optional = {key: None if doc.get(key) is None else probability(doc[key], key)
                for key in ("redirect_threshold", "no_dispatch_threshold")}
    cv = doc.get("cv")
    return TierModel(
        version=version,
        classes=tuple(classes),
        intercepts=tuple(number(v, "intercepts") for v in intercepts),
        features=rows,
        threshold=threshold,
        ngram_min=nmin,
        ngram_max=nmax,
        lowercase=lowercase,
        sublinear_tf=bool(sublinear),
        cv=cv if isinstance(cv, dict) else None,
        lead_intercepts=lead_intercepts,
        street_threshold=street_threshold,
        **optional,
    )


def load_model(path: Path, *, classes_expected: tuple[str, ...] = CLASSES) -> TierModel:
    """Read and check a model file.

    Raises:
        ModelError: naming the file and what is wrong with it.
    """
    doc = read_json(path, ModelError)
    try:
        return model_from_document(doc, classes_expected=classes_expected)
    except ValueError as err:
        raise ModelError(f"{path}: {err} (rebuild it with `hotline routing learn --force`)"
                         ) from None
