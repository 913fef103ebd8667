"""The learned category model beside the lexicon (issue 29): the file loads and is checked,
the pure-Python prediction is scikit-learn's, applying it respects the operator and never
lowers an emergency, and training is deterministic."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from activities.dispatch.category_model import (
    CATEGORY_MODEL_FILE,
    CategoryModelError,
    apply_category_model,
    load_category_model,
    model_from_document,
)
from activities.dispatch.category_training import (
    MAX_FILE_BYTES,
    PARAMS,
    Example,
    Source,
    _document,
    data_version,
    dumps,
    fit,
    read_examples,
    read_type_labels,
    train,
    type_consistency,
)
from activities.dispatch.classify import classify
from activities.dispatch.config import load_config
from activities.dispatch.lexicon import Lexicon
from workers.runtime.settings import REPO_ROOT

CONFIG = REPO_ROOT / "deploy" / "config"
LABELS = REPO_ROOT / "tests" / "data" / "phrasing_categories.yaml"
DEV = REPO_ROOT / "tests" / "data" / "dev" / "phrasings_dev_v3.jsonl"
TEXTS = ["学校门口那条路上车停得乱七八糟，每天早上都堵", "楼上装修天天砸墙吵死了",
         "地铁站的扶梯坏了一个月", "健身房关门了卡里的钱不退", "今天天气不错"]
SMALL = {**PARAMS, "folds": 2, "max_features": 600, "max_iter": 500}


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return load_config(CONFIG, with_model=False).lexicon


@pytest.fixture(scope="module")
def small_set() -> list[Example]:
    """Six problem types of the dev phrasing set: a model in a second or two."""
    examples, _ = read_examples([], [DEV], read_type_labels(LABELS))
    keep = {"public-services.subway", "traffic.parking", "order.noise", "market.prepaid",
            "order.dogs", "urban.streetlight"}
    return [e for e in examples if e.category in keep]


def _doc(small_set: list[Example], lexicon: Lexicon) -> dict:
    return train(small_set, [Source("dev", len(small_set))], SMALL,
                 lexicon_category=lambda t: classify(lexicon, t).category.code,
                 fallback=lexicon.fallback.code)


@pytest.fixture(scope="module")
def small_doc(small_set: list[Example], lexicon: Lexicon) -> dict:
    return _doc(small_set, lexicon)


def test_the_committed_model_loads_against_the_lexicon_and_stays_small(
        lexicon: Lexicon) -> None:
    path = CONFIG / CATEGORY_MODEL_FILE
    model = load_category_model(path, lexicon)
    assert set(model.classes) <= {c.code for c in lexicon.categories}
    assert 0 < model.threshold <= 1 and 0 < model.fallback_threshold <= 1
    assert path.stat().st_size < MAX_FILE_BYTES  # it goes into the config ConfigMap
    code, p = model.best("我家门口天天有人遛狗不拴绳，狗屎到处都是")
    assert code == "order.dogs" and p >= model.threshold


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("idf"), "missing key(s): idf"),
    (lambda d: d.update(format="x"), "format must be"),
    (lambda d: d.update(threshold=0), "threshold must be in (0, 1]"),
    (lambda d: d.update(intercepts=[1.0]), "intercepts must be a list of"),
    (lambda d: d["coef"][d["classes"][0]].update({"不存在的": 1.0}), "has no idf"),
    (lambda d: d.update(classes=["no.such", *d["classes"][1:]]), "not in categories.yaml"),
])
def test_a_broken_file_is_refused_with_what_is_wrong(small_doc: dict, lexicon: Lexicon,
                                                     tmp_path: Path, mutate, message: str
                                                     ) -> None:
    doc = json.loads(json.dumps(small_doc))
    mutate(doc)
    path = tmp_path / CATEGORY_MODEL_FILE
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CategoryModelError) as err:
        load_category_model(path, lexicon)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "learn-categories --force" in str(err.value)


def test_a_file_that_is_not_json_says_so(tmp_path: Path) -> None:
    path = tmp_path / CATEGORY_MODEL_FILE
    path.write_text("{broken", encoding="utf-8")
    with pytest.raises(CategoryModelError, match="not valid JSON"):
        load_category_model(path)
    with pytest.raises(CategoryModelError, match="cannot read"):
        load_category_model(tmp_path / "absent.json")


def test_the_pure_python_prediction_is_scikit_learns(small_set: list[Example]) -> None:
    """Unpruned and unrounded, the worker's arithmetic gives scikit-learn's probabilities;
    as written (pruned, 4 digits) it names the same category where scikit-learn is sure."""
    exact = {**SMALL, "prune": 0.0, "digits": 17}
    vectorizer, lr = fit(small_set, exact)
    texts = [*TEXTS, "  多个   空格  的  文本 "]
    expected = lr.predict_proba(vectorizer.transform(texts))
    assert sum(max(row) >= 0.5 for row in expected) >= 3
    for params in (exact, SMALL):
        model = model_from_document({"format": "hotline-category-model/1", "version": "t",
                                     "threshold": 0.5, **_document(vectorizer, lr, params)})
        for text, row in zip(texts, expected, strict=True):
            probs = model.probabilities(text)
            want = dict(zip(lr.classes_, row, strict=True))
            if params is exact:
                assert probs == pytest.approx(want, abs=1e-9)
            elif max(row) >= 0.5:  # pruning moves the near-ties of off-topic texts only
                assert model.best(text)[0] == max(want, key=lambda c: want[c])
                assert max(probs.values()) == pytest.approx(max(row), abs=0.1)


def test_the_model_replaces_the_category_and_the_tier_follows(small_doc: dict,
                                                              lexicon: Lexicon) -> None:
    model = model_from_document(small_doc, lexicon=lexicon)
    text = "小学门口天天有家长把车停在马路上，公交车都过不去"
    cl = classify(lexicon, text)
    code, p = model.best(text)
    assert code == "traffic.parking" and p >= model.threshold
    # Pretend the lexicon said noise (T24H): the model's parking brings parking's T7D.
    noisy = replace(cl, category=lexicon.category("order.noise"), tier="T24H")
    out = apply_category_model(noisy, model, text)
    assert out.category.code == "traffic.parking" and out.tier == "T7D"
    assert any(m.startswith("category model: traffic.parking p=") for m in out.matched)
    assert apply_category_model(noisy, None, text) is noisy


def test_an_operator_hint_wins_and_an_emergency_keeps_t2h(small_doc: dict,
                                                           lexicon: Lexicon) -> None:
    model = model_from_document(small_doc, lexicon=lexicon)
    text = "小学门口天天有家长把车停在马路上，公交车都过不去"
    hinted = classify(lexicon, text, category_hint="order.noise")
    assert apply_category_model(hinted, model, text) == hinted
    urgent = classify(lexicon, text, urgency_hint="T24H")
    assert apply_category_model(urgent, model, text).tier == "T24H"  # the operator's tier
    fire = "楼道里电动车起火了，冒烟了，有人被困" + text
    cl = classify(lexicon, fire)
    assert cl.emergency and cl.tier == "T2H"
    cl = replace(cl, category=lexicon.category("order.noise"))
    out = apply_category_model(cl, model, fire)
    assert out.tier == "T2H" and out.emergency


def test_training_is_deterministic(small_set: list[Example], lexicon: Lexicon,
                                   small_doc: dict) -> None:
    again = _doc(small_set, lexicon)
    assert dumps(again) == dumps(small_doc)
    assert again["version"] == data_version(small_set, SMALL)
    assert data_version(small_set[1:], SMALL) != again["version"]
    model = model_from_document(json.loads(dumps(small_doc)))
    assert model.version == small_doc["version"]


def test_consistency_per_problem_type_is_the_share_in_the_modal_category() -> None:
    examples = [Example("a", "order.noise", "renovation_noise"),
                Example("b", "order.noise", "renovation_noise"),
                Example("c", "order.noise", "renovation_noise"),
                Example("d", "order.noise", "renovation_noise"),
                Example("e", "traffic.parking", "illegal_parking"),
                Example("f", "traffic.parking")]  # a labelled request: no problem type
    out = ["order.noise", "housing.compound", "order.noise", "order.noise",
           "traffic.bikes", "other.general"]
    # The modal category counts, not the label: one problem, one category.
    assert type_consistency(examples, out) == {"illegal_parking": 1.0,
                                               "renovation_noise": 0.75}


def test_phrasings_keep_their_problem_type(small_set: list[Example]) -> None:
    assert {e.problem_type for e in small_set} >= {"subway_service_facility", "dog_nuisance"}


def test_a_broken_category_model_is_a_bad_file_in_one_line(tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from workers.cli.main import app as cli
    from workers.runtime.settings import Settings

    folder = tmp_path / "config"
    shutil.copytree(Settings().config_dir, folder)
    (folder / "category_model.json").write_text("{broken", encoding="utf-8")
    result = CliRunner().invoke(cli, ["routing", "explain", "电梯坏了", "--config-dir",
                                      str(folder)])
    assert result.exit_code == 4, result.output  # a bad file (docs/cli.md), not a bug
    assert "category_model.json" in result.output and "Traceback" not in result.output


def test_learn_categories_refuses_a_model_too_big_for_the_config_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    import activities.dispatch.category_training as training
    from workers.cli.main import app

    monkeypatch.setattr(training, "MAX_FILE_BYTES", 10_000)
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join((REPO_ROOT / "tests" / "data" / "routing_labelled.jsonl")
                                .read_text(encoding="utf-8").splitlines(True)[:150]),
                        encoding="utf-8")
    holdout = tmp_path / "holdout.jsonl"
    holdout.write_text("".join((REPO_ROOT / "tests" / "data" / "routing_holdout.jsonl")
                               .read_text(encoding="utf-8").splitlines(True)[:20]),
                       encoding="utf-8")
    out = tmp_path / CATEGORY_MODEL_FILE
    result = CliRunner().invoke(app, [
        "routing", "learn-categories", "--labelled", str(labelled), "--phrasings", str(DEV),
        "--labels", str(LABELS), "--holdout", str(holdout), "--out", str(out)])
    assert result.exit_code == 4, result.output
    assert "its ConfigMap allows" in result.output and "max_features" in result.output
    assert not out.exists()


def test_the_model_does_not_read_the_lexicons_neutral_phrases(lexicon: Lexicon) -> None:
    # A phone running flat (手机也快没电了) is neutral to the lexicon; the committed model
    # read its 没电 as a power cut and took a washed-out road to the power company.
    text = "村里上山那条路让暴雨冲断了，里头还有户养蜂的老人出不来，手机也快没电了"
    assert lexicon.without_neutral(text) == text.replace("手机也快没电", " ")
    cfg = load_config(CONFIG)
    assert cfg.category_model is not None
    cl = classify(lexicon, text)
    out = apply_category_model(cl, cfg.category_model, text)
    assert out.category.code != "public-services.power"
    # A category's own word is never blanked, though neutral lists it too.
    own = {w for c in lexicon.categories for w in c.keywords} & set(lexicon.neutral)
    for word in own:
        assert word in lexicon.without_neutral(f"说的是{word}的事")


def test_the_model_leaves_a_category_it_never_learned(small_doc: dict, lexicon: Lexicon) -> None:
    # A category added after the model was trained (market.drugs; public-security.missing
    # was never among the phrasing types): the model's reading is of the nearest category
    # it knows, so the lexicon's stands — where the same reading moves a category it knows.
    model = model_from_document(small_doc, lexicon=lexicon)
    text = "小学门口天天有家长把车停在马路上，公交车都过不去"
    assert "housing.lift" not in model.classes and "order.noise" in model.classes
    cl = classify(lexicon, text)
    unknown = replace(cl, category=lexicon.category("housing.lift"), tier="T24H")
    assert apply_category_model(unknown, model, text) is unknown
    known = replace(cl, category=lexicon.category("order.noise"), tier="T24H")
    assert apply_category_model(known, model, text).category.code == "traffic.parking"
