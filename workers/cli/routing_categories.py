"""``hotline routing learn-categories``: train the learned category model (issue 29).

Registered on the ``routing`` group by ``workers/cli/main.py``
(``routing_app.command("learn-categories")(learn_categories)``), so that this command
lives apart from ``workers/cli/routing.py``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from activities.dispatch.category_model import (
    CATEGORY_MODEL_FILE,
    CategoryModel,
    CategoryModelError,
    apply_category_model,
    load_category_model,
    model_from_document,
)
from activities.dispatch.classify import classify
from activities.dispatch.config import load_config
from activities.dispatch.consistency import TARGET
from activities.dispatch.evaluation import EvalError, Labelled, load_labelled
from activities.dispatch.lexicon import Lexicon
from activities.dispatch.training import TrainingError
from workers.cli.failures import EXIT_BAD_FILE, EXIT_BAD_INPUT
from workers.cli.output import fail
from workers.cli.routing import promote_model

# What it trains on and compares on, relative to the repository.
LABELLED = ("tests/data/routing_labelled.jsonl",)
# Blind phrasing sets join once scored (no longer blind); the newest blind one never does.
PHRASINGS = ("tests/data/retired/phrasings_v1.jsonl", "tests/data/retired/phrasings_v2.jsonl",
             "tests/data/retired/phrasings_v3.jsonl", "tests/data/retired/phrasings_v4.jsonl",
             "tests/data/retired/phrasings_v5.jsonl", "tests/data/retired/phrasings_v6.jsonl",
             "tests/data/retired/phrasings_v7.jsonl", "tests/data/retired/phrasings_v8.jsonl",
             "tests/data/retired/phrasings_v9.jsonl", "tests/data/retired/phrasings_v10.jsonl",
             "tests/data/retired/phrasings_v11.jsonl", "tests/data/retired/phrasings_v12.jsonl",
             "tests/data/retired/phrasings_v13.jsonl",
             "tests/data/retired/phrasings_v14.jsonl",
             "tests/data/retired/phrasings_v15.jsonl",
             "tests/data/retired/phrasings_v16.jsonl",
             "tests/data/retired/phrasings_v17.jsonl",
             "tests/data/retired/phrasings_v18.jsonl",
             "tests/data/retired/phrasings_v19.jsonl",
             "tests/data/retired/phrasings_v20.jsonl",
             "tests/data/retired/phrasings_v21.jsonl",
             "tests/data/retired/phrasings_v22.jsonl",
             "tests/data/retired/phrasings_v23.jsonl",
             "tests/data/retired/phrasings_v24.jsonl",
             "tests/data/retired/phrasings_v25.jsonl",
             "tests/data/retired/phrasings_v26.jsonl",
             "tests/data/retired/phrasings_v27.jsonl",
             "tests/data/retired/phrasings_v28.jsonl",
             "tests/data/dev/phrasings_dev_v3.jsonl", "tests/data/dev/phrasings_dev_v4.jsonl",
             "tests/data/dev/phrasings_dev_v5.jsonl", "tests/data/dev/phrasings_dev_v6.jsonl",
             "tests/data/dev/phrasings_dev_v7.jsonl", "tests/data/dev/phrasings_dev_v8.jsonl")
TYPE_LABELS = "tests/data/phrasing_categories.yaml"
HOLDOUT = "tests/data/routing_holdout.jsonl"


def _fail(message: str, code: int = EXIT_BAD_FILE) -> typer.Exit:
    return fail(f"error: {message}", code)


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def holdout_accuracy(lexicon: Lexicon, model: CategoryModel | None,
                     records: list[Labelled]) -> int:
    """How many held-out requests get the right category (the lexicon, with the model
    applied as the worker applies it, the operator's hints included)."""
    right = 0
    for rec in records:
        cl = classify(lexicon, rec.content, kind_hint=rec.hints.kind,
                      category_hint=rec.hints.category, urgency_hint=rec.hints.urgency)
        cl = apply_category_model(cl, model, rec.content)
        right += cl.category.code == rec.expect.category
    return right


def learn_categories(
    labelled: list[Path] = typer.Option(
        [], "--labelled", dir_okay=False,
        help="Labelled JSON Lines (expect.category) to train on (repeatable; default "
             "tests/data/routing_labelled.jsonl)."),
    phrasings: list[Path] = typer.Option(
        [], "--phrasings", dir_okay=False,
        help="Phrasing sets (problem_type) to train on (repeatable; default "
             "phrasings_v1–_v8 under tests/data/retired, phrasings_dev_v3–_v6 "
             "under tests/data/dev)."),
    labels: Path | None = typer.Option(
        None, "--labels", dir_okay=False,
        help=f"Problem type → category code (default {TYPE_LABELS})."),
    holdout: Path | None = typer.Option(
        None, dir_okay=False, help=f"Held-out labelled set (default {HOLDOUT})."),
    out: Path | None = typer.Option(
        None, dir_okay=False,
        help=f"Model file (default: {CATEGORY_MODEL_FILE} in the config folder)."),
    force: bool = typer.Option(False, "--force",
                               help="Write the candidate even if it does not score better."),
    config_dir: Path | None = typer.Option(None, help="Config folder (default: settings)."),
) -> None:
    """Train the category model beside the lexicon; replace the current one only if it
    scores better.

    Both are measured beside the lexicon on the held-out set (never trained on): the
    share of requests with the right category. The file is JSON and the same data gives
    the same bytes. Takes about a minute (cross-validation fits the model six times).
    """
    from activities.dispatch.category_training import (
        MAX_FILE_BYTES,
        dumps,
        read_examples,
        read_type_labels,
        train,
    )
    from workers.runtime.settings import REPO_ROOT, Settings

    folder = config_dir or Settings().config_dir
    if not folder.is_dir():
        raise _fail(f"{folder}: no such config folder")
    target = out or folder / CATEGORY_MODEL_FILE
    sets = labelled or [REPO_ROOT / p for p in LABELLED]
    phrasing_sets = phrasings or [REPO_ROOT / p for p in PHRASINGS]
    labels_file = labels or REPO_ROOT / TYPE_LABELS
    held = holdout or REPO_ROOT / HOLDOUT
    for path in [*sets, *phrasing_sets, labels_file, held]:
        if not path.is_file():
            raise _fail(f"{path}: no such file")
    if held.resolve() in {p.resolve() for p in [*sets, *phrasing_sets]}:
        raise _fail(f"{held} is the held-out set: it cannot also be trained on",
                    EXIT_BAD_INPUT)
    lexicon = load_config(folder, with_model=False).lexicon
    try:
        records = load_labelled(held)
        examples, sources = read_examples(
            sets, phrasing_sets, read_type_labels(labels_file), root=REPO_ROOT,
            held_out=frozenset(r.content for r in records),
            known={c.code for c in lexicon.categories})
    except (EvalError, TrainingError, ValueError) as err:
        raise _fail(str(err)) from None

    current: CategoryModel | None = None
    if target.exists():
        try:
            current = load_category_model(target, lexicon)
        except CategoryModelError as err:
            if not force:
                raise _fail(f"{err}; --force replaces it") from None
            typer.echo(f"the current model is unreadable and will be replaced: {err}")

    typer.echo(f"training on {len(examples)} texts "
               f"({', '.join(f'{s.file}: {s.examples}' for s in sources)}) …")
    if leaked := sum(s.held_out for s in sources):
        typer.echo(f"left out {leaked} texts that are also in {held.name}")
    try:
        doc = train(examples, sources,
                    lexicon_category=lambda text: classify(lexicon, text).category.code,
                    fallback=lexicon.fallback.code)
    except TrainingError as err:
        raise _fail(str(err)) from None
    candidate = model_from_document(doc, lexicon=lexicon)
    cv = doc["cv"]
    typer.echo(f"cross-validation ({cv['folds']} folds): category right, lexicon alone "
               f"{_pct(cv['accuracy_lexicon_alone'])}, with the model "
               f"{_pct(cv['accuracy_lexicon_with_model'])} (model alone "
               f"{_pct(cv['accuracy_model_alone'])}); replaces at P ≥ {cv['threshold']:g} "
               f"(≥ {cv['fallback_threshold']:g} where the lexicon found none); changed "
               f"{cv['changed']}: {cv['changed_right']} to the right category, "
               f"{cv['changed_from_right']} away from it")
    if types := cv.get("types"):
        low = sorted((share, kind) for kind, share in types.items() if share < TARGET)
        typer.echo(f"out-of-fold consistency (share in the modal category, lexicon with the "
                   f"model): {len(types) - len(low)} of {len(types)} problem types ≥ "
                   f"{TARGET:.0%}" + (f"; below: {', '.join(f'{k} {_pct(v)}' for v, k in low)}"
                                       if low else ""))

    table = Table(title=f"Beside the lexicon, on {held.name} ({len(records)} requests)")
    for column in ("model", "version", "thresholds", "category right"):
        table.add_column(column, justify="left" if column == "model" else "right")
    scores: dict[str, int] = {}
    for name, model in (("lexicon alone", None), ("current", current),
                        ("candidate", candidate)):
        if name == "current" and model is None:
            table.add_row(name, "—", "—", "—")
            continue
        scores[name] = right = holdout_accuracy(lexicon, model, records)
        table.add_row(name, model.version[:12] if model else "—",
                      f"{model.threshold:g} / {model.fallback_threshold:g}" if model else "—",
                      f"{right}/{len(records)} ({_pct(right / len(records))})")
    Console().print(table)

    promote_model(target, dumps(doc), candidate=candidate.version,
                  current=None if current is None else current.version,
                  better=current is None or scores["candidate"] > scores["current"],
                  force=force, held_out=held.name, max_bytes=MAX_FILE_BYTES,
                  too_big="lower max_features in activities/dispatch/category_training.py "
                          "PARAMS")
