"""The classification lexicon (``categories.yaml``): categories, kinds and the phrases and
patterns that point at them, validated at start-up.

``categories.yaml`` holds the phrases; this module checks them and compiles them into one
phrase dictionary (:mod:`activities.dispatch.textindex`) and a list of patterns, which
:func:`activities.dispatch.classify.classify` applies. Each phrase carries everything it
means (:class:`_Meaning`), so a text is scanned once whatever the size of the lexicon.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from activities.dispatch.registry import Registry
from activities.dispatch.rules import TIERS, RulesError, describe_validation_error, load_yaml
from activities.dispatch.textindex import PhraseIndex, any_of, clause_around, sentence_end

KINDS = ("CONSULTATION", "HELP", "COMPLAINT", "REPORT", "SUGGESTION", "PRAISE")
STRONG_WEIGHT = 4
KEYWORD_WEIGHT = 2
HINT_WEIGHT = 1


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
    # categories the model may not move it to when one of its strong words is said (a
    # named line is the subway's, whatever the model reads as a bus in 加车 or 车次)
    strong_over_model: list[str] = []
    # ... unless these words are said (a bus route or stop named beside the line)
    strong_over_model_unless: list[str] = []

    @model_validator(mode="after")
    def _check(self) -> Category:
        _compile(self.patterns, self.code)
        _compile(self.hint_patterns, self.code)
        _compile(self.strong_over_model_unless, f"{self.code}.strong_over_model_unless")
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

    @cached_property
    def strong_unless(self) -> re.Pattern[str] | None:
        return any_of(self.strong_over_model_unless)

    def keeps_from_model(self, code: str, content: str) -> bool:
        """Whether ``content``, of this category by the lexicon, stays so against the
        category model's ``code``: one of this category's strong words is said, ``code``
        is among ``strong_over_model``, and none of ``strong_over_model_unless`` is."""
        unless = self.strong_unless
        return (code in self.strong_over_model and any(w in content for w in self.strong)
                and not (unless is not None and unless.search(content)))


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


class NotNow(_Strict):
    """When a transfer word is said of another time, as a fear or as a figure of speech
    ("万一着火了咋跑", "昨天夜里有人打架", "我心里着火"): regular expressions searched in the
    clause before the word (``before``) and matched at the start of the clause after it
    (``after``); a clause that says ``now`` is not hedged by its ``before`` words. ``over``
    is searched in the rest of the word's sentence: what is already over is no transfer
    ("变压器着火了，火已经灭了，可电一直没来")."""

    before: list[str]
    after: list[str] = []
    now: list[str] = []
    over: list[str] = []

    _re: tuple[re.Pattern[str] | None, ...] = PrivateAttr(default=())

    def compiled(self) -> tuple[re.Pattern[str] | None, ...]:
        if not self._re:
            parts = (("before", self.before), ("after", self.after), ("now", self.now),
                     ("over", self.over))
            for where, patterns in parts:
                _compile(patterns, f"redirect_not_now.{where}")  # names the bad one
            self._re = tuple(any_of(ps) for _, ps in parts)
        return self._re

    def hedged(self, text: str, start: int, end: int) -> bool:
        """Whether the word at ``text[start:end]`` is said of another time or as a fear."""
        before_re, after_re, now_re, over_re = self.compiled()
        before, after = clause_around(text, start, end)
        if after_re is not None and after_re.match(after):
            return True  # "着火了咋跑", "起火了以后…": said of a fear or of what followed
        if over_re is not None and over_re.search(text[end:sentence_end(text, end)]):
            return True  # "着火了，火已经灭了": over before the call
        if now_re is not None and now_re.search(before + text[start:end] + after):
            return False  # "从昨天晚上开始昏迷不醒": the time word says when it began
        return bool(before_re is not None and before_re.search(before))


class RedirectFirst(_Strict):
    """When ``patterns`` match, the service goes ahead of those in ``over``."""

    over: list[str]
    patterns: list[str]


class Lexicon(_Strict):
    version: int
    top_levels: dict[str, str] = {}
    emergency_keywords: list[str]
    emergency_patterns: list[str] = []
    redirect: dict[str, list[str]]
    redirect_patterns: dict[str, list[str]] = {}
    redirect_not_now: NotNow | None = None
    # Patterns that put their service ahead of the ones named in ``over`` when the order of
    # ``redirect`` would pick one of those (a fight with someone bleeding is the police's,
    # who bring the ambulance; a fire stays the fire service's whatever else is said).
    redirect_first: dict[str, RedirectFirst] = {}
    neutral: list[str] = []
    unreasonable_keywords: list[str]
    urgent_keywords: list[str] = []
    urgent_patterns: list[str] = []
    # Words that open an aside ("另外，", "顺便说一下"): what follows is a second matter, so
    # its category words decide only when the words before name none. Danger, transfers
    # and urgency said there still count.
    aside: list[str] = []
    default_kind: str = "COMPLAINT"
    kinds: dict[str, KindCues]
    categories: list[Category]

    _index: PhraseIndex[_Meaning] = PrivateAttr(default_factory=PhraseIndex)
    _by_code: dict[str, Category] = PrivateAttr(default_factory=dict)
    # (pattern, what a match means)
    _patterns: list[tuple[re.Pattern[str], _Meaning]] = PrivateAttr(default_factory=list)
    _first: list[tuple[str, frozenset[str], re.Pattern[str]]] = PrivateAttr(
        default_factory=list)
    _aside: re.Pattern[str] | None = PrivateAttr(default=None)
    _neutral: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Lexicon:
        codes = [c.code for c in self.categories]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate category codes {dupes}")
        if not self.categories or self.categories[-1].keywords:
            raise ValueError("the last category must be the fallback, with no keywords")
        barred = sorted({b for c in self.categories for b in c.strong_over_model} - set(codes))
        if barred:
            raise ValueError(f"strong_over_model names unknown categories {barred}")
        unknown = [k for k in (*self.kinds, self.default_kind) if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; kinds are {', '.join(KINDS)}")
        unknown_redirects = sorted(set(self.redirect_patterns) - set(self.redirect))
        if unknown_redirects:
            raise ValueError(f"redirect_patterns for services not in redirect: "
                             f"{unknown_redirects}")
        _compile(self.emergency_patterns, "emergency_patterns")
        if self.redirect_not_now is not None:
            self.redirect_not_now.compiled()
        _compile(self.urgent_patterns, "urgent_patterns")
        for service, patterns in self.redirect_patterns.items():
            _compile(patterns, f"redirect_patterns.{service}")
        named = set(self.redirect_first)
        for first in self.redirect_first.values():
            named |= set(first.over)
        unknown_first = sorted(named - set(self.redirect))
        if unknown_first:
            raise ValueError(f"redirect_first for services not in redirect: {unknown_first}")
        for service, first in self.redirect_first.items():
            _compile(first.patterns, f"redirect_first.{service}")
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
        self._first = [(service, frozenset(first.over), p)
                       for service, first in self.redirect_first.items()
                       for p in _compile(first.patterns, service)]
        _compile(self.aside, "aside")  # a bad one named, before any_of joins them
        self._aside = any_of(self.aside)
        # Longest first, taken out of what the category model reads (the scan's index
        # already skips them).
        neutral = sorted(self._neutral_phrases(), key=len, reverse=True)
        self._neutral = re.compile("|".join(map(re.escape, neutral))) if neutral else None

    def _neutral_phrases(self) -> set[str]:
        """The neutral phrases that mean nothing: those that are no category's own word
        (a category word keeps its meaning though ``neutral`` lists it too)."""
        own = {w for c in self.categories for w in (*c.strong, *c.keywords, *c.hints)}
        return set(self.neutral) - own

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
        neutral = self._neutral_phrases()
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
            if phrase in neutral:
                continue  # means nothing, and hides the words inside it ("学校门口")
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

    def transfer_to(self, content: str, services: set[str]) -> str | None:
        """The service a request goes to among the ``services`` its words call for: the
        first in ``redirect``'s order, unless a ``redirect_first`` pattern puts another of
        them ahead of it."""
        chosen = next((s for s in self.redirect if s in services), None)
        for service, over, pattern in self._first:
            if chosen in over and service in services and pattern.search(content):
                return service
        return chosen

    def without_neutral(self, text: str) -> str:
        """``text`` with its neutral phrases blanked out ("手机也快没电了" says nothing of a
        power cut to the category model either)."""
        return self._neutral.sub(" ", text) if self._neutral is not None else text

    def aside_at(self, content: str) -> int | None:
        """Where an aside begins in ``content`` (``aside``), if one does."""
        m = self._aside.search(content) if self._aside is not None else None
        return m.start() if m else None

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
