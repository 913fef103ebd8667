"""What the two learned models' readers share: character n-grams as scikit-learn cuts them,
a softmax, and the checks and layout of their JSON files.

The worker predicts in pure Python (:mod:`activities.dispatch.learned`,
:mod:`activities.dispatch.category_model`), so nothing here imports scikit-learn.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Container
from functools import lru_cache
from pathlib import Path
from typing import Any

# scikit-learn's char analyzer turns each run of two or more whitespace characters into
# one space before cutting n-grams; predicting the same numbers needs the same text.
_WHITE_SPACES = re.compile(r"\s\s+")
# A phone number says nothing about where a request goes, but its digits do make n-grams
# the models know ("12345" is the hotline callers name when they are not from Beijing):
# runs of seven digits or more are read as one space, in training and in prediction alike.
_PHONE_LIKE = re.compile(r"\d{7,}")


def model_text(text: str) -> str:
    """The text as both learned models read it: phone-like digit runs taken out."""
    return _PHONE_LIKE.sub(" ", text)


def count_ngrams(text: str, ngram_min: int, ngram_max: int, vocabulary: Container[str], *,
                 lowercase: bool = True) -> dict[str, int]:
    """How often each n-gram of ``text`` that is in ``vocabulary`` occurs (in the order
    of first occurrence, shorter n-grams first, as the models' sums were trained)."""
    counts = _all_ngrams(text, ngram_min, ngram_max, lowercase)
    return {gram: count for gram, count in counts.items() if gram in vocabulary}


# Both models cut the same request with the same analyzer, one after the other: the second
# reads the first's counts (a few recent texts are enough; the counts are never changed).
@lru_cache(maxsize=8)
def _all_ngrams(text: str, ngram_min: int, ngram_max: int, lowercase: bool) -> Counter[str]:
    text = model_text(text)
    if lowercase:
        text = text.lower()
    text = _WHITE_SPACES.sub(" ", text)
    return Counter(text[i:i + n] for n in range(ngram_min, ngram_max + 1)
                   for i in range(len(text) - n + 1))


def tf_weight(count: int, idf: float, sublinear_tf: bool) -> float:
    """An n-gram's TF-IDF weight before the l2 norm."""
    return (1.0 + math.log(count) if sublinear_tf else count) * idf


def softmax(names: Collection[str], scores: list[float]) -> dict[str, float]:
    """P(name) from decision values."""
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return {c: e / total for c, e in zip(names, exps, strict=True)}


def number(value: Any, what: str) -> float:
    """A finite number from a model file; ValueError naming ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def probability(value: Any, what: str) -> float:
    """A threshold in (0, 1] from a model file."""
    got = number(value, what)
    if not 0.0 < got <= 1.0:
        raise ValueError(f"{what} must be in (0, 1], not {got}")
    return got


def analyzer_settings(analyzer: Any) -> tuple[int, int, bool, bool | None]:
    """(ngram_min, ngram_max, lowercase, sublinear_tf or None when unsaid) of a model
    file's ``analyzer``, checked: character n-grams, l2 norm (all these readers compute)."""
    if not isinstance(analyzer, dict):
        raise ValueError("analyzer must be an object")
    if analyzer.get("kind", "char") != "char":
        raise ValueError("analyzer.kind must be 'char' (the only one this reader computes)")
    nmin, nmax = analyzer.get("ngram_min"), analyzer.get("ngram_max")
    if not (isinstance(nmin, int) and isinstance(nmax, int) and 1 <= nmin <= nmax):
        raise ValueError("analyzer.ngram_min and ngram_max must be integers, 1 ≤ min ≤ max")
    if analyzer.get("norm") != "l2":
        raise ValueError("analyzer.norm must be 'l2' (the only one this reader computes)")
    sublinear = analyzer.get("sublinear_tf")
    return nmin, nmax, bool(analyzer.get("lowercase", True)), \
        None if sublinear is None else bool(sublinear)


def read_json(path: Path, error: type[Exception]) -> Any:
    """A model file's JSON; ``error`` naming the file when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise error(f"{path}: cannot read the model file: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path}: not valid JSON: {err}") from None


def dumps_model(doc: dict[str, Any], expanded: Collection[str], *, indent: str = "",
                value: Callable[[Any], str] = json.dumps) -> str:
    """A model file's text: sorted keys; each key in ``expanded`` one entry a line (a
    readable diff between versions), every other key on its own line."""
    lines = ["{"]
    keys = sorted(doc)
    for n, key in enumerate(keys):
        comma = "," if n < len(keys) - 1 else ""
        if key in expanded:
            inner = sorted(doc[key])
            lines.append(f"{json.dumps(key)}: {{")
            lines += [f"{indent}{json.dumps(g, ensure_ascii=False)}: {value(doc[key][g])}"
                      f"{',' if i < len(inner) - 1 else ''}" for i, g in enumerate(inner)]
            lines.append("}" + comma)
        else:
            text = json.dumps(doc[key], ensure_ascii=False, sort_keys=True)
            lines.append(f"{json.dumps(key)}: {text}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"
