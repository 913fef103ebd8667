"""The monthly report's words: Chinese first (its readers are the city's supervisors), English
on request (``hotline report monthly --lang en``).

The report keeps its own small table rather than the workbench's translator: reports sit
below the workbench in the import order (tests/test_architecture.py), and the two vocabularies
overlap only in a few terms (响应率/解决率/满意率), spelled the same way in both tables.
The English texts keep the official Chinese name of a section in brackets, because that is
how the 12345 system's documents are cited.
"""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

# key: (中文, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "title": ("12345 接诉即办月度报告（{month}）",
              "Hotline monthly report {month} (12345 接诉即办)"),
    "generated": ("生成于 {at} UTC，数据来自工单台账。",
                  "Generated {at} UTC from the case ledger."),
    "none_this_month": ("本月暂无。", "None this month."),
    "no_data": ("暂无数据。", "No data."),
    # 1. summary
    "summary": ("1. 概况", "1. Summary"),
    "filed": ("受理量", "filed"),
    "evaluated": ("参评工单", "evaluated (counted)"),
    "response": ("响应率", "response"),
    "resolution": ("解决率", "resolution"),
    "satisfaction": ("满意率", "satisfaction"),
    "overdue": ("超期", "overdue"),
    "praise": ("表扬", "praise"),
    "hotspot_count": ("热点预警", "hotspot warnings"),
    "governance_cases": ("主动治理工单", "governance cases"),
    # 2. rankings
    "rankings": ("2. 考评排名", "2. Rankings (考评排名)"),
    "group.streets": ("街乡镇", "Streets, towns and townships (街乡镇)"),
    "group.departments": ("委办局与公共服务企业",
                          "Departments and public-service companies (委办局/公共服务企业)"),
    "group.other": ("其他单位", "Other units"),
    "chart.scores": ("{group}综合得分（满分 100）", "Score per unit, out of 100: {group}"),
    "rank": ("名次", "rank"),
    "unit": ("单位", "unit"),
    "unit_id": ("单位编码", "unit id"),
    "cases": ("工单量", "cases"),
    "score": ("得分", "score"),
    # 3. rates
    "rates": ("3. 三率趋势", "3. Three-rate trends (三率)"),
    "chart.rates": ("近六个月三率", "The three rates over six months"),
    "month": ("月份", "month"),
    "counted": ("参评工单", "counted cases"),
    # 4. priority streets
    "priority_streets": ("4. 治理类重点街乡镇", "4. Priority streets and townships (治理类街乡镇)"),
    "chart.streets": ("诉求量最多的街乡镇", "Streets and townships by complaints"),
    "district": ("区", "district"),
    "street": ("街乡镇", "street"),
    "complaints": ("诉求量", "complaints"),
    "unit.cases": ("件", ""),  # a longer English unit would not fit beside the bar
    "per_10k": ("每万人诉求量", "per 10,000 residents"),
    "by_per_10k": ("按每万常住人口诉求量", "By complaints per 10,000 residents"),
    # 5. topics
    "topics": ("5. 每月一题候选与话题趋势",
               "5. Monthly-topic candidates and topic trends (每月一题)"),
    "category_code": ("类别编码", "category"),
    "category": ("类别", "name"),
    "volume": ("诉求量", "volume"),
    "previous_avg": ("前期月均", "previous avg"),
    "growth": ("增幅", "growth"),
    "units_involved": ("涉及单位", "units involved"),
    "streets_involved": ("涉及街乡镇", "streets"),
    "topic_trend": ("重点话题半月诉求量", "Half-monthly volume of tracked topics"),
    "chart.topic_trend": ("各话题每半月诉求量（件）", "Complaints per half month, by topic"),
    # 6. hotspots
    "hotspots": ("6. 热点预警（未诉先办）", "6. Hotspot warnings (未诉先办)"),
    "detected": ("发现时间（UTC）", "detected (UTC)"),
    "hotspot_category": ("类别", "category"),
    "count": ("诉求量", "count"),
    "expected": ("预期", "expected"),
    "times_baseline": ("基线倍数", "× baseline"),
    "governance_case": ("治理工单", "governance case"),
    "status": ("状态", "status"),
    "near": ("（{at} 附近）", " near {at}"),
    "status.OPEN": ("待处置", "OPEN"),
}


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)``: the text in ``lang`` (Chinese unless ``en``; the key if unknown)."""
    if lang not in LANGS:
        raise ValueError(f"unknown report language {lang!r}: use one of {', '.join(LANGS)}")
    index = LANGS.index(lang)

    def t(key: str, **values: object) -> str:
        pair = MESSAGES.get(key)
        text = pair[index] if pair else key
        return text.format(**values) if values else text

    return t


def month_label(month: str, lang: str) -> str:
    """``2026-09`` as a reader writes it: 2026年9月, or unchanged in English."""
    if lang != "zh":
        return month
    year, _, mon = month.partition("-")
    return f"{year}年{int(mon)}月"


def group_titles(lang: str) -> dict[str, str]:
    """The ranking groups' titles (``streets``, ``departments``, ``other``)."""
    t = translator(lang)
    return {g: t(f"group.{g}") for g in ("streets", "departments", "other")}


def rank_headers(lang: str) -> list[str]:
    """A ranking table's column names (the cells: ``monthly.ranking_rows``)."""
    t = translator(lang)
    return [t(k) for k in ("rank", "unit", "unit_id", "cases", "response", "resolution",
                           "satisfaction", "score", "praise")]


def status_label(status: str, lang: str) -> str:
    """A hotspot warning's status as a reader says it (the code itself when not in the table)."""
    pair = MESSAGES.get(f"status.{status}")
    return pair[LANGS.index(lang)] if pair else status
