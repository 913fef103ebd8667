"""Classification: the kind, category and tier of a request, from the lexicon in data.

The text is scanned once against every phrase of the lexicon
(:mod:`activities.dispatch.lexicon`), then its patterns are tried. Operator hints (kind,
category_hint, urgency_hint) take precedence over the text and are recorded; an urgency
hint never lowers an emergency found in the text (it is then recorded as refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from activities.dispatch.lexicon import KINDS, Category, Lexicon, NotNow, _Meaning
from activities.dispatch.rules import TIERS

THRESHOLD = 2  # a category or kind needs at least one keyword (or two hints)


@dataclass(frozen=True)
class Classification:
    """What the text (and the operator's hints) say about a request.

    ``hints_used``: which operator hints decided (category, kind, urgency).
    ``hints_refused``: hints not applied (an urgency hint below an emergency's T2H).
    ``matched``: the phrases found, for the case record.
    ``held_back``: the kind of no-dispatch request (CONSULTATION, OUTSIDE_BEIJING,
    UNREASONABLE) the learned model reads, with its probability: a doubt for the desk.
    ``category_guess_p``: set when the category model named the category where the
    lexicon found none, less sure than its own threshold: a doubt for the desk.
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
    held_back: str | None = None
    held_back_p: float = 0.0
    category_guess_p: float = 0.0
    street_p: float | None = None   # the dispatch model's P(a street leads), when it has one
    # Where an aside begins whose words did not decide the category (the category model
    # reads only what comes before it).
    aside_at: int | None = None


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
    # Each phrase counts once: a word repeated ("学校…学校") is not twice the evidence. A
    # transfer word or pattern keeps its transfer if any of its occurrences is not hedged
    # ("昨天有人抢包，刚才又有人抢包"; "着火了！上次着火了也是这家").
    not_now = lexicon.redirect_not_now
    phrases: dict[str, _Meaning] = {}
    first_at: dict[str, int] = {}
    for hit in lexicon._index.scan(content):
        meaning = _now_or_not(hit.start, hit.end, hit.values[0], content, not_now)
        if hit.phrase not in phrases or meaning.redirect:
            phrases[hit.phrase] = meaning
        first_at.setdefault(hit.phrase, hit.start)
    found = list(phrases.items())
    aside = lexicon.aside_at(content)
    aside_scores = [0] * len(lexicon.categories)
    for pattern, meaning in lexicon._patterns:
        m = pattern.search(content)
        if m is None:
            continue
        read = _pattern_now_or_not(pattern, m, meaning, content, not_now)
        if read is not meaning:
            # Hedged here: a later match may be said of now ("昨天…抢包，刚才又有人抢包").
            for later in pattern.finditer(content, m.end()):
                if _pattern_now_or_not(pattern, later, meaning, content, not_now) is meaning:
                    m, read = later, meaning
                    break
        found.append((m.group(0), read))
        first_at.setdefault(m.group(0), m.start())
    for phrase, meaning in found:
        if meaning.categories or meaning.kinds or meaning.emergency or meaning.redirect \
                or meaning.urgent or meaning.unreasonable:
            matched.append(phrase)  # place names and neutral phrases say nothing
        in_aside = aside is not None and first_at[phrase] >= aside
        for idx, weight in meaning.categories.items():
            (aside_scores if in_aside else cat_scores)[idx] += weight
        for kind, weight in meaning.kinds.items():
            kind_scores[kind] = kind_scores.get(kind, 0) + weight
        emergency = emergency or meaning.emergency
        urgent = urgent or meaning.urgent
        unreasonable = unreasonable or meaning.unreasonable
        if meaning.redirect:
            redirects.add(meaning.redirect)
    redirect_to = lexicon.transfer_to(content, redirects)

    hints: list[str] = []
    refused: list[str] = []
    category = lexicon.category(category_hint) if category_hint else None
    if category is not None:
        hints.append("category")
    else:
        if max(cat_scores) < THRESHOLD:  # nothing before the aside: it is the matter
            cat_scores = [a + b for a, b in zip(cat_scores, aside_scores, strict=True)]
            aside = None
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
                          refused, matched, urgent, aside_at=aside)


def _pattern_now_or_not(pattern: re.Pattern[str], m: re.Match[str], meaning: _Meaning,
                        content: str, not_now: NotNow | None) -> _Meaning:
    # A pattern anchored at the text's start (a look-ahead guard, then the words) has its
    # words at its end: hedge there.
    start = m.end() - 1 if pattern.pattern.startswith("^") else m.start()
    return _now_or_not(start, m.end(), meaning, content, not_now)


def _now_or_not(start: int, end: int, meaning: _Meaning, content: str,
                not_now: NotNow | None) -> _Meaning:
    """The meaning of a phrase or pattern found at ``content[start:end]``, without its
    transfer when the words around it say it is not happening now (a fear, another day,
    a figure of speech): it still names the problem."""
    if meaning.redirect is None or not_now is None \
            or not not_now.hedged(content, start, end):
        return meaning
    return replace(meaning, redirect=None, emergency=False)
