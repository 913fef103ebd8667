"""Routing rules that look at what the caller named: a transit line goes to the operator
that runs it; a sewer or a parking problem inside a compound is the street's (直派街乡),
outside it the utility's or the traffic police's (issue 25 item 3)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.dispatch.config import load_config
from activities.dispatch.decide import first_look
from activities.dispatch.routing import RoutingError
from workers.runtime.settings import Settings

CONFIG = load_config(Settings().config_dir)
DAY = date(2026, 12, 6)


@pytest.mark.parametrize(("text", "operator"), [
    ("地铁4号线西单站的扶梯坏了一个礼拜", "bj-mtr"),
    ("坐十四号线车厢里空调太冷", "bj-mtr"),
    ("大兴线公益西桥站闸机多扣了钱", "bj-mtr"),
    ("大兴机场线票价太贵了", "bj-rail-ops"),
    ("燕房线发车间隔太长", "bj-rail-ops"),
    # Line 19 is 京城地铁's (7 of 12 writers in the readable sets), 17 still 京港地铁's.
    ("19号线站里都没有卫生间，要出站才能上", "bj-rail-ops"),
    ("19号线的票价怎么算的，比别的线贵", "bj-rail-ops"),
    ("每天坐17号线，早高峰挤不上去", "bj-mtr"),
    ("地铁10号线早高峰太挤了", "bj-subway"),
    ("地铁24号线什么时候开通", "bj-subway"),  # "4号线" inside "24号线" is not line 4
    ("地铁公益西桥站进站刷卡扣了两回钱", "bj-mtr"),  # a station only line 4 serves
])
def test_a_named_line_goes_to_its_operator(text: str, operator: str) -> None:
    look = first_look(CONFIG, text, at=DAY)
    assert look.route.lead.unit_id == operator, (look.route.rule, look.classification)


@pytest.mark.parametrize("text", [
    "14号线出口那家超市标价和结账价格不一样",
    "机场快轨三元桥站旁边停车场收费太贵",
])
def test_a_shops_price_near_a_line_is_not_the_operators(text: str) -> None:
    assert first_look(CONFIG, text, at=DAY).route.lead.unit_id not in {"bj-mtr", "bj-rail-ops"}


def test_public_road_words_are_a_road_not_a_pipe_or_a_way_home() -> None:
    rules = CONFIG.rules.model
    assert rules.on_public_road("阜通东大街上的下水道堵了")
    for text in ("下班回家一路上看到小区里下水道堵了", "下班回家路上看到小区里下水道堵了",
                 "小区里暖气管路上漏水", "楼里电路上有问题"):
        assert rules.on_public_road(text) is None, text


def test_a_power_cut_beyond_one_building_stays_the_power_companys() -> None:
    # The learned model's lead head hands some compound power cuts to the street; a whole
    # compound out, or the power company's cable named, is the network's (from the
    # readable sets: 5 of 5 such requests were labelled the utility).
    rules = CONFIG.rules.model
    assert rules.on_utility_network("北七家镇温泉花园A区整个小区自凌晨起停电")
    assert rules.on_utility_network("说是供电局的电缆让施工的挖断了")
    assert rules.on_utility_network("小区里有个水管接口爆了，整个小区都停水了") is None
    text = ("今天中午开始我们马坡花园第一社区整个小区停电，说是供电局的电缆让施工的挖断了，"
            "地下车库排水泵也停了")
    assert first_look(CONFIG, text, at=DAY).route.lead.unit_id == "bj-power"


def test_without_the_words_the_category_rule_applies() -> None:
    look = first_look(CONFIG, "地铁站里的厕所一直锁着", at=DAY)
    assert look.route.rule == "subway" and look.route.lead.unit_id == "bj-subway"


def _config_with_rule(tmp_path: Path, rule_id: str, edit: Callable[[dict[str, Any]], None]
                      ) -> Path:
    """A copy of the config folder whose routing rule ``rule_id`` ``edit`` has changed."""
    folder = tmp_path / "config"
    shutil.copytree(Settings().config_dir, folder)
    data = yaml.safe_load((folder / "routing.yaml").read_text(encoding="utf-8"))
    edit(next(r for r in data["rules"] if r["id"] == rule_id))
    (folder / "routing.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                         encoding="utf-8")
    return folder


def test_a_bad_pattern_is_refused_at_start_naming_the_rule(tmp_path: Path) -> None:
    folder = _config_with_rule(tmp_path, "subway-mtr",
                               lambda rule: rule["where"].update(mentions=["(4号线"]))
    with pytest.raises(RoutingError, match="not a regular expression"):
        load_config(folder, with_model=False)


def test_a_bad_or_lone_unless_is_refused_at_start(tmp_path: Path) -> None:
    bad = _config_with_rule(tmp_path / "bad", "gas-cylinder-stores",
                            lambda rule: rule["where"].update(unless=["(漏气"]))
    with pytest.raises(RoutingError, match=r"unless: .* not a regular expression"):
        load_config(bad, with_model=False)
    lone = _config_with_rule(tmp_path / "lone", "gas-cylinder-stores",
                             lambda rule: rule["where"].pop("mentions"))
    with pytest.raises(RoutingError, match="unless: only beside mentions"):
        load_config(lone, with_model=False)


def test_unless_keeps_the_words_from_counting() -> None:
    """The same rule's words, said with one of its ``unless``, leave the request alone."""
    hoard = "村西头有个大院子堆了几十个液化气罐，天天有车往里拉"
    assert first_look(CONFIG, hoard, at=DAY).route.rule == "gas-cylinder-stores"
    leak = first_look(CONFIG, hoard + "，一股煤气味", at=DAY)
    assert leak.route.rule != "gas-cylinder-stores" and leak.route.lead.unit_id == "bj-gas"


