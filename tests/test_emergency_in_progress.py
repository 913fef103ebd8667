"""An emergency in progress, said in plain words, is transferred at once (issue 25 item 1);
the same words about something over and done are not."""

from __future__ import annotations

from datetime import date

import pytest

from activities.dispatch.config import load_config
from activities.dispatch.decide import first_look
from workers.runtime.settings import Settings

CONFIG = load_config(Settings().config_dir)
MIN = CONFIG.rules.review.min_confidence
DAY = date(2026, 12, 6)


@pytest.mark.parametrize(("text", "service"), [
    ("对门那家的窗户缝里一直往外冒浓烟，敲门也没人开", "119"),
    ("仓库那边刚才砰的一声，现在黑烟一个劲儿往上冒", "119"),
    ("孩子在河边玩滑下去了，在水里一沉一浮的", "119"),
    ("我爸刚才说胸口像压着东西，一身一身地出冷汗，现在起不来了", "120"),
    ("我奶奶吃饭呛着了，脸都青了，咳不出来", "120"),
    ("楼下有个人拎着菜刀在追人，大家都在跑", "110"),
    ("她说活着没意思，已经跨出护栏外面了", "110"),
])
def test_said_plainly_it_is_transferred_at_once(text: str, service: str) -> None:
    look = first_look(CONFIG, text, at=DAY)
    assert look.outcome(MIN) == "REDIRECTED" and look.classification.redirect_to == service


@pytest.mark.parametrize("text", [
    "上个月楼里着过一回火，到现在楼道墙上还是黑的，没人来刷",
    "村边那个厂子成天往外冒黑烟，味道很大",
    "变压器下雨天老冒火花，好几年了没人修",
    "商场门口天天挂着跳楼价清仓的牌子，其实比网上还贵",
])
def test_over_and_done_or_chronic_it_is_not(text: str) -> None:
    assert first_look(CONFIG, text, at=DAY).classification.redirect_to is None
