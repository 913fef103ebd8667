"""Category consistency per problem type (issue 29): the modal-category share and the
unit kind, on a tiny set whose answers are plain, and through the command."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from activities.dispatch.config import load_config
from activities.dispatch.consistency import Phrasing, consistency, unit_kind
from workers.cli.main import app as hotline
from workers.runtime.settings import Settings

CONFIG = load_config(Settings().config_dir)


def _p(n: int, problem: str, content: str, kind: str) -> Phrasing:
    return Phrasing(id=f"t-{n}", problem_type=problem, content=content,
                    expected_unit_kind=kind, expected_category=problem)


SET = [
    _p(1, "water", "家里停水了", "UTILITY"),
    _p(2, "water", "我们楼停水一整天了", "UTILITY"),
    # The third "water" line is really about lights: the type splits 2 to 1.
    _p(3, "water", "东城区东华门街道路灯不亮", "UTILITY"),
    _p(4, "wages", "老板拖欠我三个月工资不给", "DEPARTMENT"),
]


def test_the_modal_share_and_the_unit_kind_per_problem_type() -> None:
    report = consistency(CONFIG, SET, at=date(2026, 12, 6))
    rows = {r.problem_type: r for r in report.rows}
    water = rows["water"]
    assert water.n == 3 and water.modal_category == "public-services.water"
    assert abs(water.modal_share - 2 / 3) < 1e-9
    assert water.kinds["UTILITY"] == 2 and abs(water.kind_right - 2 / 3) < 1e-9
    assert rows["wages"].modal_share == 1.0 and rows["wages"].kind_right == 1.0
    assert report.types_on_target == 1  # wages only: water is below 90 %
    assert report.rows[0].problem_type == "water", "worst first"


def test_unit_kinds_follow_the_registry() -> None:
    assert unit_kind("110101001", "street") == "STREET"
    assert unit_kind("110228100", "town") == "STREET"
    assert unit_kind("bj-mtr", "utility") == "TRANSIT"
    assert unit_kind("bj-power", "utility") == "UTILITY"
    assert unit_kind("bj-hrss", "department") == "DEPARTMENT"


def test_the_command_prints_the_table_as_json_and_refuses_a_bad_file(tmp_path: Path) -> None:
    good = tmp_path / "set.jsonl"
    good.write_text("".join(p.model_dump_json() + "\n" for p in SET), encoding="utf-8")
    out = CliRunner().invoke(hotline, ["routing", "consistency", str(good), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["types"] == 2 and report["types_on_target"] == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "problem_type": "a", "content": "c", '
                   '"expected_unit_kind": "SHOP", "expected_category": "a"}\n')
    out = CliRunner().invoke(hotline, ["routing", "consistency", str(bad)])
    assert out.exit_code == 4 and "expected_unit_kind" in out.output