@pytest.mark.parametrize(("text", "lead"), [
    ("朝阳区望京街道望京西园三区小区里的下水道堵了，污水往外冒", "street"),
    ("朝阳区望京街道阜通东大街上的下水道堵了，污水漫到路面", "bj-drainage"),
    ("朝阳区望京街道望京西园三区小区里乱停车，消防车都进不来", "street"),
    ("朝阳区望京街道阜通东大街路边违停严重，车都过不去", "bj-traffic-police"),
    # Someone living alone not heard from is the community's to check on, at once,
    # whatever the category model guesses from 电话 (civil.elderly, not the power company).
    ("我舅舅一个人住在金顶街五区，这两天打他电话一直关机，我人在外地", "street"),
    ("我大姨一个人住，平常每天都给我来电话，这两天一个电话都没有，打过去也关机，"
     "她住在金顶街五区", "street"),
    ("我妈一个人住在金顶街五区，两天没接电话了，我在外地回不去", "street"),
])
def test_inside_a_compound_the_street_leads(text: str, lead: str) -> None:
    look = first_look(CONFIG, text, at=DAY)
    want = look.location.street_id if lead == "street" else lead
    assert want is not None and look.route.lead.unit_id == want, look.route.rule



@pytest.mark.parametrize(("text", "unit"), [
    # Someone missing is the police's to search for, in two hours.
    ("我家孩子九岁，放学到现在还没回家，平时四点就到了", "bj-police"),
    ("闺女在小区楼下滑滑梯，一眨眼人就不见了，找了四十分钟了", "bj-police"),
    ("我妈有点老年痴呆，早上出门买菜到现在没回来，手机也没带", "bj-police"),
    ("我孙子放学没回家，平时四点半准到家，学校说早就放了", "bj-police"),  # not the school's
    ("公交站有个老爷子穿着睡衣，问他家在哪说不清楚，坐了快一个小时了", "bj-police"),
    # Children's tutoring is the education commission's, medicines and cosmetics the drug
    # administration's, food sold as halal the ethnic and religious affairs commission's ...
    ("给孩子报的英语辅导班交了两万，上了几节课机构就跑了，不退钱", "bj-education"),
    ("楼下药店卖的医用口罩什么标识都没有", "bj-drugs"),
    ("网上买的面霜用了脸上起红疙瘩，查不到备案", "bj-drugs"),
    ("饭馆挂着清真的牌子，后厨却在剁猪肉", "bj-ethnic-religious"),
    # Investment schemes, cable television and patents go to their own regulators
    # whatever category the words were read as.
    ("我妈被人拉去听讲座，投了十几万买什么养老项目，现在人找不着了", "bj-finance-office"),
    ("有线电视没信号好几天了，报修了也没人来", "bj-radio-tv"),
    ("网上有家店卖的东西跟我们公司的专利一模一样", "bj-ip"),
    ("颐和园北宫门那边的厕所太少了，周末排队排老长", "bj-parks-center"),
    ("我们小区地下室是人防工程，被人隔成小间往外租，住了几十号人", "bj-civil-defense"),
    ("胡同里那个挂牌的文物保护院子，有人在里面私自拆了老门楼", "bj-heritage"),
    ("西山那一片林子里好几棵松树都枯了，是不是松材线虫", "bj-forestry-parks"),
    ("单位给我少交了两年公积金，我离职了才发现", "bj-provident-fund"),
    ("我是退役军人，安置补助一直没发到位", "bj-veterans"),
    ("报了个一日游去长城，导游把我们拉到玉器店不买不让走", "bj-culture-tourism"),
    ("村东头的塑料厂天天晚上偷排废气，熏得头疼", "bj-ecoenv"),
    ("村里的野猪晚上跑到地里拱庄稼，一晚上拱了半亩玉米", "bj-forestry-parks"),
    ("村口那几棵大杨树上全是白网子，是不是美国白蛾", "bj-forestry-parks"),
    ("去政务服务中心办营业执照，排了一上午号，窗口只开了三个", "bj-gov-services"),
    ("有个冷库从下午就往外飘一股刺鼻的氨水味儿，眼睛都辣", "bj-emergency"),
    ("村边的河道里有人晚上开着铲车挖沙子，河床都挖烂了", "bj-water"),
    ("我们村那个水库的坝好像渗水了，坝脚下往外冒水", "bj-water"),
    ("驾校收了我五千块钱学费，半年了一次车也没约上", "bj-transport"),
    ("京藏高速进城方向辅路有好几个大坑，轮毂都颠坏了", "bj-transport"),
    # Poles and overhead lines are the power company's whatever struck them; a crane or
    # scaffold swaying over a building site is the construction regulator's.
    ("胡同口的电线杆让三轮车撞斜了，线都快垂到人头上", "bj-power"),
    ("院外那棵槐树的枝子搭在电线上，一刮风就冒火花", "bj-power"),
    ("公园边上有孩子放风筝，线挂到高压线上了还在拽", "bj-power"),
    ("工地的塔吊这么大风还在转，吊着一捆钢管从楼顶上过", "bj-housing"),
    ("学校旁边工地的脚手架晃得厉害，底下就是学生排队的地方", "bj-housing"),
    # Legal aid is the justice bureau's whatever the dispute behind it; a hoard of gas
    # cylinders or fireworks is emergency management's.
    ("老板欠我工资不给，我想申请法律援助，可司法所说我收入超了", "bj-justice"),
    ("村西头有个大院子堆了几十个液化气罐，天天有车往里拉", "bj-emergency"),
    ("楼下小超市偷偷卖烟花爆竹，后屋堆了十几箱", "bj-emergency"),
    # Traffic lights are the traffic police's even where a compound is named.
    ("我们小区楼下那个路口的红绿灯绿灯才十几秒，老人走不过去", "bj-traffic-police"),
    ("半夜总有改装摩托在我们小区外面的大街上炸街，轰得孩子直哭", "bj-traffic-police"),
    ("楼下的箱变一到夜里就嗡嗡响，跟拖拉机似的", "bj-power"),
    ("给街道做的绿化工程早验收了，尾款说是财政资金没下来，拖了十个月", "bj-finance"),
    ("厂子九八年改制，说好的买断工龄钱只给了一半", "bj-sasac"),
    ("阶梯电价第一档定得太低了，冬天电采暖一个月就超", "bj-ndrc"),
    ("下穿隧道积水了，车都过不去", "bj-drainage"),  # read as water, still drainage's
    # Networks under the road and boxes on the wall (read in retired v13's misses).
    ("小区门口马路上的自来水管子爆了，水往外喷了一米多高", "bj-waterworks"),
    ("路口那个井盖一直往外冒热气，跟蒸笼似的，地面都湿了", "bj-heating"),
    ("烧烤摊的液化气罐阀门嘶嘶漏气，老板还在那儿烤串", "bj-gas"),
    ("单元门口的电表箱噼里啪啦响，还冒了点烟，有股焦糊味", "bj-power"),
    ("下大雨了，路边的雨水篦子全让树叶堵了，水排不下去", "bj-drainage"),
    ("楼下网吧天天有穿校服的孩子包夜", "bj-culture-tourism"),
    ("村里河上的水闸坏了，关不上，上游在放水", "bj-water"),
    ("孩子在小区里玩，转眼就不见了", "bj-police"),
    ("京通上办居住证明一直提交不了，提示系统繁忙", "bj-gov-services"),
    ("小区边上唯一的菜市场说下个月就拆，老人以后去哪买菜", "bj-commerce"),
    ("我们单元的电梯年检合格证都过期八个月了，物业还让大家坐", "bj-samr"),
    ("新房交了才一年，卫生间往楼下渗水，开发商说过了保修期不管", "bj-housing"),
    ("丰台那个下穿桥积水快到车窗了，有辆出租车憋在里头，人已经爬出来了", "bj-drainage"),
    ("村南边那个石材加工厂天天切石头，粉尘飘得满院子都是", "bj-ecoenv"),
    ("隔壁院里有个仓库，存了几十桶油漆和稀料，大夏天的", "bj-emergency"),
    # A care home is civil affairs' to inspect; the community canteen is the street's.
    ("我爸住的养老院护工打老人，院里不承认", "bj-civil-affairs"),
    # ... but a clinic short of a medicine is the health commission's.
    ("社区卫生服务站老是缺降压药，每次都让去大医院开", "bj-health"),
    # From retired v14's misses: trademarks in any words, grain depots and purchases,
    # public bodies' receipts, the handover of state firms' housing services, a medicine
    # whose batch number does not match, a street hydrant knocked over, an investment app.
    ("我们的商标让一家小公司抄去了，包装都一样", "bj-ip"),
    ("村边那个储备粮库，翻仓的时候粉尘飘得满村都是", "bj-grain-reserves"),
    ("今年卖玉米，收购点压价，说水分大", "bj-grain-reserves"),
    ("医院给的电子票据查不到，单位报不了销", "bj-finance"),
    ("三供一业移交以后，我们家属院楼道漏雨没人管", "bj-sasac"),
    ("社区医院开的药，批号跟盒子上对不上", "bj-drugs"),
    ("路口的消火栓让货车撞了，水喷了一地", "bj-waterworks"),
    ("在一个理财APP上投了五万，现在提不了现", "bj-finance-office"),
    # A dike seeping, a river gone black with dead fish; who set a charge.
    ("村口那段堤坝上有个口子，一直往外渗水", "bj-water"),
    ("小区后面那条河沟发黑发臭，还漂着死鱼", "bj-water"),
    ("医院停车场的收费标准是谁批的，一小时十五块", "bj-ndrc"),
    # Inside the metro, whatever the problem, the line's operator.
    ("我在5号线上把钱包丢了，里面有身份证", "bj-subway"),
    ("14号线的车站里手机一点信号都没有", "bj-mtr"),
    ("6号线的车门把我孩子的书包夹住了，车就开走了", "bj-subway"),
    # A town's housing estate is on the water company's network (a village's water is
    # the town's, and a compound's own pumps the street's).
    ("通州台湖镇，我们小区从早上就停水了，物业说是外面管道坏了", "bj-waterworks"),
    ("房山长沟镇的村里自来水停了两天了", "110111108"),
    ("昌平南邵镇，我们楼是二次供水，水泵坏了，六楼以上没水", "110114111"),
    # A main road's lights are the city's lighting; a road's guardrail is transport's.
    ("南四环辅路那一段的路灯一个礼拜都不亮了", "bj-urban-mgmt"),
    ("进山那条公路的护栏被撞断了一截", "bj-transport"),
    # Trees by a road, and catkins, are forestry's (a compound's tree is the street's).
    ("刚才风大，马路边一棵大杨树歪了，压着电线，底下是公交站", "bj-forestry-parks"),
    ("每年春天杨絮满天飞，孩子过敏，能不能给树打针", "bj-forestry-parks"),
    # From retired v15's misses: a farm or workshop letting its waste into a ditch is
    # ecology and environment's even in a village, and 炸街 outside a compound the
    # traffic police's, whatever the learned model reads of the place.
    ("庞各庄镇繁荣村，村东头一个养猪场臭得不行，粪水还往沟里排", "bj-ecoenv"),
    ("曹家路村有个小作坊，半夜往河沟里排黑水，一股子化学味儿", "bj-ecoenv"),
    ("滟澜新宸小区外面每天夜里一两点有改装车炸街，轰油门，整个小区都被吵醒", "bj-traffic-police"),
    # A named line is the subway's; a bus stop's shelter is the bus company's; a child
    # not home hours after school is the police's to search.
    ("坐燕房线的时候车停在半路上十几分钟，广播就说临时停车", "bj-rail-ops"),
    # ... and the category model does not take it to the buses for 加车 or 车次.
    ("亦庄线车太少了，早高峰在旧宫站等了三趟才挤上去，建议加车", "bj-subway"),
    ("我每天坐10号线，早高峰双井站根本挤不上去，建议早高峰加密车次", "bj-subway"),
    # A homestead's title is the land registration's; a line with a neighbour in dispute
    # is the village's street (town).
    ("我想知道我家宅基地的确权证什么时候能下来，登记了两年了，刘浩营村", "bj-planning"),
    ("我们西坨村的宅基地确权，我家跟邻居家的界线有争议，村里一直不给解决", "110114003"),
    # A resettlement flat's title stays housing's; contracted farmland is agriculture's;
    # a bus route named by a line's station keeps the bus.
    ("我们小区是回迁房，交房五年了一直没办下来房产证，开发商说在确权，朝阳区东坝", "bj-housing"),
    ("我们塔洼村的土地确权到现在还没弄完，我家承包地比别人少了两亩", "bj-agri-rural"),
    ("10号线双井站出来那个公交站，300路老不来，建议加车", "bj-bus"),
    ("太平庄村口那个公交站的棚子塌了一半，铁皮耷拉着", "bj-bus"),
    ("我家孩子八岁，平时四点就到家，现在都七点了还没回来", "bj-police"),
    # A pipe said to have burst under a road is the water company's, though the category
    # model reads the water on the road as drainage.
    ("安定门外大街辅路上不知道哪的水管爆了，水哗哗往外冒，路面成河了", "bj-waterworks"),
    ("德胜门这边马路上往外冒水，看着像底下水管爆了，都漫到马路牙子了", "bj-waterworks"),
])
def test_who_leads_what_the_words_name(text: str, unit: str) -> None:
    look = first_look(CONFIG, text, at=DAY)
    assert look.route.lead.unit_id == unit, (look.route.rule, look.classification)


