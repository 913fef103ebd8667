"""How far independent labellers agree on the same requests, with the blind score's measures.

A blind set's score is a comparison with one writer's labels. To know what a score means,
a sample of retired blind requests is labelled again, blind, by people who never saw the
writers' labels or the rules (``tests/data/agreement/``). Each source of labels — the
writer, each relabeller, and the dispatch system — is then scored against each other as
if it were the reference, with :func:`activities.dispatch.blind.score`: a relabeller's
label acts as a decision would (a transfer, a request held, a dispatch to its lead). Where
careful readers agree with the writer on 86 % of tiers (docs/dispatch.md, round 22), a
machine's 86 % is as good as a second person's, and a target above that measures the
writer as much as the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from activities.dispatch.blind import (
    UNLOCATED,
    BlindExpected,
    BlindItem,
    BlindReport,
    Decision,
    score,
)
from activities.dispatch.evaluation import EvalError, read_jsonl

WRITER = "writer"
SYSTEM = "system"
READERS = "readers"  # the relabellers where they all agree
_DECIDING = ("tier", "redirect", "no_dispatch", "lead")


class LabelLine(BaseModel):
    """One relabeller's line: the request's id and how it should be dispatched."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    expect: BlindExpected


def load_labels(path: Path, sample: list[BlindItem]) -> dict[str, BlindExpected]:
    """A relabeller's labels by request id; every sample request labelled exactly once.

    Raises:
        EvalError: a bad line, a repeated id, an id not in the sample, or one missing.
    """
    ids = {item.id for item in sample}
    lines: list[LabelLine] = read_jsonl(
        path, LabelLine, lambda rec: None if rec.id in ids else f"{rec.id} is not in the sample")
    labels = {line.id: line.expect for line in lines}
    if missing := sorted(ids - labels.keys()):
        raise EvalError(f"{path}: no label for {len(missing)} request(s), e.g. {missing[0]}")
    return labels


def label_decision(expect: BlindExpected) -> Decision:
    """What a labeller's label does, as a dispatch decision: a transfer, a request held
    (no dispatch), a dispatch to its lead unit, or the desk where the label names no unit
    (no place given, or only a district)."""
    if expect.redirect:
        return Decision("REDIRECTED", None, None, expect.street, expect.redirect)
    if expect.no_dispatch:
        return Decision("HELD", None, None, expect.street)
    names_a_unit = expect.lead not in (None, UNLOCATED) and not _district_code(expect.lead)
    return Decision("DISPATCH" if names_a_unit else "REVIEW", expect.tier, expect.lead,
                    expect.street)


def _district_code(lead: str | None) -> bool:
    return lead is not None and len(lead) == 6 and lead.isdigit()


def consensus(relabels: Mapping[str, Mapping[str, BlindExpected]]) -> dict[str, BlindExpected]:
    """The requests every relabeller labels alike (tier, transfer, no-dispatch and lead),
    with that label: what careful readers of the words agree the request deserves."""
    labellers = list(relabels.values())
    if len(labellers) < 2:
        return {}
    first, *others = labellers
    return {rid: label for rid, label in first.items()
            if all(all(getattr(other[rid], f) == getattr(label, f) for f in _DECIDING)
                   for other in others)}


@dataclass(frozen=True)
class Comparison:
    """``compared``'s decisions scored against ``reference``'s labels."""

    reference: str
    compared: str
    report: BlindReport


def agreement(sample: list[BlindItem], relabels: Mapping[str, Mapping[str, BlindExpected]],
              system: Callable[[BlindItem], Decision] | None = None) -> list[Comparison]:
    """Every source scored against every other: the writer (the sample's own labels) and
    each relabeller as references; the others, and ``system`` where given, compared. With
    two relabellers or more, the writer and the system are also scored against the
    readers' consensus, on the requests where the relabellers all agree."""
    sources: dict[str, Mapping[str, BlindExpected]] = {
        WRITER: {item.id: item.expect for item in sample}, **relabels}
    comparisons = []
    for reference, labels in sources.items():
        items = [item.model_copy(update={"expect": labels[item.id]}) for item in sample]
        for compared, other in sources.items():
            if compared != reference:
                comparisons.append(Comparison(reference, compared,
                                              score(items, _acting_on(other))))
        if system is not None:
            comparisons.append(Comparison(reference, SYSTEM, score(items, system)))
    if agreed := consensus(relabels):
        items = [item.model_copy(update={"expect": agreed[item.id]})
                 for item in sample if item.id in agreed]
        comparisons.append(Comparison(READERS, WRITER, score(items, _acting_on(sources[WRITER]))))
        if system is not None:
            comparisons.append(Comparison(READERS, SYSTEM, score(items, system)))
    return comparisons


def _acting_on(labels: Mapping[str, BlindExpected]) -> Callable[[BlindItem], Decision]:
    """A decide function that acts on ``labels`` as a labeller would."""
    return lambda item: label_decision(labels[item.id])
