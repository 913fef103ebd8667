"""The learned tier model beside the rules: read its JSON file and predict P(tier).

``deploy/config/dispatch_model.json`` is written by ``hotline routing learn``
(:mod:`activities.dispatch.training`, scikit-learn): character n-grams (1–3) weighted by
TF-IDF and a multinomial logistic regression over the four tiers. It is JSON, not a pickle,
because config is data a person reviews and a pickle runs code when loaded; and the worker
predicts from it in pure Python (dict lookups over the text's n-grams), so it never needs
scikit-learn.

The file holds, per n-gram, ``[idf, coefficient of each class in "classes" order]``, the
class intercepts, the threshold on P(T2H) chosen by cross-validation, the CV figures, and a
``version`` (sha256 of the training data and parameters) that each case records.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "hotline-tier-model/1"
MODEL_FILE = "dispatch_model.json"
T2H = "T2H"

# scikit-learn's char analyzer turns each run of two or more whitespace characters into
# one space before cutting n-grams; predicting the same numbers needs the same text.
_WHITE_SPACES = re.compile(r"\s\s+")


class ModelError(ValueError):
    """The model file is missing or wrong; the message names the file and what is wrong."""


@dataclass(frozen=True)
class TierModel:
    """A loaded tier model: P(tier) of a text, and the threshold on P(T2H)."""

    version: str
    classes: tuple[str, ...]
    intercepts: tuple[float, ...]
    features: dict[str, tuple[float, ...]]   # n-gram → (idf, coef of each class)
    threshold: float
    ngram_min: int = 1
    ngram_max: int = 3
    lowercase: bool = True
    sublinear_tf: bool = False
    cv: dict[str, Any] | None = None

    def scores(self, text: str) -> list[float]:
        """The logistic regression's decision value for each class (``classes`` order)."""
        if self.lowercase:
            text = text.lower()
        text = _WHITE_SPACES.sub(" ", text)
        feats = self.features
        counts: dict[str, int] = {}
        for n in range(self.ngram_min, self.ngram_max + 1):
            for i in range(len(text) - n + 1):
                gram = text[i:i + n]
                if gram in feats:
                    counts[gram] = counts.get(gram, 0) + 1
        sums = [0.0] * len(self.classes)
        norm2 = 0.0
        for gram, count in counts.items():
            row = feats[gram]
            weight = (1.0 + math.log(count) if self.sublinear_tf else count) * row[0]
            norm2 += weight * weight
            for k in range(len(sums)):
                sums[k] += weight * row[k + 1]
        norm = math.sqrt(norm2) or 1.0  # no known n-gram: the intercepts alone
        return [s / norm + b for s, b in zip(sums, self.intercepts, strict=True)]

    def probabilities(self, text: str) -> dict[str, float]:
        """P(tier) for each tier (a softmax over the decision values)."""
        scores = self.scores(text)
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return {c: e / total for c, e in zip(self.classes, exps, strict=True)}

    def p_t2h(self, text: str) -> float:
        """P(T2H): the only probability the dispatch decision uses."""
        return self.probabilities(text)[T2H]


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def model_from_document(doc: Any, *, classes_expected: tuple[str, ...] | None = None
                        ) -> TierModel:
    """Check a parsed model document and build the model; ValueError says what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError("the top level must be a JSON object")
    if doc.get("format") != FORMAT:
        raise ValueError(f"format must be {FORMAT!r}, not {doc.get('format')!r}")
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
        raise ValueError("classes must be a list of distinct tier names")
    if T2H not in classes:
        raise ValueError(f"classes must include {T2H}")
    if classes_expected is not None and not set(classes) <= set(classes_expected):
        raise ValueError(f"unknown class(es): {sorted(set(classes) - set(classes_expected))}")
    width = len(classes)
    intercepts = doc["intercepts"]
    if not isinstance(intercepts, list) or len(intercepts) != width:
        raise ValueError(f"intercepts must be a list of {width} numbers (one per class)")
    analyzer = doc["analyzer"]
    if not isinstance(analyzer, dict):
        raise ValueError("analyzer must be an object")
    nmin, nmax = analyzer.get("ngram_min"), analyzer.get("ngram_max")
    if not (isinstance(nmin, int) and isinstance(nmax, int) and 1 <= nmin <= nmax):
        raise ValueError("analyzer.ngram_min and ngram_max must be integers, 1 ≤ min ≤ max")
    if analyzer.get("norm") != "l2":
        raise ValueError("analyzer.norm must be 'l2' (the only one this reader computes)")
    features = doc["features"]
    if not isinstance(features, dict) or not features:
        raise ValueError("features must be a non-empty object of n-gram → [idf, coefs…]")
    rows: dict[str, tuple[float, ...]] = {}
    for gram, row in features.items():
        if not (isinstance(row, list) and len(row) == width + 1):
            raise ValueError(f"feature {gram!r} must be [idf, {width} coefficients]")
        rows[gram] = tuple(_number(v, f"feature {gram!r}") for v in row)
    threshold = _number(doc["t2h_threshold"], "t2h_threshold")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"t2h_threshold must be in (0, 1], not {threshold}")
    cv = doc.get("cv")
    return TierModel(
        version=version,
        classes=tuple(classes),
        intercepts=tuple(_number(v, "intercepts") for v in intercepts),
        features=rows,
        threshold=threshold,
        ngram_min=nmin,
        ngram_max=nmax,
        lowercase=bool(analyzer.get("lowercase", True)),
        sublinear_tf=bool(analyzer.get("sublinear_tf", False)),
        cv=cv if isinstance(cv, dict) else None,
    )


def load_model(path: Path, *, classes_expected: tuple[str, ...] | None = None) -> TierModel:
    """Read and check a model file.

    Raises:
        ModelError: naming the file and what is wrong with it.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ModelError(f"{path}: cannot read the model file: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(f"{path}: not valid JSON: {err}") from None
    try:
        return model_from_document(doc, classes_expected=classes_expected)
    except ValueError as err:
        raise ModelError(f"{path}: {err} (rebuild it with `hotline routing learn --force`)"
                         ) from None