def test_a_station_named_after_a_park_is_not_the_park() -> None:
    look = first_look(CONFIG, "北京动物园站的扶梯坏了一个礼拜", at=DAY)
    assert look.route.lead.unit_id != "bj-parks-center", look.route.rule


@pytest.mark.parametrize(("text", "not_unit"), [
    # A word of another remit inside an ordinary request, or a utility's fault that names
    # a park or a cable company, stays with whoever answers for the problem.
    ("路边的行人防护栏被车撞倒了，横在马路中间", "bj-civil-defense"),
    ("社区能不能多给老人防诈骗讲讲课", "bj-civil-defense"),
    ("楼上住的是个退伍老兵，八十多岁，一个人住，暖气一点都不热", "bj-veterans"),
    ("歌华有线施工把燃气管道挖断了，一股煤气味", "bj-radio-tv"),
    ("颐和园北宫门外面的燃气管道漏气了", "bj-parks-center"),
    ("动物园批发市场门口天天堵车", "bj-parks-center"),
    ("燃气热水器的废气管掉了，屋里一股味，人有点头晕", "bj-ecoenv"),
    ("公司拖欠工资三个月了，社保公积金也没交", "bj-provident-fund"),
    ("健身房报了个团课，老板跑路了", "bj-culture-tourism"),
    ("小区旁边在建的养老项目半夜施工", "bj-finance-office"),
    ("保健品推销说是专利产品，我妈买了好几万", "bj-ip"),
    ("潘家园文物市场卖的东西全是假货", "bj-heritage"),
    ("小区里物业偷偷砍树", "bj-forestry-parks"),
    ("清真寺门口的早点摊天天占道经营", "bj-ethnic-religious"),
    ("药店旁边那家饭馆后厨老鼠乱窜", "bj-drugs"),
    ("村北头那片地里有人挖沙子，坑都挖了好几米深", "bj-water"),  # not a river
    ("电线杆上贴满了办证的小广告，刚撕了又贴", "bj-power"),
    ("老旧小区改造，外墙保温做了一半，脚手架搭了两个月没人干活", "bj-housing"),
    ("饭馆后厨的液化气罐一直嘶嘶漏气，一屋子味儿", "bj-emergency"),  # a leak: gas company
    # Found by this round's review: a gas smell is a leak; fireworks set off; a traffic
    # light, a switch room or a pole as a landmark; 改装 of a building; a factory's wages
    # or lorries; a market's vendors; paint thrown out; mediation, a supplier's surcharge,
    # a subsidy, medical insurance; a lift with someone in it.
    ("楼下小饭馆后厨摆着十几个液化气罐，闻着有一股煤气味", "bj-emergency"),
    ("过年了，小区里有人放烟花爆竹，好几箱堆在楼门口放，禁放区没人管吗？", "bj-emergency"),
    ("路口红绿灯旁边那盏路灯坏了好几天了", "bj-traffic-police"),
    ("小区门口红绿灯那儿，物业把门禁关了", "bj-traffic-police"),
    ("把阳台改装成门脸房了，天天有人进出", "bj-traffic-police"),
    ("我在一个厂子干活，老板拖欠工资三个月，去要钱被保安轰出来了", "bj-ecoenv"),
    ("旁边工厂的货车天天轰隆隆地开，把村里的路都压坏了", "bj-ecoenv"),
    ("变电箱旁边有个烧烤摊，天天吵到半夜", "bj-power"),
    ("电线杆旁边那棵树的树枝都挨着我家窗户了，要求修剪", "bj-power"),
    ("早市摊贩占道经营，天天早上吵，希望撤了", "bj-commerce"),
    ("邻居装修，把用剩的油漆桶全扔在楼道里", "bj-emergency"),
    ("邻居家漏水到我家，社区调解了，司法所也调解了，还是不修", "bj-justice"),
    ("物业转供电，电价比国家标准高", "bj-ndrc"),
    ("村里的养老补贴一直没发，镇里说财政资金还没到", "bj-finance"),
    ("单位改制以后，医保断了，想问怎么续上", "bj-sasac"),
    ("电梯卡在六楼了，里面有个老人出不来，电梯合格证都过期半年了", "bj-samr"),
    ("电梯三天两头坏，检验合格证倒是有，没有人来修", "bj-samr"),
    ("我家卫生间的自来水管漏了，物业不管", "bj-waterworks"),  # a home's own pipe
    ("北京通州区，马路上井盖丢了，晚上特别危险", "bj-gov-services"),  # not the 北京通 app
    ("电箱上糊满了小广告，没人清理", "bj-power"),
    ("马路对面的饭馆后厨排风口一直冒热气", "bj-heating"),
    ("网吧门口天天乱停车", "bj-culture-tourism"),
    ("我妈的电动车不见了，停在小区里的", "bj-police"),
    ("有人半夜在小区里开着改装车轰油门，物业不管", "bj-traffic-police"),
    ("楼下一层有人在家里开了个小作坊，机器轰轰响到半夜", "bj-ecoenv"),
    ("我爸国企退休的，这个月养老金少发了三百", "bj-sasac"),  # a pension: labour's
    ("蛋糕店的充值卡不让用了，说是公司改制，让去十公里外的门店", "bj-sasac"),
    ("小区门口没有人行横道，对面就是菜市场，老人过马路太险", "bj-commerce"),
    ("收粮的那个人用的秤有问题，一车少了一百斤", "bj-grain-reserves"),  # the scales
    ("地里打的农药买到假药了，庄稼都黄了", "bj-drugs"),
    ("楼道消火栓箱子里的水带让人拿走了", "bj-waterworks"),  # the compound's
    ("堤坝上天天晚上有人骑摩托飙车", "bj-water"),  # the traffic police's
    ("地铁站出口外面全是摆摊的，通道都堵了", "bj-subway"),  # outside: the street's
    ("我们小区楼下的路灯坏了一个礼拜", "bj-urban-mgmt"),  # a compound's lamp
    # Round 15's review: remit words said in passing.
    ("路边广告牌上的商标掉了一半，风一吹晃得厉害，底下都是人", "bj-ip"),
    ("我在超市买的酱油，商标上写的厂址是假的，吃了拉肚子", "bj-ip"),
    ("粮库旁边的路灯坏了好几个月了", "bj-grain-reserves"),
    ("我在粮库上班，老板拖欠三个月工资", "bj-grain-reserves"),
    ("收粮的人给了假币", "bj-grain-reserves"),
    ("公司投资项目，老板跑路了，我们的工资没发", "bj-finance-office"),
    ("我们楼道里的消火栓漏水，楼梯上全是水", "bj-waterworks"),
    ("网上买东西商家说开电子票据，一直没给我", "bj-finance"),
    ("保健品推销的说他们的是真药不是假药，骗老人买", "bj-drugs"),
    ("我们小区里那棵杨树歪了，物业不管", "bj-forestry-parks"),
])
def test_a_remit_word_in_passing_does_not_take_the_request(text: str, not_unit: str) -> None:
    look = first_look(CONFIG, text, at=DAY)
    assert look.route.lead.unit_id != not_unit, (look.route.rule, look.classification)


