"""Train the learned category model (``hotline routing learn-categories``); needs scikit-learn.

Character n-grams (1–3) weighted by TF-IDF and a multinomial logistic regression over our
category codes, like the tier model (:mod:`activities.dispatch.training`). Two fits: the
first over every n-gram seen in ``min_df`` texts picks the ``max_features`` n-grams that
weigh most for some category; the second is fitted on those alone, and its coefficients
below ``prune`` are dropped. The file then holds a few thousand n-grams (it shares the
config ConfigMap, 1 MiB, with every other config file), and every n-gram it holds counts
in the text's length exactly as it did in training.

The model replaces the lexicon's category only where P(top category) reaches a threshold.
It is chosen by stratified cross-validation, on the model as it will be written (pruned,
rounded, predicted by :mod:`activities.dispatch.category_model`): the threshold at which
the lexicon with the model names the right category most often on the held-out folds
(a replacement must gain more than it loses). The figures, and those of the lexicon with
and without the model on the same folds, go into the file.

Deterministic: the same data and parameters give the same file, byte for byte, and the
same ``version`` (sha256 of the data and parameters).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from activities.dispatch.category_model import FORMAT, CategoryModel, model_from_document
from activities.dispatch.textmodel import dumps_model, model_text
from activities.dispatch.training import (
    TrainingError,
    json_lines,
    require_sklearn,
    stratified_folds,
)

# The category model has a ConfigMap of its own (hotline-category-model; beside the rules
# it had taken hotline-config to 95 % of 1 MiB). It is kept under this budget all the same,
# and `routing learn-categories` refuses a bigger candidate: the one candidate over it
# (349 KiB, round 21) scored no better.
MAX_FILE_BYTES = 250 * 1024

PARAMS: dict[str, Any] = {
    "ngram_min": 1,
    "ngram_max": 3,
    "min_df": 2,
    "sublinear_tf": True,
    "C": 40.0,
    "class_weight": "balanced",  # a category with 5 examples counts as much as one with 60
    "max_iter": 3000,
    "max_features": 2600,  # n-grams kept after the first fit (by their largest |coef|)
    "prune": 0.4,          # coefficients below this are left out of the file
    "digits": 4,
    "folds": 5,
    "random_state": 0,
}


@dataclass(frozen=True)
class Example:
    """A text and its category; ``problem_type`` (phrasing sets only) groups the texts
    whose out-of-fold consistency the cross-validation reports."""

    text: str
    category: str
    problem_type: str = ""


@dataclass(frozen=True)
class Source:
    """One training file: how many texts it gave; how many were left out because they
    are in the held-out set."""

    file: str
    examples: int
    held_out: int = 0

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"file": self.file, "examples": self.examples}
        if self.held_out:
            entry["skipped_held_out"] = self.held_out
        return entry


def read_type_labels(path: Path) -> dict[str, str]:
    """The reviewed mapping of phrasing sets' problem types to our category codes."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise TrainingError(f"{path}: cannot read: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise TrainingError(f"{path}: not valid YAML: {err}") from None
    types = doc.get("types") if isinstance(doc, dict) else None
    if not (isinstance(types, dict) and types
            and all(isinstance(k, str) and isinstance(v, str) for k, v in types.items())):
        raise TrainingError(f"{path}: needs `types:` mapping each problem type to a "
                            "category code")
    return dict(types)


def _name(path: Path, root: Path | None) -> str:
    name = path.as_posix()
    if root is not None:
        with contextlib.suppress(ValueError):  # outside root: the name as given
            name = path.resolve().relative_to(root.resolve()).as_posix()
    return name


def read_examples(labelled: Sequence[Path], phrasings: Sequence[Path],
                  type_labels: dict[str, str], *, root: Path | None = None,
                  held_out: Collection[str] = (), known: Collection[str] | None = None
                  ) -> tuple[list[Example], list[Source]]:
    """Texts with a category: labelled sets (``content``, ``expect.category``) and phrasing
    sets (``content``, ``problem_type`` mapped by ``type_labels``). Texts in ``held_out``
    are left out and counted; with ``known``, a category outside it is an error.

    Raises:
        TrainingError: naming the file and line.
    """
    examples: list[Example] = []
    sources: list[Source] = []
    for path, phrasing in [*((p, False) for p in labelled), *((p, True) for p in phrasings)]:
        got = leaked = 0
        for number, rec in json_lines(path):
            try:
                text = model_text(rec["content"])
                if phrasing:
                    kind = rec["problem_type"]
                    if kind not in type_labels:
                        raise TrainingError(f"{path}:{number}: problem type {kind!r} has no "
                                            "category in the type labels file")
                    category = type_labels[kind]
                else:
                    category = rec["expect"]["category"]
            except (KeyError, TypeError) as err:
                raise TrainingError(f"{path}:{number}: not a labelled request or phrasing "
                                    f"({err!r})") from None
            if not (isinstance(text, str) and text.strip() and isinstance(category, str)):
                raise TrainingError(f"{path}:{number}: needs a content and a category")
            if known is not None and category not in known:
                raise TrainingError(f"{path}:{number}: {category!r} is not a category of "
                                    "categories.yaml")
            if text in held_out:
                leaked += 1
                continue
            examples.append(Example(text, category, kind if phrasing else ""))
            got += 1
        sources.append(Source(_name(path, root), got, leaked))
    if not examples:
        raise TrainingError("no text with a category to train on")
    return examples, sources


