"""The learned dispatch model: reproducible training, a JSON file the worker reads without
scikit-learn, and how it is combined with the rules (it transfers, raises to T2H, chooses
among the slower tiers and holds back for the desk; it never lowers a T2H, never overrides
an operator, and a tiers-only model of format /1 may still only raise)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from activities.dispatch.config import load_config
from activities.dispatch.decide import classify_request, first_look
from activities.dispatch.learned import (
    CLASSES,
    MODEL_FILE,
    ModelError,
    TierModel,
    load_model,
    model_from_document,
)
from activities.dispatch.rules import TIERS, ModelRule
from activities.dispatch.textmodel import model_text
from activities.dispatch.training import (
    Example,
    Source,
    TrainingError,
    data_version,
    dumps,
    fit,
    label_of,
    read_examples,
    train,
)
from tests.fixed_models import reading
from workers.cli.routing import app
from workers.runtime.settings import REPO_ROOT, Settings

CONFIG_DIR = Settings().config_dir
CONFIG = load_config(CONFIG_DIR)
DAY = date(2026, 12, 6)
LABELLED = REPO_ROOT / "tests" / "data" / "routing_labelled.jsonl"
HOLDOUT = REPO_ROOT / "tests" / "data" / "routing_holdout.jsonl"
DEV_V2 = REPO_ROOT / "tests" / "data" / "dev" / "dispatch_dev_v2.jsonl"
RETIRED = REPO_ROOT / "tests" / "data" / "retired"
GAS_LEAK = "小区里有人家燃气泄漏，味道很大"       # the rules: T2H (an emergency keyword)
DANCING = "楼下小广场晚上跳广场舞太吵了"          # the rules: T24H


def _small() -> tuple[list[Example], list[Source]]:
    """Every second labelled and development request: every outcome, quick to train on."""
    examples, _ = read_examples([LABELLED, DEV_V2])
    subset = examples[::2]
    assert {e.label for e in subset} == set(CLASSES)
    return subset, [Source("small", len(subset), 0)]


@pytest.fixture(scope="module")
def small_doc() -> dict[str, Any]:
    return train(*_small())


def _fixed(scores: tuple[float, float, float, float], threshold: float = 0.5) -> TierModel:
    """A model that says the same whatever the text (its one feature is never found)."""
    return TierModel(version="fixed", classes=TIERS, intercepts=scores,
                     features={"\x00": (1.0, 0.0, 0.0, 0.0, 0.0)}, threshold=threshold)


def test_training_is_deterministic(small_doc: dict[str, Any]) -> None:
    examples, sources = _small()
    again = train(examples, sources)
    assert dumps(again) == dumps(small_doc)
    assert again["version"] == small_doc["version"] == data_version(examples, small_doc["params"])
    # Another label or another parameter is another version.
    flipped = [Example(examples[0].text, "T15D" if examples[0].label != "T15D" else "T7D"),
               *examples[1:]]
    assert data_version(flipped, small_doc["params"]) != small_doc["version"]
    assert data_version(examples, {**small_doc["params"], "C": 1.0}) != small_doc["version"]
    # The CV figures and the threshold are in the file.
    cv = small_doc["cv"]
    assert small_doc["t2h_threshold"] == cv["threshold"]
    assert {"t2h_recall", "t2h_precision", "tier_accuracy", "folds", "redirects_found",
            "no_dispatch_found"} <= set(cv)
    assert small_doc["classes"] == list(CLASSES)
    assert json.loads(dumps(small_doc)) == small_doc


def test_the_json_model_predicts_what_scikit_learn_does(small_doc: dict[str, Any]) -> None:
    examples, _ = _small()
    pipeline = fit(examples, small_doc["params"])
    model = model_from_document(json.loads(dumps(small_doc)))
    texts = [e.text for e in examples[:20]] + [
        GAS_LEAK, DANCING, "ABC  大写\n\n  和空白   混在一起", "𝔘", "",
        "孩子一个人在阳台外面的空调架上，家里没大人",
    ]
    classes = list(pipeline.classes_)
    for text, row in zip(texts, pipeline.predict_proba(texts), strict=True):
        got = model.probabilities(text)
        for name in CLASSES:
            # Coefficients and idf are rounded to 4 significant digits in the file.
            assert got[name] == pytest.approx(row[classes.index(name)], abs=5e-4), (text, name)


def test_the_shipped_model_loads_and_says_how_it_was_made() -> None:
    model = CONFIG.model
    assert model is not None and model.classes == CLASSES and model.decides_tier
    assert 0 < model.threshold < 1 and model.cv is not None
    assert model.redirect_threshold and model.no_dispatch_threshold
    doc = json.loads((CONFIG_DIR / MODEL_FILE).read_text(encoding="utf-8"))
    trained_on = {s["file"] for s in doc["created_from"]}
    assert trained_on >= {"tests/data/routing_labelled.jsonl",
                          "tests/data/retired/dispatch_blind_v1.jsonl"}
    # Never the held-out set of `routing learn`, and never a blind set.
    assert "tests/data/retired/dispatch_blind_v2.jsonl" not in trained_on
    assert not any(f.startswith("tests/data/blind/") for f in trained_on)
    assert len(model.version) == 64


def test_the_worker_needs_no_scikit_learn() -> None:
    code = ("import sys; from pathlib import Path\n"
            "from activities.dispatch.config import load_config\n"
            "from activities.dispatch.decide import first_look\n"
            f"cfg = load_config(Path({str(CONFIG_DIR)!r}))\n"
            "first_look(cfg, '楼道里的灯坏了好几天了')\n"
            "assert cfg.model is not None and 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON"),
    ('{"format": "hotline-tier-model/1"}', "missing key"),
    ("[]", "top level must be a JSON object"),
])
def test_a_malformed_model_file_is_refused_naming_it(tmp_path: Path, text: str,
                                                     message: str) -> None:
    path = tmp_path / MODEL_FILE
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ModelError, match=message) as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_a_model_with_a_wrong_row_or_threshold_is_refused(tmp_path: Path,
                                                          small_doc: dict[str, Any]) -> None:
    path = tmp_path / MODEL_FILE
    bad_row = {**small_doc, "features": {**small_doc["features"], "坏": [1.0, 2.0]}}
    path.write_text(json.dumps(bad_row), encoding="utf-8")
    with pytest.raises(ModelError, match="feature '坏' must be"):
        load_model(path)
    path.write_text(json.dumps({**small_doc, "t2h_threshold": 1.5}), encoding="utf-8")
    with pytest.raises(ModelError, match="t2h_threshold"):
        load_model(path)


def test_a_broken_model_stops_the_config_from_loading(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, folder)
    (folder / MODEL_FILE).write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(ModelError, match=f"{MODEL_FILE}: format"):
        load_config(folder)
    assert load_config(folder, with_model=False).model is None
    (folder / MODEL_FILE).unlink()
    assert load_config(folder).model is None  # no file: the rules alone


def test_the_model_only_raises_a_tier_and_says_so() -> None:
    never = replace(CONFIG, model=_fixed((-20.0, 0.0, 0.0, 20.0)))   # P(T2H) ≈ 0
    always = replace(CONFIG, model=_fixed((20.0, 0.0, 0.0, 0.0)))    # P(T2H) ≈ 1
    # What the rules call T2H stays T2H whatever the model says.
    assert classify_request(never, GAS_LEAK).tier == "T2H"
    assert classify_request(always, GAS_LEAK).matched == classify_request(never,
                                                                          GAS_LEAK).matched
    # A model sure of T2H raises, and the reason is recorded.
    assert classify_request(never, DANCING).tier == "T24H"
    raised = classify_request(always, DANCING)
    assert raised.tier == "T2H" and raised.matched[-1] == "model: P(T2H)=1.00 ≥ 0.5"
    # An operator's urgency hint is a person's decision: the model does not override it.
    assert classify_request(always, DANCING, urgency_hint="T7D").tier == "T7D"
    # A T2H case never waits at the desk, and the case records the model's version.
    look = first_look(always, DANCING, district="海淀区", street="学院路街道")
    assert look.classification.tier == "T2H" and look.routing_version == "fixed"
    assert first_look(replace(CONFIG, model=None), DANCING).routing_version == ""


def _write_model(path: Path, doc: dict[str, Any], **changes: Any) -> bytes:
    text = dumps({**doc, **changes}).encode()
    path.write_bytes(text)
    return text


def _learn(tmp_path: Path, out: Path, *extra: str) -> Any:
    train_file = tmp_path / "train.jsonl"
    lines = [line for path in (LABELLED, DEV_V2)
             for line in path.read_text(encoding="utf-8").splitlines()]
    train_file.write_text("\n".join(lines[::2]) + "\n", encoding="utf-8")  # as _small()
    holdout = tmp_path / "holdout.jsonl"
    holdout.write_text("\n".join(HOLDOUT.read_text(encoding="utf-8").splitlines()[:40]) + "\n",
                       encoding="utf-8")
    # (A test's own --holdout replaces this one: held-out sets given together are pooled.)
    held = [] if "--holdout" in extra else ["--holdout", str(holdout)]
    return CliRunner().invoke(app, ["learn", "--train", str(train_file), *held,
                                    "--out", str(out), "--at", "2026-12-06", *extra])


def _canary(tmp_path: Path, cid: str, tier: str) -> Path:
    """A canary file pinning the dancing (DANCING, 学院路街道) dispatched at ``tier``."""
    canaries = tmp_path / "canaries.jsonl"
    canaries.write_text(json.dumps({
        "id": cid, "content": DANCING, "district": "海淀区", "street": "学院路街道",
        "why": "a test", "decision": {"outcome": "DISPATCH", "tier": tier},
    }, ensure_ascii=False) + "\n", encoding="utf-8")
    return canaries


def test_learn_refuses_to_replace_a_better_model(tmp_path: Path,
                                                 small_doc: dict[str, Any]) -> None:
    out = tmp_path / MODEL_FILE
    # The rules find every T2H of the holdout: a model that never raises cannot be beaten.
    before = _write_model(out, small_doc, version="hand-made", t2h_threshold=1.0)
    result = _learn(tmp_path, out)
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and "candidate" in result.output
    assert out.read_bytes() == before
    # --force writes it anyway.
    result = _learn(tmp_path, out, "--force")
    assert result.exit_code == 0, result.output
    assert load_model(out).version == small_doc["version"]


def test_learn_replaces_a_worse_model(tmp_path: Path, small_doc: dict[str, Any]) -> None:
    out = tmp_path / MODEL_FILE
    _write_model(out, small_doc, version="raises-everything", t2h_threshold=0.0001)
    result = _learn(tmp_path, out)
    assert result.exit_code == 0, result.output
    assert "it scores better" in result.output
    assert load_model(out).version == small_doc["version"]


def test_learn_keeps_the_current_model_when_the_candidate_changes_a_canary(
    tmp_path: Path, small_doc: dict[str, Any],
) -> None:
    out = tmp_path / MODEL_FILE
    # The current model raises everything to T2H: worse on the held-out set, but it keeps
    # this canary, which pins the dancing as 2 hours; the candidate gives it 7 days.
    _write_model(out, small_doc, version="raises-everything", t2h_threshold=0.0001)
    canaries = _canary(tmp_path, "k1", "T2H")
    result = _learn(tmp_path, out, "--canaries", str(canaries))
    assert result.exit_code == 0, result.output
    assert "canary k1 changed: tier T7D instead of T2H" in result.output
    assert "kept" in result.output and load_model(out).version == "raises-everything"
    # --force writes it anyway, still naming the canary it changes.
    result = _learn(tmp_path, out, "--canaries", str(canaries), "--force")
    assert "canary k1 changed" in result.output
    assert load_model(out).version == small_doc["version"]


def test_learn_names_a_canary_the_current_model_breaks_and_one_the_candidate_breaks_anew(
    tmp_path: Path, small_doc: dict[str, Any],
) -> None:
    out = tmp_path / MODEL_FILE
    # The current model raises the dancing to T2H against its pin of 24 hours; the
    # candidate gives it 7 days: broken differently, so not promoted.
    _write_model(out, small_doc, version="raises-everything", t2h_threshold=0.0001)
    canaries = _canary(tmp_path, "k2", "T24H")
    result = _learn(tmp_path, out, "--canaries", str(canaries))
    assert result.exit_code == 0, result.output
    assert "already, before the candidate: canary k2 changed: tier T2H instead of T24H" \
        in result.output
    assert "canary k2 changed: tier T7D instead of T24H" in result.output
    assert "kept" in result.output and load_model(out).version == "raises-everything"


def test_a_first_model_is_written_though_it_changes_a_canary_which_is_named(
    tmp_path: Path,
) -> None:
    out = tmp_path / MODEL_FILE  # no current model: nothing to keep
    canaries = _canary(tmp_path, "k3", "T2H")
    result = _learn(tmp_path, out, "--canaries", str(canaries))
    assert result.exit_code == 0, result.output
    assert "canary k3 changed" in result.output and "no current model" in result.output
    assert out.exists()


def test_learn_refuses_a_model_too_big_for_its_config_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import activities.dispatch.training as training

    monkeypatch.setattr(training, "MAX_FILE_BYTES", 10_000)
    out = tmp_path / MODEL_FILE
    result = _learn(tmp_path, out)
    assert result.exit_code == 4, result.output
    assert "its ConfigMap allows" in result.output and "max_features" in result.output
    assert not out.exists()


def test_learn_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / MODEL_FILE
    out.write_text("{broken", encoding="utf-8")
    result = _learn(tmp_path, out)
    assert result.exit_code == 4  # a bad file (docs/cli.md)
    assert "not valid JSON" in result.output and "--force" in result.output
    held_out = RETIRED / "dispatch_blind_v2.jsonl"  # the default held-out set
    result = CliRunner().invoke(app, ["learn", "--train", str(held_out), "--out", str(out)])
    assert result.exit_code == 2 and "cannot also be trained on" in result.output


def test_the_config_maps_stay_under_one_mib() -> None:
    """Kubernetes refuses a ConfigMap over 1 MiB: each model has one of its own."""
    kustomization = REPO_ROOT / "deploy" / "k8s" / "base" / "kustomization.yaml"
    generators = yaml.safe_load(kustomization.read_text())["configMapGenerator"]
    files = {g["name"]: g["files"] for g in generators}
    assert files["hotline-model"] == ["../../config/dispatch_model.json"]
    assert files["hotline-category-model"] == ["../../config/category_model.json"]
    for name in ("hotline-config", "hotline-model", "hotline-category-model"):
        total = sum((kustomization.parent / f).stat().st_size for f in files[name])
        assert total < 1024 * 1024 * 0.95, (name, total)


def test_the_model_transfers_an_emergency_the_rules_missed_unless_an_operator_judged() -> None:
    cfg = replace(CONFIG, model=reading(REDIRECT_119=0.7))
    cl = classify_request(cfg, DANCING)
    assert (cl.redirect_to, cl.tier, cl.emergency) == ("119", "T2H", True)
    assert cl.matched[-1] == "model: transfer to 119 (P=0.70 ≥ 0.5)"
    assert first_look(cfg, DANCING).outcome(0.6) == "REDIRECTED"
    # Below its threshold, or against an operator's urgency hint, nothing is transferred.
    assert classify_request(replace(CONFIG, model=reading(REDIRECT_119=0.45)),
                            DANCING).redirect_to is None
    assert classify_request(cfg, DANCING, urgency_hint="T7D").redirect_to is None


def test_the_model_chooses_among_the_slower_tiers_but_never_lowers_a_t2h() -> None:
    cfg = replace(CONFIG, model=reading(T7D=0.6))
    assert classify_request(replace(CONFIG, model=None), DANCING).tier == "T24H"  # the rules
    cl = classify_request(cfg, DANCING)
    # P among the tiers: 0.6 of the 0.73 they share.
    assert cl.tier == "T7D" and cl.matched[-1] == "model: T7D (P=0.82) rather than the rules' T24H"
    assert classify_request(cfg, GAS_LEAK).tier == "T2H"
    assert classify_request(cfg, DANCING, urgency_hint="T24H").tier == "T24H"
    # A tiers-only model (format /1) may only raise.
    assert classify_request(replace(CONFIG, model=_fixed((-9.0, -9.0, 9.0, -9.0))),
                            DANCING).tier == "T24H"


def test_a_request_the_model_reads_as_needing_no_dispatch_waits_at_the_desk() -> None:
    cfg = replace(CONFIG, model=reading(CONSULTATION=0.5, T7D=0.3))
    look = first_look(cfg, DANCING, district="海淀区", street="学院路街道")
    assert look.classification.held_back == "CONSULTATION"
    assert look.outcome(CONFIG.rules.review.min_confidence) == "REVIEW"
    assert any("learned model reads a consultation" in r for r in look.doubt.reasons)
    # Three kinds together count: no one of them need be the most probable outcome.
    split = replace(CONFIG, model=reading(CONSULTATION=0.2, UNREASONABLE=0.15,
                                           OUTSIDE_BEIJING=0.1, T7D=0.3))
    assert first_look(split, DANCING).classification.held_back == "CONSULTATION"
    # A T2H request never waits, whatever the doubt.
    urgent = first_look(cfg, GAS_LEAK, district="海淀区", street="学院路街道")
    assert urgent.classification.held_back == "CONSULTATION"
    assert urgent.outcome(CONFIG.rules.review.min_confidence) == "DISPATCH"


def test_each_labelled_request_has_one_outcome_class() -> None:
    assert label_of({"tier": "T7D"}) == "T7D"
    assert label_of({"tier": "T2H", "redirect": "120"}) == "REDIRECT_120"
    assert label_of({"tier": "T2H", "redirect": "122"}) == "REDIRECT_110"  # the police
    assert label_of({"tier": None, "no_dispatch": "UNREASONABLE"}) == "UNREASONABLE"
    assert label_of({"tier": None}) is None
    with pytest.raises(ValueError, match="redirect '999'"):
        label_of({"tier": "T2H", "redirect": "999"})
    with pytest.raises(ValueError, match="tier 'T3D'"):
        label_of({"tier": "T3D"})
    bad = Path(__file__).with_name("no-such-dir") / "x.jsonl"
    with pytest.raises(TrainingError, match="cannot read"):
        read_examples([bad])


def test_learn_ranks_on_a_blind_format_held_out_set(tmp_path: Path) -> None:
    held = tmp_path / "held.jsonl"
    lines = (RETIRED / "dispatch_blind_v2.jsonl").read_text(encoding="utf-8").splitlines()
    held.write_text("\n".join(lines[:80]) + "\n", encoding="utf-8")
    out = tmp_path / MODEL_FILE
    result = _learn(tmp_path, out, "--holdout", str(held))
    assert result.exit_code == 0, result.output
    assert "transfers" in result.output and "wrote" in result.output
    assert load_model(out).decides_tier


def test_learn_pools_its_held_out_sets_and_refuses_two_formats(tmp_path: Path) -> None:
    lines = (RETIRED / "dispatch_blind_v2.jsonl").read_text(encoding="utf-8").splitlines()
    first, second = tmp_path / "held1.jsonl", tmp_path / "held2.jsonl"
    first.write_text("\n".join(lines[:50]) + "\n", encoding="utf-8")
    second.write_text("\n".join(lines[50:90]) + "\n", encoding="utf-8")
    out = tmp_path / MODEL_FILE
    result = _learn(tmp_path, out, "--holdout", str(first), "--holdout", str(second))
    assert result.exit_code == 0, result.output
    assert "on held1.jsonl and 1 more (90 requests)" in " ".join(result.output.split())
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(HOLDOUT.read_text(encoding="utf-8"), encoding="utf-8")
    mixed = _learn(tmp_path, tmp_path / "other.json", "--holdout", str(first),
                   "--holdout", str(labelled))
    assert mixed.exit_code != 0 and "two formats" in mixed.output
    assert not (tmp_path / "other.json").exists()


def _with_lead(model: TierModel, p_street: float) -> TierModel:
    z = math.log(p_street / (1 - p_street))
    return replace(model, lead_intercepts=(-z / 2, z / 2), street_threshold=0.7,
                   features={"\x00": (1.0, *[0.0] * (len(model.classes) + 2))})


def test_the_lead_head_gives_a_compound_matter_to_its_street() -> None:
    text = "海淀区学院路街道，小区里的供水管爆了，院子里全是水"
    rules_only = first_look(replace(CONFIG, model=None), text, district="海淀区",
                            street="学院路街道")
    department = rules_only.route.lead
    assert department.kind not in ("street", "district"), department
    sure = replace(CONFIG, model=_with_lead(reading(T24H=0.6), 0.9))
    look = first_look(sure, text, district="海淀区", street="学院路街道")
    assert look.route.lead.unit_id == look.location.street_id
    assert look.route.rule == "model-street" and department in look.route.assisting
    assert "P=0.90 ≥ 0.7" in look.route.note
    # Not sure enough, or no street found: the rule's department leads.
    unsure = replace(CONFIG, model=_with_lead(reading(T24H=0.6), 0.6))
    assert first_look(unsure, text, district="海淀区",
                      street="学院路街道").route.lead == department
    nowhere = first_look(sure, "小区里的供水管爆了，院子里全是水")
    assert nowhere.location.street_id is None and nowhere.route.rule != "model-street"


def test_a_rule_that_keeps_its_lead_is_not_moved_to_the_street() -> None:
    # 炸街 outside a compound is the traffic police's (street-racing keeps its lead),
    # however sure the model is that the matter is in the street's territory.
    text = "冠华苑小区南门外边那条路，晚上一点多还有人开改装车炸街，轰油门"
    sure = replace(CONFIG, model=_with_lead(reading(T24H=0.6), 0.9))
    look = first_look(sure, text, district="昌平区", street="回龙观街道")
    assert look.route.rule == "street-racing" and CONFIG.routing.rule("street-racing").keep_lead
    assert look.route.lead.unit_id == "bj-traffic-police"
    table = CONFIG.routing.model_dump()
    table["rules"] = [{**r, "keep_lead": False} for r in table["rules"]]
    unkept = type(CONFIG.routing).model_validate(table)
    moved = first_look(replace(sure, routing=unkept), text, district="昌平区",
                       street="回龙观街道")
    assert moved.route.rule == "model-street", moved.route


def test_a_supervisors_reassignment_teaches_who_leads_not_the_tier(tmp_path: Path) -> None:
    line = {"id": "c1", "content": "楼下垃圾桶满了没人收", "district": "海淀区",
            "expect": {"tier": "T24H", "lead": "110108001", "category": "environment.rubbish"},
            "correction": {"kind": "REASSIGNED", "teaches_tier": False}}
    path = tmp_path / "corrections.jsonl"
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    [example], [source] = read_examples([path])
    assert (example.label, example.lead) == (None, "STREET")
    assert (source.corrections_not_for_tier, source.lead_only, source.examples) == (1, 1, 0)


def test_a_no_dispatch_reading_changes_no_tier_and_a_typed_kind_is_not_held_back() -> None:
    # Nearly all of P on "unreasonable", and T2H the largest of what little the tiers
    # share: the tier stays the rules' (a request held for the desk, not an emergency).
    cfg = replace(CONFIG, model=reading(UNREASONABLE=0.9, T2H=0.03))
    cl = classify_request(cfg, DANCING)
    assert cl.tier == "T24H" and cl.held_back == "UNREASONABLE"
    # An operator who typed the kind has judged the call: no hold-back doubt.
    typed = classify_request(cfg, DANCING, kind_hint="COMPLAINT")
    assert typed.held_back is None and "kind" in typed.hints_used


def test_a_phone_number_in_the_text_is_not_read_by_the_models() -> None:
    # "13912345678" holds "12345", the hotline's number, which callers from outside Beijing
    # name: the model read a fully addressed Beijing street lamp as OUTSIDE_BEIJING.
    assert model_text("联系电话13912345678，座机010-62345678") == "联系电话 ，座机010- "
    assert model_text("12345热线，13号楼") == "12345热线，13号楼"  # short numbers stay
    config = CONFIG
    text = "朝阳区望京街道花家地北里小区门口的路灯坏了一个星期了"
    plain = first_look(config, text, at=DAY)
    with_phone = first_look(config, text + "，联系电话13912345678", at=DAY)
    assert with_phone.classification.held_back is None
    assert with_phone.outcome(config.rules.review.min_confidence) == plain.outcome(
        config.rules.review.min_confidence) == "DISPATCH"


def test_the_model_needs_a_higher_bar_over_the_rules_t7d() -> None:
    # rules.yaml tier_min_p_over: over the rules' T7D the model was right less often than
    # the rules at P 0.5-0.6 in the sets it never trained on; elsewhere 0.5 holds.
    fitness = "小区里的健身器材坏了好几个，老人用着不安全"
    assert classify_request(replace(CONFIG, model=None), fitness).tier == "T7D"  # the rules
    assert CONFIG.rules.model.tier_bar("T7D") > CONFIG.rules.model.tier_bar("T24H") == 0.5
    # T15D at 0.3 is 0.56 of the tiers' share: below the bar over T7D, above it elsewhere.
    unsure = replace(CONFIG, model=reading(T15D=0.3))
    assert classify_request(unsure, fitness).tier == "T7D"
    assert classify_request(unsure, DANCING).tier == "T15D"
    # At 0.4 (0.67 of the share) it clears both.
    assert classify_request(replace(CONFIG, model=reading(T15D=0.4)), fitness).tier == "T15D"


def test_a_tier_bar_for_no_tier_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="names no tier: T8D"):
        ModelRule(tier_min_p_over={"T8D": 0.6})
