"""Classification (kind, category, tier) from the lexicon in data, and first routing.

``categories.yaml`` holds the phrases; this module only applies them. Every phrase goes
into one dictionary and the text is scanned once (:mod:`activities.textindex`), so the
cost does not grow with the size of the lexicon. Operator hints (kind, category_hint,
urgency_hint) take precedence over the text and are recorded; an urgency hint never
lowers an emergency found in the text (it is then recorded as refused).

``locate`` and ``Location`` live in :mod:`activities.location` and are re-exported here;
``route`` asks the routing table (:mod:`activities.routing`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from activities.location import Location, locate
from activities.registry import Registry
from activities.rules import TIERS, RulesError, describe_validation_error, load_yaml
from activities.textindex import PhraseIndex
from workflows.model import Unit

__all__ = ["KINDS", "Category", "Classification", "Lexicon", "Location", "classify",
           "load_lexicon", "locate", "route"]

KINDS = ("CONSULTATION", "HELP", "COMPLAINT", "REPORT", "SUGGESTION", "PRAISE")
STRONG_WEIGHT = 4
KEYWORD_WEIGHT = 2
HINT_WEIGHT = 1
THRESHOLD = 2  # a category or kind needs at least one keyword (or two hints)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compile(patterns: list[str], where: str) -> list[re.Pattern[str]]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as err:
            raise ValueError(f"{where}: bad pattern {pattern!r}: {err}") from None
    return compiled


class Category(_Strict):
    code: str
    name: str
    tier: str
    strong: list[str] = []         # decisive words (4)
    keywords: list[str] = []       # (2)
    hints: list[str] = []          # context words (1)
    patterns: list[str] = []       # regular expressions counting as a keyword (2)
    hint_patterns: list[str] = []  # regular expressions counting as a hint (1)
    # the kind when the text has no kind cue (e.g. REPORT for illegal construction)
    default_kind: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Category:
        _compile(self.patterns, self.code)
        _compile(self.hint_patterns, self.code)
        if self.default_kind is not None and self.default_kind not in KINDS:
            raise ValueError(f"unknown default_kind {self.default_kind!r}")
        if self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}")
        top, dot, sub = self.code.partition(".")
        if not (dot and top and sub):
            raise ValueError(f"category code {self.code!r} must be two-level: top.sub")
        return self

    @property
    def top(self) -> str:
        return self.code.partition(".")[0]


class KindCues(_Strict):
    keywords: list[str] = []
    hints: list[str] = []
    patterns: list[str] = []


@dataclass
class _Meaning:
    """Everything one phrase says."""

    categories: dict[int, int] = field(default_factory=dict)  # category index → weight
    kinds: dict[str, int] = field(default_factory=dict)
    emergency: bool = False
    redirect: str | None = None
    urgent: bool = False
    unreasonable: bool = False


class Lexicon(_Strict):
    version: int
    top_levels: dict[str, str] = {}
    emergency_keywords: list[str]
    emergency_patterns: list[str] = []
    redirect: dict[str, list[str]]
    redirect_patterns: dict[str, list[str]] = {}
    neutral: list[str] = []
    unreasonable_keywords: list[str]
    urgent_keywords: list[str] = []
    urgent_patterns: list[str] = []
    default_kind: str = "COMPLAINT"
    kinds: dict[str, KindCues]
    categories: list[Category]

    _index: PhraseIndex[_Meaning] = PrivateAttr(default_factory=PhraseIndex)
    _by_code: dict[str, Category] = PrivateAttr(default_factory=dict)
    # (pattern, what a match means)
    _patterns: list[tuple[re.Pattern[str], _Meaning]] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Lexicon:
        codes = [c.code for c in self.categories]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate category codes {dupes}")
        if not self.categories or self.categories[-1].keywords:
            raise ValueError("the last category must be the fallback, with no keywords")
        unknown = [k for k in (*self.kinds, self.default_kind) if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; kinds are {', '.join(KINDS)}")
        unknown_redirects = sorted(set(self.redirect_patterns) - set(self.redirect))
        if unknown_redirects:
            raise ValueError(f"redirect_patterns for services not in redirect: "
                             f"{unknown_redirects}")
        _compile(self.emergency_patterns, "emergency_patterns")
        _compile(self.urgent_patterns, "urgent_patterns")
        for service, patterns in self.redirect_patterns.items():
            _compile(patterns, f"redirect_patterns.{service}")
        for kind, cues in self.kinds.items():
            _compile(cues.patterns, f"kinds.{kind}")
        if self.top_levels:
            tops = sorted({c.top for c in self.categories} - set(self.top_levels))
            if tops:
                raise ValueError(f"categories with a top level not in top_levels: {tops}")
        short = sorted({w for w in self._all_phrases() if len(w.strip()) < 2})
        if short:
            # one character matches inside too many names ("树" in 椿树街道, 九棵树)
            raise ValueError(f"phrases must have at least two characters: {short}")
        return self

    def _all_phrases(self) -> list[str]:
        words = [*self.emergency_keywords, *self.neutral, *self.unreasonable_keywords,
                 *self.urgent_keywords]
        for service in self.redirect.values():
            words += service
        for cues in self.kinds.values():
            words += cues.keywords + cues.hints
        for cat in self.categories:
            words += cat.strong + cat.keywords + cat.hints
        return words

    _shielded: tuple[str, ...] = PrivateAttr(default=())

    def model_post_init(self, __context: object) -> None:
        self._by_code = {c.code: c for c in self.categories}
        self._index = self._build_index()
        self._patterns = self._build_patterns()

    def _build_patterns(self) -> list[tuple[re.Pattern[str], _Meaning]]:
        out: list[tuple[re.Pattern[str], _Meaning]] = []
        for i, cat in enumerate(self.categories):
            out += [(p, _Meaning(categories={i: KEYWORD_WEIGHT}))
                    for p in _compile(cat.patterns, cat.code)]
            out += [(p, _Meaning(categories={i: HINT_WEIGHT}))
                    for p in _compile(cat.hint_patterns, cat.code)]
        for kind, cues in self.kinds.items():
            out += [(p, _Meaning(kinds={kind: KEYWORD_WEIGHT}))
                    for p in _compile(cues.patterns, kind)]
        out += [(p, _Meaning(emergency=True))
                for p in _compile(self.emergency_patterns, "emergency")]
        out += [(p, _Meaning(urgent=True)) for p in _compile(self.urgent_patterns, "urgent")]
        for service, patterns in self.redirect_patterns.items():
            out += [(p, _Meaning(redirect=service)) for p in _compile(patterns, service)]
        return out

    def shield(self, phrases: Iterable[str]) -> None:
        """Read ``phrases`` (place names) as meaning nothing, so that a keyword inside a
        name ("树" in 椿树, "积水" in 积水潭) does not classify the text. Lexicon phrases
        keep their meaning."""
        own = set(self._all_phrases())
        self._shielded = tuple(sorted({p for p in phrases if len(p) >= 2} - own))
        self._index = self._build_index()

    def _build_index(self) -> PhraseIndex[_Meaning]:
        cat_words: list[tuple[str, int, int]] = []  # (word, category index, weight)
        for i, cat in enumerate(self.categories):
            cat_words += [(w, i, STRONG_WEIGHT) for w in cat.strong]
            cat_words += [(w, i, KEYWORD_WEIGHT) for w in cat.keywords]
            cat_words += [(w, i, HINT_WEIGHT) for w in cat.hints]
        kind_words: list[tuple[str, str, int]] = []
        for kind, cues in self.kinds.items():
            kind_words += [(w, kind, KEYWORD_WEIGHT) for w in cues.keywords]
            kind_words += [(w, kind, HINT_WEIGHT) for w in cues.hints]
        own_category = {w for w, _, _ in cat_words}
        own_kind = {w for w, _, _ in kind_words}

        meanings: dict[str, _Meaning] = {w: _Meaning() for w in self._all_phrases()}
        for word, idx, weight in cat_words:
            cats = meanings[word].categories
            cats[idx] = max(cats.get(idx, 0), weight)
        for word, kind, weight in kind_words:
            kinds = meanings[word].kinds
            kinds[kind] = max(kinds.get(kind, 0), weight)
        for word in self.emergency_keywords:
            meanings[word].emergency = True
        for word in self.urgent_keywords:
            meanings[word].urgent = True
        for word in self.unreasonable_keywords:
            meanings[word].unreasonable = True
        for service, words in reversed(list(self.redirect.items())):  # first listed wins
            for word in words:
                meanings[word].redirect = service
        # A phrase that is not itself a category word counts for the categories whose words
        # it contains (a longer phrase hides the shorter ones from the scan, not from the
        # score); an emergency or a redirect is what the text is about, so it counts as a
        # strong word ("电梯困人" is about the lift even when the caller also blames 物业).
        for phrase, meaning in meanings.items():
            salient = meaning.emergency or meaning.redirect is not None
            if salient:
                for idx, weight in list(meaning.categories.items()):
                    if weight > HINT_WEIGHT:
                        meaning.categories[idx] = STRONG_WEIGHT
            if phrase not in own_category:
                for word, idx, weight in cat_words:
                    if word in phrase and word != phrase:
                        w = STRONG_WEIGHT if salient and weight > HINT_WEIGHT else weight
                        meaning.categories[idx] = max(meaning.categories.get(idx, 0), w)
            if phrase not in own_kind:
                for word, kind, weight in kind_words:
                    if word in phrase and word != phrase:
                        meaning.kinds[kind] = max(meaning.kinds.get(kind, 0), weight)
        for phrase in self._shielded:
            meanings.setdefault(phrase, _Meaning())
        index: PhraseIndex[_Meaning] = PhraseIndex()
        for phrase, meaning in meanings.items():
            index.add(phrase, meaning)
        return index

    def category(self, code: str) -> Category | None:
        return self._by_code.get(code)

    @property
    def fallback(self) -> Category:
        return self.categories[-1]


def load_lexicon(path: Path, registry: Registry | None = None) -> Lexicon:
    """Read and validate ``categories.yaml`` (``registry`` is accepted for compatibility)."""
    try:
        return Lexicon.model_validate(load_yaml(path))
    except ValidationError as err:
        raise RulesError(describe_validation_error(path, err)) from None


@dataclass(frozen=True)
class Classification:
    """What the text (and the operator's hints) say about a request.

    ``hints_used``: which operator hints decided (category, kind, urgency).
    ``hints_refused``: hints not applied (an urgency hint below an emergency's T2H).
    ``matched``: the phrases found, for the case record.
    """

    kind: str
    category: Category
    tier: str
    emergency: bool
    redirect_to: str | None
    unreasonable: bool
    hints_used: list[str] = field(default_factory=list)
    hints_refused: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    urgent: bool = False


def _faster(a: str, b: str) -> str:
    return a if TIERS.index(a) <= TIERS.index(b) else b


def classify(
    lexicon: Lexicon,
    content: str,
    *,
    kind_hint: str | None = None,
    category_hint: str | None = None,
    urgency_hint: str | None = None,
) -> Classification:
    """Kind, category and tier of a request; hints win and are listed in ``hints_used``."""
    cat_scores = [0] * len(lexicon.categories)
    kind_scores: dict[str, int] = {}
    emergency = urgent = unreasonable = False
    redirects: set[str] = set()
    matched: list[str] = []
    # Each phrase counts once: a word repeated ("学校…学校") is not twice the evidence.
    found = list({hit.phrase: hit.values[0] for hit in lexicon._index.scan(content)}.items())
    found += [(m.group(0), meaning) for pattern, meaning in lexicon._patterns
              if (m := pattern.search(content))]
    for phrase, meaning in found:
        if meaning.categories or meaning.kinds or meaning.emergency or meaning.redirect \
                or meaning.urgent or meaning.unreasonable:
            matched.append(phrase)  # place names and neutral phrases say nothing
        for idx, weight in meaning.categories.items():
            cat_scores[idx] += weight
        for kind, weight in meaning.kinds.items():
            kind_scores[kind] = kind_scores.get(kind, 0) + weight
        emergency = emergency or meaning.emergency
        urgent = urgent or meaning.urgent
        unreasonable = unreasonable or meaning.unreasonable
        if meaning.redirect:
            redirects.add(meaning.redirect)
    redirect_to = next((s for s in lexicon.redirect if s in redirects), None)

    hints: list[str] = []
    refused: list[str] = []
    category = lexicon.category(category_hint) if category_hint else None
    if category is not None:
        hints.append("category")
    else:
        best = max(range(len(cat_scores)), key=lambda i: (cat_scores[i], -i))
        category = lexicon.categories[best] if cat_scores[best] >= THRESHOLD else lexicon.fallback

    if kind_hint in KINDS:
        kind = kind_hint
        hints.append("kind")
    else:
        order = list(lexicon.kinds)
        ranked = sorted(kind_scores.items(), key=lambda kv: (-kv[1], order.index(kv[0])))
        if ranked and ranked[0][1] >= THRESHOLD:
            kind = ranked[0][0]
        else:
            kind = category.default_kind or lexicon.default_kind

    emergency = emergency or redirect_to is not None
    if emergency:
        tier = "T2H"
    elif urgent:
        tier = _faster(category.tier, "T24H")
    else:
        tier = category.tier
    if urgency_hint in TIERS:
        if emergency and urgency_hint != "T2H":
            refused.append("urgency")  # never lower an emergency
        else:
            tier = urgency_hint
            hints.append("urgency")
    return Classification(kind, category, tier, emergency, redirect_to, unreasonable, hints,
                          refused, matched, urgent)


def route(
    registry: Registry, category: Category, location: Location, *,
    at: date | datetime | None = None,
) -> Unit:
    """The lead unit from the routing table loaded with the registry (see decide_route)."""
    from activities.routing import decide_for

    if registry.routing is None:
        raise LookupError("the registry has no routing table: load it with load_config")
    return decide_for(registry.routing, registry, category.code, location, at=at).lead