def data_version(examples: Sequence[Example], params: dict[str, Any]) -> str:
    """sha256 of the training data (in order) and the parameters."""
    canonical = json.dumps({"data": [[e.text, e.category] for e in examples],
                            "params": params},
                           ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _round(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def _fit(texts: Sequence[str], labels: Sequence[str], params: dict[str, Any],
         vocabulary: Sequence[str] | None = None) -> tuple[Any, Any]:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(
        analyzer="char", lowercase=True, ngram_range=(params["ngram_min"], params["ngram_max"]),
        min_df=1 if vocabulary is not None else params["min_df"], vocabulary=vocabulary,
        sublinear_tf=params["sublinear_tf"], norm="l2", smooth_idf=True, dtype=np.float64)
    matrix = vectorizer.fit_transform(texts)
    lr = LogisticRegression(C=params["C"], class_weight=params["class_weight"],
                            max_iter=params["max_iter"], random_state=params["random_state"])
    lr.fit(matrix, labels)
    return vectorizer, lr


def fit(examples: Sequence[Example], params: dict[str, Any] = PARAMS) -> tuple[Any, Any]:
    """The second fit's vectorizer and logistic regression (scikit-learn objects)."""
    require_sklearn()
    texts, labels = [e.text for e in examples], [e.category for e in examples]
    if len(set(labels)) < 2:
        raise TrainingError("needs texts of at least two categories")
    vectorizer, lr = _fit(texts, labels, params)
    weight = abs(lr.coef_).max(axis=0)
    names = vectorizer.get_feature_names_out()
    ranked = sorted(range(len(names)), key=lambda j: (-float(weight[j]), names[j]))
    keep = sorted(str(names[j]) for j in ranked[:params["max_features"]])
    return _fit(texts, labels, params, vocabulary=keep)


def _document(vectorizer: Any, lr: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The model's numbers as the file holds them (pruned, rounded)."""
    digits, prune = params["digits"], params["prune"]
    classes = [str(c) for c in lr.classes_]
    grams = vectorizer.get_feature_names_out()
    idf = {str(g): _round(float(v), digits) for g, v in zip(grams, vectorizer.idf_, strict=True)}
    coef: dict[str, dict[str, float]] = {}
    for k, code in enumerate(classes):
        row = lr.coef_[k]
        coef[code] = {str(grams[j]): _round(float(row[j]), digits)
                      for j in range(len(grams)) if abs(float(row[j])) >= prune}
    return {
        "analyzer": {"kind": "char", "ngram_min": params["ngram_min"],
                     "ngram_max": params["ngram_max"], "lowercase": True,
                     "sublinear_tf": params["sublinear_tf"], "norm": "l2"},
        "classes": classes,
        "intercepts": [_round(float(b), digits) for b in lr.intercept_],
        "idf": idf,
        "coef": coef,
    }


def _candidate(examples: Sequence[Example], params: dict[str, Any]) -> CategoryModel:
    vectorizer, lr = fit(examples, params)
    return model_from_document({"format": FORMAT, "version": "cv", "threshold": 1.0,
                                **_document(vectorizer, lr, params)})


def choose_threshold(p_top: Sequence[float], right: Sequence[bool],
                     lexicon_right: Sequence[bool]) -> float:
    """The threshold on P(top category) with the most right answers, the model's category
    at or above it and the lexicon's below (ties: the higher threshold).

    Right answers, not the precision of confident predictions: most of those agree with
    the lexicon, so a precision target lets through replacements that are often wrong."""
    best, best_right = 1.0, sum(lexicon_right)
    for t in sorted(set(p_top), reverse=True):
        got = sum(ok if p >= t else lex
                  for p, ok, lex in zip(p_top, right, lexicon_right, strict=True))
        if got > best_right:
            best, best_right = t, got
    return max(math.floor(best * 1e4) / 1e4, 1e-4)


def combine(lexicon: str, model: tuple[str, float], *, threshold: float,
            fallback_threshold: float, fallback: str) -> str:
    """The category :func:`~activities.dispatch.category_model.apply_category_model`
    keeps: the model's where it is sure enough (and names a category), else the lexicon's."""
    code, p = model
    if code == fallback:
        return lexicon
    return code if p >= (fallback_threshold if lexicon == fallback else threshold) else lexicon


def cross_validate(examples: Sequence[Example], params: dict[str, Any] = PARAMS, *,
                   lexicon_category: Callable[[str], str], fallback: str
                   ) -> tuple[dict[str, Any], list[tuple[str, float]]]:
    """Figures from stratified folds, and each example's out-of-fold (category, P).

    ``lexicon_category``: the lexicon's category of a text; ``fallback``: the lexicon's
    category when nothing matches. The threshold is chosen on the texts where the lexicon
    found a category (the model replaces it), the fallback threshold
    on those where it found none (any right answer is a gain). The figures also say how
    often the lexicon alone, and the lexicon with the model, name the right category.
    """
    require_sklearn()

    labels = [e.category for e in examples]
    counts = {c: labels.count(c) for c in set(labels)}
    folds = params["folds"]
    rare = sorted(c for c, n in counts.items() if n < 2)
    if rare or len(examples) < 2 * folds:
        raise TrainingError(f"too few texts to cross-validate ({len(examples)}; categories "
                            f"with one text: {', '.join(rare) or 'none'})")
    oof: list[tuple[str, float]] = [("", 0.0)] * len(examples)
    for train_idx, test_idx in stratified_folds(labels, folds, params["random_state"]):
        model = _candidate([examples[i] for i in train_idx], params)
        for i in test_idx:
            oof[i] = model.best(examples[i].text)
    lexicon = [lexicon_category(e.text) for e in examples]
    found = [i for i, lex in enumerate(lexicon) if lex != fallback and oof[i][0] != fallback]
    none = [i for i, lex in enumerate(lexicon) if lex == fallback and oof[i][0] != fallback]
    threshold = choose_threshold([oof[i][1] for i in found],
                                 [oof[i][0] == labels[i] for i in found],
                                 [lexicon[i] == labels[i] for i in found])
    fallback_threshold = choose_threshold(
        [oof[i][1] for i in none], [oof[i][0] == labels[i] for i in none],
        [labels[i] == fallback for i in none])
    combined = [combine(lex, m, threshold=threshold, fallback_threshold=fallback_threshold,
                        fallback=fallback) for lex, m in zip(lexicon, oof, strict=True)]
    replaced = [i for i in found if oof[i][1] >= threshold and oof[i][0] != lexicon[i]]
    n = len(examples)
    figures: dict[str, Any] = {
        "folds": folds, "examples": n, "threshold": threshold,
        "fallback_threshold": fallback_threshold,
        "accuracy_model_alone": round(sum(c == lab for (c, _), lab in zip(oof, labels,
                                                                          strict=True)) / n, 4),
        "accuracy_lexicon_alone": round(sum(c == lab for c, lab in zip(lexicon, labels,
                                                                       strict=True)) / n, 4),
        "accuracy_lexicon_with_model": round(
            sum(c == lab for c, lab in zip(combined, labels, strict=True)) / n, 4),
        "lexicon_found_none": len(none),
        "changed": sum(c != lex for c, lex in zip(combined, lexicon, strict=True)),
        "changed_right": sum(c != lex and c == lab
                             for c, lex, lab in zip(combined, lexicon, labels, strict=True)),
        "changed_from_right": sum(c != lex and lex == lab
                                  for c, lex, lab in zip(combined, lexicon, labels,
                                                         strict=True)),
        "replaced_precision": round(sum(oof[i][0] == labels[i] for i in replaced)
                                    / len(replaced), 4) if replaced else None,
    }
    if types := type_consistency(examples, combined):
        figures["types"] = types
    return figures, oof


def type_consistency(examples: Sequence[Example], categories: Sequence[str]
                     ) -> dict[str, float]:
    """Per problem type (phrasing sets), the share of its texts in its modal category —
    the consistency measure of :mod:`activities.dispatch.consistency`, here on the
    out-of-fold categories (each text's by a model not trained on it)."""
    by_type: dict[str, Counter[str]] = {}
    for example, category in zip(examples, categories, strict=True):
        if example.problem_type:
            by_type.setdefault(example.problem_type, Counter())[category] += 1
    return {kind: round(counts.most_common(1)[0][1] / sum(counts.values()), 4)
            for kind, counts in sorted(by_type.items())}


def train(examples: Sequence[Example], sources: Sequence[Source],
          params: dict[str, Any] = PARAMS, *, lexicon_category: Callable[[str], str],
          fallback: str) -> dict[str, Any]:
    """The model document: fitted on every example, thresholds from cross-validation."""
    trainer = require_sklearn()
    cv, _ = cross_validate(examples, params, lexicon_category=lexicon_category,
                           fallback=fallback)
    vectorizer, lr = fit(examples, params)
    doc = {
        "format": FORMAT,
        "version": data_version(examples, params),
        "created_from": [s.as_dict() for s in sources],
        "params": params,
        "trainer": {"scikit-learn": trainer},
        **_document(vectorizer, lr, params),
        "threshold": cv["threshold"],
        "fallback_threshold": cv["fallback_threshold"],
        "cv": cv,
    }
    model_from_document(doc)  # what the worker will read must load
    return doc


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def dumps(doc: dict[str, Any]) -> str:
    """The model file's text: sorted keys; ``idf`` one n-gram a line and ``coef`` one
    category a line (a readable diff between versions); the rest on its key's line."""
    return dumps_model(doc, ("idf", "coef"), value=_compact)