def test_an_unknown_excepted_category_is_refused_at_start_naming_the_rule(
        tmp_path: Path) -> None:
    folder = _config_with_rule(
        tmp_path, "cable-tv",
        lambda rule: rule.update(except_category=["public-services.nothing"]))
    with pytest.raises(RoutingError, match=r"\(cable-tv\): unknown category"):
        load_config(folder, with_model=False)


@pytest.mark.parametrize("text", [
    "上周出去办事顺便打了热线，到现在都没回复",
    "我爸有点糊涂，被推销保健品的骗了好几万，人家收了钱就走了",
    "那个外卖小哥穿的黄衣服，把我的饭送错了，手机也打不通",
    "我家猫走失三天了",
])
def test_a_reply_not_come_a_swindle_or_a_pet_is_not_someone_missing(text: str) -> None:
    look = first_look(CONFIG, text, at=DAY)
    assert look.classification.category.code != "public-security.missing", look.classification
    assert look.route.lead.unit_id != "bj-police" or look.classification.tier != "T2H"


@pytest.mark.parametrize(("text", "not_category"), [
    # 来电 is power coming back (来电了) but also the caller of an operator's summary.
    ("来电人反映某网络平台销售的儿童玩具涉嫌仿冒其公司注册的外观设计专利，要求查处",
     "public-services.power"),
    ("市民来电称其孩子在体校训练期间被教练打伤", "public-services.power"),
    ("找过公司好几回，后来电话都不接了，工伤补助一分没给", "public-services.power"),
])
def test_the_caller_of_a_summary_is_not_power_coming_back(text: str, not_category: str) -> None:
    look = first_look(CONFIG, text, at=DAY)
    assert look.classification.category.code != not_category, look.classification.matched


