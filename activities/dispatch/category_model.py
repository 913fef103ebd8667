"""The learned category model beside the lexicon: read its JSON file, predict P(category),
and let a confident prediction replace the lexicon's category (issue 29).

Callers name one problem in many ways; a keyword list of any size misses some of them and
a place word from another domain ("学校门口", "公交站旁边") pulls the lexicon towards that
place's category. ``deploy/config/category_model.json`` is written by ``hotline routing
learn-categories`` (:mod:`activities.dispatch.category_training`, scikit-learn): character
n-grams (1–3) weighted by TF-IDF and a multinomial logistic regression over our category
codes — the same approach as the tier model (:mod:`activities.dispatch.learned`), JSON
rather than a pickle because config is data a person reviews, and predicted here in pure
Python so that the worker never needs scikit-learn.

The file holds ``idf`` (n-gram → inverse document frequency; every n-gram the model
knows, since all of them count in the text's length), ``coef`` (per category, the n-grams
that push towards or away from it; tiny coefficients pruned to keep the file small), the
intercepts, the threshold on P(category) at which cross-validation found the lexicon with
the model right most often (and one for texts where the lexicon found no category), the
cross-validation figures,
and a ``version`` (sha256 of the training data and parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from activities.dispatch.classify import Classification, classify
from activities.dispatch.lexicon import Lexicon
from activities.dispatch.textmodel import (
    analyzer_settings,
    count_ngrams,
    number,
    probability,
    read_json,
    softmax,
    tf_weight,
)

FORMAT = "hotline-category-model/1"
CATEGORY_MODEL_FILE = "category_model.json"
T2H = "T2H"

# scikit-learn's char analyzer turns each run of two or more whitespace characters into
# one space before cutting n-grams; predicting the same numbers needs the same text.


class CategoryModelError(ValueError):
    """The model file is missing or wrong; the message names the file and what is wrong."""


@dataclass(frozen=True)
class CategoryModel:
    """A loaded category model: P(category) of a text, and the threshold on the top one.

    ``lexicon``: the lexicon the model was checked against at load time (every class is
    one of its categories); :func:`apply_category_model` re-derives kind and tier with it.
    """

    version: str
    classes: tuple[str, ...]
    intercepts: tuple[float, ...]
    idf: dict[str, float]
    weights: dict[str, tuple[tuple[int, float], ...]]  # n-gram → (class index, coef)…
    threshold: float
    fallback_threshold: float
    ngram_min: int = 1
    ngram_max: int = 3
    lowercase: bool = True
    sublinear_tf: bool = True
    cv: dict[str, Any] | None = None
    lexicon: Lexicon | None = field(default=None, compare=False, repr=False)
    # n-gram → (idf², its coefficients times its idf): filled at load (a second copy of the
    # weights, a few hundred KiB, for a request's time)
    _rows: dict[str, tuple[float, tuple[tuple[int, float], ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Each n-gram's idf² and its coefficients times its idf, ahead of time: most
        # n-grams occur once in a request, and then its row is added as it stands (the
        # dispatch model does the same; bench/bench_routing.py measures it).
        idf = self.idf
        object.__setattr__(self, "_rows", {
            g: (v * v, tuple((k, v * c) for k, c in self.weights.get(g, ())))
            for g, v in idf.items()})

    def scores(self, text: str) -> list[float]:
        """The logistic regression's decision value for each class (``classes`` order)."""
        rows = self._rows
        counts = count_ngrams(text, self.ngram_min, self.ngram_max, rows,
                              lowercase=self.lowercase)
        sums = [0.0] * len(self.classes)
        norm2 = 0.0
        for gram, count in counts.items():
            idf2, weighted = rows[gram]
            if count == 1:
                norm2 += idf2
                for k, c in weighted:
                    sums[k] += c
            else:
                factor = tf_weight(count, 1.0, self.sublinear_tf)
                norm2 += idf2 * factor * factor
                for k, c in weighted:
                    sums[k] += factor * c
        norm = math.sqrt(norm2) or 1.0  # no known n-gram: the intercepts alone
        return [s / norm + b for s, b in zip(sums, self.intercepts, strict=True)]

    def probabilities(self, text: str) -> dict[str, float]:
        """P(category) for each category code (a softmax over the decision values)."""
        return softmax(self.classes, self.scores(text))

    def best(self, text: str) -> tuple[str, float]:
        """The most probable category code and its probability."""
        probs = self.probabilities(text)
        code = max(self.classes, key=lambda c: probs[c])  # ties: the first class
        return code, probs[code]


