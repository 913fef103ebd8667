"""The learned tier model: reproducible training, a JSON file the worker reads without
scikit-learn, and a combination with the rules that can only raise a tier to T2H."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from activities.dispatch.config import load_config
from activities.dispatch.decide import classify_request, first_look
from activities.dispatch.learned import (
    MODEL_FILE,
    ModelError,
    TierModel,
    load_model,
    model_from_document,
)
from activities.dispatch.rules import TIERS
from activities.dispatch.training import (
    Example,
    Source,
    data_version,
    dumps,
    fit,
    read_examples,
    train,
)
from workers.cli.routing import app
from workers.runtime.settings import REPO_ROOT, Settings

CONFIG_DIR = Settings().config_dir
CONFIG = load_config(CONFIG_DIR)
LABELLED = REPO_ROOT / "tests" / "data" / "routing_labelled.jsonl"
HOLDOUT = REPO_ROOT / "tests" / "data" / "routing_holdout.jsonl"
GAS_LEAK = "小区里有人家燃气泄漏，味道很大"       # the rules: T2H (an emergency keyword)
DANCING = "楼下小广场晚上跳广场舞太吵了"          # the rules: T24H


def _small() -> tuple[list[Example], list[Source]]:
    """Every second labelled request: all four tiers, quick to train on."""
    examples, _ = read_examples([LABELLED])
    subset = examples[::2]
    assert {e.tier for e in subset} == set(TIERS)
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
    flipped = [Example(examples[0].text, "T15D" if examples[0].tier != "T15D" else "T7D"),
               *examples[1:]]
    assert data_version(flipped, small_doc["params"]) != small_doc["version"]
    assert data_version(examples, {**small_doc["params"], "C": 1.0}) != small_doc["version"]
    # The CV figures and the threshold are in the file.
    cv = small_doc["cv"]
    assert small_doc["t2h_threshold"] == cv["threshold"]
    assert {"t2h_recall", "t2h_precision", "tier_accuracy", "folds"} <= set(cv)
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
        for tier in TIERS:
            # Coefficients and idf are rounded to 6 significant digits in the file.
            assert got[tier] == pytest.approx(row[classes.index(tier)], abs=1e-5), (text, tier)


def test_the_shipped_model_loads_and_says_how_it_was_made() -> None:
    model = CONFIG.model
    assert model is not None and model.classes == TIERS
    assert 0 < model.threshold < 1 and model.cv is not None
    doc = json.loads((CONFIG_DIR / MODEL_FILE).read_text(encoding="utf-8"))
    assert {s["file"] for s in doc["created_from"]} >= {"tests/data/routing_labelled.jsonl"}
    assert "tests/data/routing_holdout.jsonl" not in {s["file"] for s in doc["created_from"]}
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
    lines = LABELLED.read_text(encoding="utf-8").splitlines()
    train_file.write_text("\n".join(lines[::2]) + "\n", encoding="utf-8")
    holdout = tmp_path / "holdout.jsonl"
    holdout.write_text("\n".join(HOLDOUT.read_text(encoding="utf-8").splitlines()[:40]) + "\n",
                       encoding="utf-8")
    return CliRunner().invoke(app, ["learn", "--train", str(train_file), "--holdout",
                                    str(holdout), "--out", str(out), "--at", "2026-12-06",
                                    *extra])


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


def test_learn_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / MODEL_FILE
    out.write_text("{broken", encoding="utf-8")
    result = _learn(tmp_path, out)
    assert result.exit_code == 4  # a bad file (docs/cli.md)
    assert "not valid JSON" in result.output and "--force" in result.output
    result = CliRunner().invoke(app, ["learn", "--train", str(HOLDOUT), "--out", str(out)])
    assert result.exit_code == 2 and "cannot also be trained on" in result.output


def test_the_config_map_stays_under_one_mib() -> None:
    """Kubernetes refuses a ConfigMap over 1 MiB; the model file shares it with the rest."""
    kustomization = REPO_ROOT / "deploy" / "k8s" / "base" / "kustomization.yaml"
    generators = yaml.safe_load(kustomization.read_text())["configMapGenerator"]
    files = next(g["files"] for g in generators if g["name"] == "hotline-config")
    assert "../../config/dispatch_model.json" in files
    total = sum((kustomization.parent / f).stat().st_size for f in files)
    assert total < 1024 * 1024 * 0.95, total
