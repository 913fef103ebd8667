"""Fast dictionary matching of many short Chinese phrases in a text.

Classification and location both look for thousands of phrases (keywords, street names,
gazetteer entries) in a text of a few dozen characters. Scanning every phrase with ``in``
costs one pass per phrase; here the text is scanned once: at each position the phrases
that start with that character are tried, longest first, in a dict (an Aho-Corasick-like
dictionary lookup without the automaton). Matches do not overlap and longer phrases win,
so a longer phrase hides the shorter ones inside it: "火灾隐患" is not "火灾", "朝阳门" is
not "朝阳", "香河园北里" is not "香河园".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

def any_of(patterns: list[str]) -> re.Pattern[str] | None:
    """One expression that matches where any of ``patterns`` does (None for none)."""
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


# Where a caller's clause ends (operators type clauses apart with spaces too: "最近老有人
# 打架 快来人啊 楼下打起来了").
CLAUSE_ENDS = frozenset("，。！？；,.!?;… \n")


def clause_around(text: str, start: int, end: int) -> tuple[str, str]:
    """The words of ``text[start:end]``'s clause before it and after it."""
    left = start
    while left > 0 and text[left - 1] not in CLAUSE_ENDS:
        left -= 1
    right = end
    while right < len(text) and text[right] not in CLAUSE_ENDS:
        right += 1
    return text[left:start], text[end:right]


# Where a caller's sentence ends (a clause ends at commas and spaces as well).
SENTENCE_ENDS = "。！？!?\n"


def sentence_end(text: str, at: int) -> int:
    """Where the sentence that runs on at ``text[at]`` ends."""
    ends = [i for i in (text.find(c, at) for c in SENTENCE_ENDS) if i >= 0]
    return min(ends, default=len(text))


@dataclass(frozen=True, slots=True)
class Hit(Generic[T]):
    """One phrase found in a text: where, which phrase, and what it means."""

    start: int
    end: int
    phrase: str
    values: tuple[T, ...]


class PhraseIndex(Generic[T]):
    """Phrases mapped to values; :meth:`scan` finds them in a text in one pass."""

    def __init__(self) -> None:
        self._values: dict[str, list[T]] = {}
        self._frozen: dict[str, tuple[T, ...]] = {}
        # first character → the lengths of the phrases starting with it, longest first
        self._lengths: dict[str, tuple[int, ...]] = {}
        self._dirty = False

    def add(self, phrase: str, value: T) -> None:
        """Map ``phrase`` to ``value`` (a phrase may carry several values)."""
        if not phrase:
            raise ValueError("empty phrase")
        values = self._values.setdefault(phrase, [])
        if value not in values:
            values.append(value)
        self._dirty = True

    def add_all(self, phrases: Iterable[str], value: T) -> None:
        for phrase in phrases:
            self.add(phrase, value)

    def __contains__(self, phrase: str) -> bool:
        return phrase in self._values

    def __len__(self) -> int:
        return len(self._values)

    def phrases(self) -> list[str]:
        return list(self._values)

    def get(self, phrase: str) -> tuple[T, ...]:
        """The values of exactly this phrase (empty when unknown).

        Reads the phrases as added so far, without rebuilding the scan tables: loaders
        that ask between adds stay linear.
        """
        return tuple(self._values.get(phrase, ()))

    def _freeze(self) -> None:
        if not self._dirty:
            return
        self._frozen = {p: tuple(v) for p, v in self._values.items()}
        lengths: dict[str, set[int]] = {}
        for phrase in self._values:
            lengths.setdefault(phrase[0], set()).add(len(phrase))
        self._lengths = {c: tuple(sorted(ls, reverse=True)) for c, ls in lengths.items()}
        self._dirty = False

    def scan(self, text: str) -> list[Hit[T]]:
        """Non-overlapping matches of the phrases in ``text``, in text order.

        Overlaps are settled by length: "地下水管爆裂" reads "水管爆裂" (4) rather than the
        "下水管" (3) that starts earlier; among equals the leftmost wins.
        """
        self._freeze()
        lengths, frozen = self._lengths, self._frozen
        found: list[tuple[int, int, str]] = []
        n = len(text)
        for i in range(n):
            candidates = lengths.get(text[i])
            if not candidates:
                continue
            for length in candidates:
                if i + length <= n:
                    phrase = text[i:i + length]
                    if phrase in frozen:
                        found.append((-length, i, phrase))
                        break
        if not found:
            return []
        if len(found) > 1:
            found.sort()
            taken = bytearray(n)
            kept: list[tuple[int, int, str]] = []
            for neg, i, phrase in found:
                end = i - neg
                if not any(taken[i:end]):
                    taken[i:end] = b"\x01" * (end - i)
                    kept.append((neg, i, phrase))
            found = sorted(kept, key=lambda f: f[1])
        return [Hit(i, i - neg, phrase, frozen[phrase]) for neg, i, phrase in found]