def test_power_coming_back_is_still_power() -> None:
    look = first_look(CONFIG, "我们楼停了一上午了，到底什么时候能来电", at=DAY)
    assert look.classification.category.code == "public-services.power"


@pytest.mark.parametrize(("text", "not_unit"), [
    # Round 16's review: a lorry queueing by a river, village sewage once the factory has
    # gone, a modified car in a compound's garage.
    ("砖厂门口的大货车天天往河边排队，把路都堵死了", "bj-ecoenv"),
    ("村口那个工厂早就搬走了，现在村里的生活污水都往沟里排，臭得不行", "bj-ecoenv"),
    ("新世界家园地下车库天天有人开改装跑车，吵死了", "bj-traffic-police"),
])
def test_round_16s_review_leads(text: str, not_unit: str) -> None:
    assert first_look(CONFIG, text, at=DAY).route.lead.unit_id != not_unit


@pytest.mark.parametrize("text", ["我儿子借给同学的电动车，骑走一个月了还没回来",
                                  "我们家小孩的自行车被学校保安收走了，到现在还没回来"])
def test_a_childs_bicycle_not_back_is_nobody_missing(text: str) -> None:
    look = first_look(CONFIG, text, at=DAY)
    assert look.classification.category.code != "public-security.missing"


def test_the_third_call_of_a_summary_is_not_power() -> None:
    look = first_look(dataclasses.replace(CONFIG, category_model=None),
                      "该市民第三次来电，反映孩子学校收费问题", at=DAY)
    assert look.classification.category.code != "public-services.power"


def test_keep_lead_on_a_rule_led_by_the_street_is_refused_at_start(tmp_path: Path) -> None:
    folder = _config_with_rule(tmp_path, "local-default",
                               lambda rule: rule.update(keep_lead=True))
    with pytest.raises(RoutingError, match="keep_lead: only on a rule led by a department"):
        load_config(folder, with_model=False)