def model_from_document(doc: Any, *, lexicon: Lexicon | None = None) -> CategoryModel:
    """Check a parsed model document and build the model; ValueError says what is wrong.

    With ``lexicon``, every class must be one of its category codes (a model trained
    before a category was renamed or removed is refused, not half applied).
    """
    if not isinstance(doc, dict):
        raise ValueError("the top level must be a JSON object")
    if doc.get("format") != FORMAT:
        raise ValueError(f"format must be {FORMAT!r}, not {doc.get('format')!r}")
    missing = [k for k in ("version", "classes", "intercepts", "idf", "coef", "threshold",
                           "analyzer") if k not in doc]
    if missing:
        raise ValueError(f"missing key(s): {', '.join(missing)}")
    version = doc["version"]
    if not isinstance(version, str) or not version:
        raise ValueError("version must be a non-empty string")
    classes = doc["classes"]
    if not (isinstance(classes, list) and len(classes) >= 2
            and all(isinstance(c, str) for c in classes) and len(set(classes)) == len(classes)):
        raise ValueError("classes must be a list of at least two distinct category codes")
    if lexicon is not None:
        unknown = sorted(c for c in classes if lexicon.category(c) is None)
        if unknown:
            raise ValueError(f"class(es) not in categories.yaml: {', '.join(unknown)}")
    width = len(classes)
    intercepts = doc["intercepts"]
    if not isinstance(intercepts, list) or len(intercepts) != width:
        raise ValueError(f"intercepts must be a list of {width} numbers (one per class)")
    if not isinstance(doc["analyzer"], dict) or "kind" not in doc["analyzer"]:
        raise ValueError("analyzer.kind must be 'char' (the only one this reader computes)")
    nmin, nmax, lowercase, sublinear = analyzer_settings(doc["analyzer"])
    idf_doc = doc["idf"]
    if not isinstance(idf_doc, dict) or not idf_doc:
        raise ValueError("idf must be a non-empty object of n-gram → idf")
    idf = {str(g): number(v, f"idf of {g!r}") for g, v in idf_doc.items()}
    coef_doc = doc["coef"]
    if not isinstance(coef_doc, dict) or set(coef_doc) - set(classes):
        raise ValueError("coef must be an object of category code (one of classes) → "
                         "{n-gram: coefficient}")
    rows: dict[str, list[tuple[int, float]]] = {}
    for k, code in enumerate(classes):
        grams = coef_doc.get(code, {})
        if not isinstance(grams, dict):
            raise ValueError(f"coef of {code} must be an object of n-gram → coefficient")
        for gram, value in grams.items():
            if gram not in idf:
                raise ValueError(f"coef of {code}: n-gram {gram!r} has no idf")
            rows.setdefault(gram, []).append((k, number(value, f"coef of {code}, {gram!r}")))
    threshold = probability(doc["threshold"], "threshold")
    fallback_threshold = probability(doc.get("fallback_threshold", threshold),
                                     "fallback_threshold")
    cv = doc.get("cv")
    return CategoryModel(
        version=version,
        classes=tuple(classes),
        intercepts=tuple(number(v, "intercepts") for v in intercepts),
        idf=idf,
        weights={g: tuple(r) for g, r in rows.items()},
        threshold=threshold,
        fallback_threshold=fallback_threshold,
        ngram_min=nmin,
        ngram_max=nmax,
        lowercase=lowercase,
        sublinear_tf=True if sublinear is None else sublinear,
        cv=cv if isinstance(cv, dict) else None,
        lexicon=lexicon,
    )


def load_category_model(path: Path, lexicon: Lexicon | None = None) -> CategoryModel:
    """Read and check a category model file (against ``lexicon``'s categories if given;
    :func:`apply_category_model` needs it).

    Raises:
        CategoryModelError: naming the file and what is wrong with it.
    """
    doc = read_json(path, CategoryModelError)
    try:
        return model_from_document(doc, lexicon=lexicon)
    except ValueError as err:
        raise CategoryModelError(f"{path}: {err} (rebuild it with `hotline routing "
                                 "learn-categories --force`)") from None


def apply_category_model(cl: Classification, model: CategoryModel | None, content: str
                         ) -> Classification:
    """The lexicon's classification with the model's category where the model is sure.

    Left alone: no model, an operator's category hint (a person who heard the caller
    outranks a statistical guess), P(top category) below the model's threshold (its
    ``fallback_threshold`` where the lexicon found no category), or a model that names
    the fallback itself (it replaces a category, never removes one). Where
    the category changes, kind and tier are derived again by the lexicon's own rules
    (:func:`classify` with the new category): a kind the text does not state follows the
    new category's default, the tier follows its deadline unless an emergency, an urgent
    cue or the operator's urgency hint set it; a T2H is never lowered. The change is
    recorded in ``matched``. Call it before the tier model, which may still raise to T2H.

    Raises:
        ValueError: ``model`` was loaded without a lexicon (kind and tier cannot be derived).
    """
    if model is None or "category" in cl.hints_used:
        return cl
    lexicon = model.lexicon
    if lexicon is None:
        raise ValueError("the category model was loaded without a lexicon: "
                         "load_category_model(path, lexicon)")
    # The matter is what comes before an aside the lexicon set apart ("…另外，门口的违停"),
    # without the phrases the lexicon calls neutral.
    code, p = model.best(lexicon.without_neutral(
        content[:cl.aside_at] if cl.aside_at is not None else content))
    fallback = lexicon.fallback.code
    # Where the lexicon found nothing, its fallback is rarely right and any right answer
    # is a gain: a lower threshold, chosen by cross-validation for that case.
    threshold = model.fallback_threshold if cl.category.code == fallback else model.threshold
    if p < threshold or code in (cl.category.code, fallback):
        return cl
    if cl.category.code != fallback and cl.category.code not in model.classes:
        # The model never learned this category (one added after it was trained): its
        # reading is of the nearest category it knows, not evidence against the lexicon's.
        return cl
    if cl.category.keeps_from_model(code, content):
        return cl
    again = classify(lexicon, content,
                     kind_hint=cl.kind if "kind" in cl.hints_used else None,
                     category_hint=code,
                     urgency_hint=cl.tier if "urgency" in cl.hints_used else None)
    tier = T2H if cl.tier == T2H else again.tier
    # A guess where the lexicon found nothing, below the model's own threshold, keeps the
    # case's category consistent but is no reason to dispatch without a person.
    guess = p if p < model.threshold else 0.0
    return replace(again, tier=tier, urgent=cl.urgent or again.urgent, category_guess_p=guess,
                   hints_used=list(cl.hints_used), hints_refused=list(cl.hints_refused),
                   matched=[*cl.matched, f"category model: {code} p={p:.2f} "
                                         f"(lexicon: {cl.category.code})"])
