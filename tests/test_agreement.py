"""Agreement between labellers: a label acts as a decision would, and each source is scored
against each other with the blind score's measures (a small made-up sample), and the
command reads the committed samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from activities.dispatch.agreement import (
    READERS,
    SYSTEM,
    WRITER,
    agreement,
    consensus,
    label_decision,
    load_labels,
)
from activities.dispatch.blind import BlindExpected, BlindItem, Decision
from activities.dispatch.evaluation import EvalError
from workers.cli.main import app

AGREEMENT = Path(__file__).parent / "data" / "agreement"


def _expect(**fields: object) -> BlindExpected:
    return BlindExpected(**{"tier": None, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(("expect", "decision"), [
    (_expect(tier="T2H", redirect="120"), Decision("REDIRECTED", None, None, None, "120")),
    (_expect(no_dispatch="CONSULTATION"), Decision("HELD", None, None, None)),
    (_expect(tier="T7D", lead="bj-gas"), Decision("DISPATCH", "T7D", "bj-gas", None)),
    # A street's code is a unit; a district's code or no place is the desk's to decide.
    (_expect(tier="T24H", lead="110105026", street="110105026", street_named=True),
     Decision("DISPATCH", "T24H", "110105026", "110105026")),
    (_expect(tier="T24H", lead="110105"), Decision("REVIEW", "T24H", "110105", None)),
    (_expect(tier="T24H", lead="UNLOCATED"), Decision("REVIEW", "T24H", "UNLOCATED", None)),
])
def test_a_label_acts_as_a_decision_would(expect: BlindExpected, decision: Decision) -> None:
    assert label_decision(expect) == decision


def _item(i: int, **expect: object) -> BlindItem:
    return BlindItem(id=f"x{i}", content="…", expect=_expect(**expect))


SAMPLE = [_item(1, tier="T2H", lead="bj-gas"),
          _item(2, tier="T7D", lead="bj-housing"),
          _item(3, tier="T24H", redirect=None, lead="110105026")]
OTHER = {"x1": _expect(tier="T2H", lead="bj-gas"),
         "x2": _expect(tier="T15D", lead="bj-planning"),
         "x3": _expect(tier="T2H", redirect="119")}


def test_each_source_is_scored_against_each_other() -> None:
    system = {"x1": Decision("DISPATCH", "T24H", "bj-gas", None),
              "x2": Decision("DISPATCH", "T7D", "bj-housing", None),
              "x3": Decision("REVIEW", "T24H", "110105026", None)}
    got = {(c.reference, c.compared): c.report
           for c in agreement(SAMPLE, {"other": OTHER}, lambda item: system[item.id])}
    assert set(got) == {(WRITER, "other"), (WRITER, SYSTEM), ("other", WRITER),
                        ("other", SYSTEM)}
    writer_other = got[(WRITER, "other")]
    # x3 was transferred by the other labeller: its tier counts as missed, no lead judged.
    assert (writer_other.tier.ok, writer_other.tier.of) == (1, 3)
    assert (writer_other.lead.ok, writer_other.lead.of) == (1, 2)
    other_writer = got[("other", WRITER)]
    assert (other_writer.redirected.ok, other_writer.redirected.of) == (0, 1)
    assert (other_writer.t2h_recall.ok, other_writer.t2h_recall.of) == (1, 1)
    writer_system = got[(WRITER, SYSTEM)]
    assert (writer_system.tier.ok, writer_system.lead.ok, writer_system.lead.of) == (2, 2, 2)


def test_labels_must_cover_the_sample_exactly(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    lines = [{"id": i, "expect": {"tier": "T7D", "lead": "bj-gas"}} for i in ("x1", "x2")]
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    with pytest.raises(EvalError, match="no label for 1 request"):
        load_labels(path, SAMPLE)
    path.write_text(json.dumps({"id": "x9", "expect": {"tier": "T7D"}}), encoding="utf-8")
    with pytest.raises(EvalError, match="x9 is not in the sample"):
        load_labels(path, SAMPLE)


def test_the_committed_samples_are_labelled_by_two_relabellers_each() -> None:
    from activities.dispatch.blind import load_blind

    samples = sorted(AGREEMENT.glob("sample_*.jsonl"))
    assert samples
    for sample in samples:
        items = load_blind(sample)
        tag = sample.stem.removeprefix("sample_")
        relabels = sorted(AGREEMENT.glob(f"relabel_{tag}_*.jsonl"))
        assert len(relabels) == 2
        for path in relabels:
            assert len(load_labels(path, items)) == len(items)


def test_the_command_compares_every_source_on_a_committed_sample() -> None:
    sample = AGREEMENT / "sample_v24_v27.jsonl"
    labels = sorted(AGREEMENT.glob("relabel_v24_v27_*.jsonl"))
    result = CliRunner().invoke(app, ["routing", "agreement", str(sample), "--json",
                                      *[arg for path in labels for arg in ("--labels", str(path))]])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    # three references, each against two others and the system; then the writer and the
    # system against the readers' consensus
    assert len(rows) == 11
    assert [(r["reference"], r["compared"]) for r in rows[-2:]] == [("readers", "writer"),
                                                                    ("readers", "system")]
    for row in rows:
        assert row["tier"]["of"] > 150 and 0 < row["tier"]["ok"] <= row["tier"]["of"]


def test_a_missing_labels_file_is_one_friendly_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["routing", "agreement",
                                      str(AGREEMENT / "sample_v24_v27.jsonl"),
                                      "--labels", str(tmp_path / "nope.jsonl")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "nope.jsonl" in result.stderr


def test_the_readers_consensus_is_where_every_relabeller_agrees() -> None:
    second = {"x1": _expect(tier="T2H", lead="bj-gas", problem="gas"),  # agrees
              "x2": _expect(tier="T7D", lead="bj-planning"),            # another tier
              "x3": _expect(tier="T2H", redirect="119")}                # agrees
    agreed = consensus({"one": OTHER, "two": second})
    assert set(agreed) == {"x1", "x3"}
    assert consensus({"one": OTHER}) == {}
    got = {(c.reference, c.compared): c.report
           for c in agreement(SAMPLE, {"one": OTHER, "two": second})}
    readers_writer = got[(READERS, WRITER)]
    # On x1 and x3 only: the writer has x1 right and dispatched x3 the readers transfer.
    assert (readers_writer.tier.ok, readers_writer.tier.of) == (1, 1)
    assert (readers_writer.redirected.ok, readers_writer.redirected.of) == (0, 1)
    assert (READERS, SYSTEM) not in got  # no system given
