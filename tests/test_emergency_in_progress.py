"""An emergency in progress, said in plain words, is transferred at once (issue 25 item 1);
the same words about something over and done are not; danger said calmly is T2H."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from pydantic import ValidationError

from activities.dispatch.config import load_config
from activities.dispatch.decide import first_look
from activities.dispatch.lexicon import Lexicon
from activities.dispatch.rules import load_yaml
from tests.fixed_models import reading
from workers.runtime.settings import Settings

CONFIG = load_config(Settings().config_dir)
MIN = CONFIG.rules.review.min_confidence
DAY = date(2026, 12, 6)
RULES_ALONE = replace(CONFIG, model=None)  # what the rules catch without the learned model


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


@pytest.mark.parametrize(("text", "service"), [
    ("小孩从河里捞上来了，一点反应都没有，有人在按胸口", "120"),
    # A stroke as a relative sees it; a wound that keeps bleeding; people cut off on a
    # sandbank by rising water.
    ("我妈刚才说话突然含含糊糊的，嘴角往一边歪", "120"),
    ("我家老头喝着茶呢，右胳膊一下子抬不起来了", "120"),
    ("孩子让铁丝划了个口子，按着还是一直流血", "120"),
    ("河心那块沙洲上有两个钓鱼的回不来了，水还在涨", "119"),
    ("塔吊旁边的架子塌了，底下压着两个工人", "120"),
    ("锅里的热油洒了，全泼在我闺女手上，起泡了，一直哭", "120"),
    ("我妈在卫生间摔了，说起不来了，门从里面反锁着", "120"),
    ("有人一直在踹我家的门，骂骂咧咧的", "110"),
    ("回家一看门锁被撬了，里面有动静，我不敢进去", "110"),
    ("我爸正在柜台要转账给一个自称警察的人，我劝不住", "110"),
    ("车被水困在下穿桥里了，水已经漫到车窗了", "119"),
    ("两个孩子下河游泳，有一个没上来", "119"),
    ("工地的升降机井里有人掉下去了，下面没动静", "120"),
    ("孩子把奶奶的药吃了好几片，现在还挺精神", "120"),
    ("路边一辆车翻到沟里了，里面有人", "120"),
    ("我爸胸口闷了半天，出了一身汗", "120"),
    ("积水一米多，司机爬到车顶上了", "119"),
    ("河面上有个孩子掉冰窟窿里了", "119"),
    # Someone trapped in a crashed car is cut out by the fire brigade.
    ("路口撞车了，有个车翻了，里面的人出不来", "119"),
    ("有个女的站在楼顶边上要跳楼，下面围了好多人", "110"),
    ("有人打起来了，现在还在打", "110"),
    ("一开门屋里被翻了个底朝天，被翻了以后厨房那边还有动静", "110"),
    ("对面天台上有个小男孩蹲在边上往下看，大人不在", "110"),
    ("说是物业来检查燃气的，收了钱，物业说根本没这事，他还在楼上挨家敲门", "110"),
    ("我妈打完胰岛素没吃饭，一脑门冷汗，说话迷迷糊糊的", "120"),
    ("有个姑娘翻过护栏坐在桥边上", "110"),
    ("我老婆怀着二胎，突然破水了", "120"),
    ("我闺女两岁，刚才喝了两口消毒液", "120"),
    ("河里有人落水了，刚被路人救上来，浑身发抖", "120"),
    ("对面楼的阳台着了，火往上烧", "119"),
    ("三个人下到化粪池里清淤，半天没上来", "119"),
    ("塔吊上掉下来一块钢板，砸在一辆轿车上，车里有人", "119"),
    ("桥洞下面积水，司机站车顶上喊人", "119"),
    ("楼下饭馆砰的一声，墙都塌了一块，有烟冒出来", "119"),
    ("煤气罐阀门着了个火苗，浇水也没灭", "119"),
    ("家里进贼了，我在门口听见屋里还有动静", "110"),
    ("刚才轰的一声，窗户玻璃都碎了，好像有人受伤", "119"),
    ("对面楼有个小孩坐在窗台外面，家里没大人", "119"),
    ("地下室里冒出好大的烟，里面住着人，敲门没人应", "119"),
    ("楼下饭馆后厨能看见火光，烟往楼上飘", "119"),
    ("潮白河河心有几个钓鱼的被水围住了，水还在涨", "119"),
    ("有人在河道里钓鱼，水涨了被困在中间的小岛上了", "119"),
    ("工地的塔吊倒了，砸到一个工人，人压在底下了", "120"),
    # Read in retired v13's misses: smoke in a lift with people shut in, someone pinned
    # under a vehicle, a child whose eyes roll up all of a sudden.
    ("电梯里冒烟了，里头还困着一个老太太，一直拍门", "119"),
    ("三轮车翻了，一个老大爷被压在车底下，腿还在流血", "120"),
    ("孩子发着高烧，刚才一下子翻白眼了", "120"),
    ("路口一个骑车的被大货车压在车轮底下了", "120"),
    ("我们人没事，但前面那辆车积水没过车窗了，里面还有个老人出不来", "119"),
    ("家里停电没空调，热得不行，老人喘不上气了", "120"),
    ("孩子在河边玩掉水里了，在河里扑腾呢", "119"),
    # Written after round 22's read: water up to a car's windows or a car held by it, a
    # child locked in a car, a car weaving as if drunk.
    ("我们车在桥洞底下被水困住了，水到车窗下面了，门推不开", "119"),
    ("下穿桥积水了，一辆出租车熄火泡在里头，水已经到车窗了，司机在车顶上坐着", "119"),
    ("邻居把孩子锁车里了，车停在太阳底下，孩子哭得脸通红", "119"),
    ("前面有辆轿车左摇右晃的，一会儿压线一会儿骑马路牙子，估计是喝多了", "110"),
    ("刚吃了一口芒果，嘴唇和眼睛都肿了，嗓子有点紧，喘气有点费劲", "120"),
])
def test_the_rules_alone_transfer_an_emergency_said_as_seen(text: str, service: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", [
    # Someone stuck in a lift is the street's T2H (it presses the maintenance company).
    "电梯卡在两层中间了，我爷爷在里面，物业电话没人接",
    # A fire said not to be burning, or only feared.
    "配电箱一直冒火花，有焦味，还没着火",
    "楼道里堆满了纸箱子，这要着起火来谁也跑不了",
    # A fraud or a shove that is over.
    "上周有人让我把钱转到安全账户，我转了五千，后来才觉得不对劲",
    "牛棚让雪压得快塌了，里面还有人在喂牛",
    # Words that also say ordinary things (a review of this round's patterns found each).
    "我反映了好几次都没有反应，楼道灯还是不亮",
    "下水道的井盖不见了",
    # Water to a car's windows with everyone already out is a flooded underpass's two hours.
    "下凹桥底下积水都到车窗了，有辆出租车熄火在里面，人出来了，后面还有车往里开",
    # Short of breath shut in a stuck lift, however the lift's stop is said (9 of 9: the
    # lift's two hours, the street pressing the maintenance firm).
    "电梯停在七楼和八楼中间了，里面关着一个孕妇，快足月了，她在里面说有点喘不上气",
    "我们楼的电梯突然停了，我媳妇怀孕八个月困在里面，她说有点喘不上气，维保说最快二十分钟到",
    # Round 22's review: a bus driven roughly, a toy locked in a car, an ankle swollen
    # and stairs that leave one short of breath.
    "今天坐的公交车，司机开得左摇右晃的，好几次急刹车，老人都站不稳，太危险了",
    "孩子的玩具锁车里了，车钥匙也在里面，能不能找人帮忙开一下？",
    "我脚踝崴了肿得老高，家住六楼，电梯坏了一个月了，爬楼梯喘气都费劲",
    # A factory's fumes that tighten the throat are pollution, not an allergy.
    "厂子一到夜里就往外排气，一股刺鼻的化学味儿，嗓子眼儿发紧，眼睛也辣",
    "工地里面有人还在干活，吵得睡不着",
    "物业说现在就动手修，结果一周了还没来",
    "快递员说东西太多了拿不住",
    "饭馆用明火烧烤",
    "未见明火，就是有点烟味",
    "楼道的烟感半夜一直响，吵得睡不着",
    "楼上空调水天天滴到了我的车顶上",
    "小区的热水一会儿烫一会儿凉，洗澡烫得孩子直哭",
    "树倒了压着车，车里没人",
    "上个月家里锁被撬了",
    "上周有人踹我家门",
    # A transfer word said as a fear, of another day, or as a figure of speech.
    "消防通道让私家车堵死了，真着火了消防车根本进不来",
    "楼道里堆满了旧家具，着火了都跑不出去",
    "不是真着火，是我心里着火，业委会选举被物业操纵了",
    "昨天夜里楼底下有人打架，今天地上全是碎酒瓶子没人扫",
    "我老伴去年中风，现在坐轮椅，坡道让车堵了",
    "再这样我就要跳楼了，楼下KTV天天唱到两点",
    "两家物业争地盘，两边快打起来了",
    "投资公司人去楼空，好多老人都被骗了",
    # 还在 + a verb of work or play is noise, not violence.
    "半夜十二点了工地还在打桩，咣咣的",
    "楼上晚上十一点了还在打电钻",
    "隔壁都十点多了还在砸墙",
    "从昨天晚上到现在打电话都没人接，想让社区去看看我妈",
    "井盖被车压翻了，立着卡在井口上",
    "外墙的瓷砖往下掉，昨天砸在自行车棚上，今天底下还有人走",
    # How someone speaks, a stroke long ago, a child's speech, a pet that bleeds, a fence
    # that fell on a pavement (a review of this round's patterns found each).
    "我要投诉社区的工作人员，说话含糊不清，问什么都推",
    "楼下保安满嘴歪理，不让外卖电动车进小区",
    "我爸前年脑梗，现在说话不利索，想问一下能不能办残疾证",
    "我家孩子四岁了说话口齿不清，想问哪里有语言康复训练",
    "我肩周炎好几年了，胳膊抬不起来，医保能报销针灸吗",
    "我家狗被流浪狗咬了，一直流血，小区里流浪狗太多了，谁管？",
    "工地围挡被风吹倒了一大片，压在人行道上",
    "昨天夜里刮大风，街上的树倒了一棵，没砸到人，就是挡路",
    # ... and a clerk's rolled eyes, a pigeon flapping, a packed carriage, smoke that makes
    # it hard to breathe from a fire of rubbish nobody is in.
    "窗口那个办事员问两句就冲我翻白眼，什么态度",
    "对面楼有人养鸽子，天天在我家窗台上扑腾，鸽子屎掉一窗台",
    "10号线晚高峰车厢里挤得人都喘不上气了，能不能多加几趟车",
    "村边有人烧塑料，熏得人喘不上气，天天晚上烧",
    "房贷压得我喘不上气，想问问公积金能不能提前还",
    "物业费涨得太多了，让人喘不上气",
    "我的申请材料让他们压在底下，一直不给办",
    "邻居在楼顶水箱上面养鸽子，整天扑腾",
    "我问了两句，她突然冲我翻白眼，态度太差了",
])
def test_the_rules_do_not_transfer_a_lift_a_feared_fire_or_something_over(text: str) -> None:
    look = first_look(RULES_ALONE, text, at=DAY)
    assert look.classification.redirect_to is None, look.classification.matched


@pytest.mark.parametrize("text", [
    "楼下邻居在储藏室里囤了十几桶汽油，说是便宜时候买的",
    "底商那家店往屋里搬了好多液化气罐，上面全是住户",
    "昨晚的山洪把进村的路冲断了，村里人出不去",
    "胡同里的公共水管冻住了，一院子人都没水用",
    "十字路口的红绿灯全灭了，车和人抢着走",
    "门口挖了个大坑，也没有警示牌，晚上看不见",
    "零下十几度，桥洞下面有个流浪的老人",
    "河边那段护栏让车撞没了，晚上黑咕隆咚的",
    "楼道里有人放着两桶汽油",
    "厂里的危化品就堆在露天院子里",
    "邻居在楼道里用液化气罐炒菜",
    "锅炉房的压力表一直往上走，没人会弄",
    "广告牌的电线耷拉到地上了",
    "高压线断了一根，搭在庄稼地里嗡嗡响",
    "一楼家里往上反污水，都漫到客厅了",
    "下水道往上返水，卫生间地漏全冒黑水，一楼好几家都淹了",
    "村上游那个水闸的闸门关不上了，水库还在放水",
    # From retired v14's misses: water over charging piles, fumes that sting now, a
    # train stopped in a tunnel without air, sewage about to come indoors.
    "地下车库进水好几天了，充电桩都泡在水里",
    "对面化工厂冒黄烟，味儿刺鼻，我们眼睛都睁不开",
    "厂子那边飘过来一股刺鼻的味儿，楼里好多人咳嗽",
    "地铁停在隧道里二十多分钟了，车里空调关了，有人闷得慌",
    "化粪池满了，粪水快流到屋里了",
    # From retired v15's misses: coal burnt for heat where people sleep shut in, a dam
    # that may break, a leak reaching the switch, a load-bearing wall being knocked out.
    "草莓大棚里住着人，大冬天的烧蜂窝煤取暖，棚子封得严严实实，我担心会中毒",
    "上游有人拦河筑坝养鱼，这两天水位上涨，担心溃坝冲了下游的村子",
    "楼上漏水那个，修完了又漏了，这回漏到电闸那儿了，我把闸拉了",
    "民宿冬天烧炭盆，昨天晚上有客人说头疼恶心，今天还在烧",
    "邻居装修把承重墙砸了一半，我们楼都在震，他们还在砸呢",
])
def test_the_rules_alone_give_two_hours_to_danger_said_calmly(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H"


def test_fireworks_set_off_at_night_are_noise_not_danger() -> None:
    look = first_look(RULES_ALONE, "小区外面天天晚上有人放烟花爆竹，响到半夜", at=DAY)
    assert look.classification.tier != "T2H"



@pytest.mark.parametrize("text", [
    "邻居搬家放了一早上鞭炮",
    "楼下在做装修，油漆味很大",
    "马桶盖板坏了",
    "洗衣机的水管冻住了，洗衣机用不了",
    "旁边化工厂一股刺鼻的味儿，都好几个月了",
    "地铁在两站中间停了一会儿又走了",
])
def test_the_rules_alone_do_not_make_an_ordinary_matter_t2h(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier != "T2H"


def test_a_broken_not_now_pattern_is_refused_with_its_name() -> None:
    doc = load_yaml(Settings().config_dir / "categories.yaml")
    doc["redirect_not_now"]["before"] = ["(万一"]
    with pytest.raises(ValidationError, match=r"redirect_not_now\.before: bad pattern"):
        Lexicon.model_validate(doc)


@pytest.mark.parametrize(("text", "transferred"), [
    ("看到一个变压器在冒烟，嗞嗞响，旁边就是个幼儿园", False),
    ("刚才变压器那边砰的一声，冒了股烟，然后楼里就全没电了", False),
    ("楼道里墙上的电线盒子一直在冒烟，有点塑料烧焦的味儿", False),
    ("楼下配电箱一直在冒烟，还有点小火苗", True),
])
def test_equipment_smoking_is_its_owners_two_hours_unless_flames_are_said(
        text: str, transferred: bool) -> None:
    """The model would transfer all four to 119; rules.yaml's ``equipment_smoke`` keeps it
    from doing so where no flames are said."""
    cl = first_look(CONFIG, text, at=DAY).classification
    assert cl.tier == "T2H"
    assert (cl.redirect_to == "119") is transferred, cl.matched



@pytest.mark.parametrize(("text", "service"), [
    # A time word that says when it began, or a caller's own emergency, is still now
    # (a review found the first hedges silencing these).
    ("我割腕了", "120"),
    ("我呼吸困难，快不行了", "120"),
    ("我妈从昨天晚上开始昏迷不醒", "120"),
    ("十分钟以前隔壁起火了火很大", "119"),
    ("上次那个小偷又来撬锁了", "110"),
    ("孩子快没有呼吸了", "120"),
    ("着火了消防车还没到", "119"),
    ("救命啊，家里着火啦", "119"),
    ("有人跳楼了，躺在楼下", "120"),
    ("楼道里电线旁边堆的纸箱子着了，一直冒烟", "119"),
    ("配电箱冒烟了，楼道里全是烟", "119"),
    # From retired v10's missed transfers.
    ("厂里好几个工人中午吃完饭上吐下泻，有一个已经起不来了", "120"),
    ("我妈说胸口闷得慌，一直冒冷汗", "120"),
    ("孩子的手卡在电梯门缝里了，拔不出来", "119"),
])
def test_an_emergency_going_on_now_is_not_hedged(text: str, service: str) -> None:
    assert first_look(CONFIG, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", [
    "楼上小孩从床上往下跳，咚咚的吵死了",
    "行人翻过护栏横穿马路，建议加高护栏",
    "暖气不热，晚上冻得出冷汗直哆嗦",
    "天台上总有人坐在边上抽烟，物业不管",
    "树枝砸在车上了，还好没人在车里",
    "村里井里的水两天都没上来",
    "停车场总有小孩站车顶上蹦",
    "上次有人掉河里好不容易才救上来，河边护栏到现在也没修",
    "有个小区的地下车库里，电动车起火了以后烧黑的车一直没拉走",
])
def test_ordinary_matters_in_emergency_words_are_not_transferred(text: str) -> None:
    assert first_look(CONFIG, text, at=DAY).classification.redirect_to is None


def test_someone_stuck_in_a_lift_is_the_streets_two_hours_whatever_the_model_reads() -> None:
    """The model reads "高血压" as a 120 call; rules.yaml model.street_emergency keeps it
    from transferring a lift entrapment (the street presses the maintenance company)."""
    text = "我爸困电梯里了，他有高血压，心脏也不好，说头晕"
    look = first_look(CONFIG, text, at=DAY)
    assert look.classification.redirect_to is None and look.classification.tier == "T2H"
    assert look.outcome(MIN) == "DISPATCH"


@pytest.mark.parametrize(("text", "service"), [
    # Violence with someone bleeding, and someone at the edge who will not answer, are the
    # police's first (they bring the ambulance) ...
    ("楼下饭馆门口有人打架，有一个人脑袋上全是血，还在打", "110"),
    ("楼顶上坐着个小伙子，坐在边沿上，喊他也不理", "110"),
    ("湖边有个人站了半天了，一直往水里看，叫他也不理，我挺害怕", "110"),
    # ... a road crash with someone bleeding stays the ambulance's, and so does someone
    # who has already hurt themselves; a fire is the fire service's, fight or no fight.
    ("路口有个骑车的让车撞了，躺地上腿流了好多血，车跑了", "120"),
    ("我爸说活着没意思，喝了农药，现在口吐白沫", "120"),
    ("我爸拿着刀切菜把手指头切了，血止不住", "120"),
    ("楼下饭馆两伙人打起来了，有人把店给点着了，火很大", "119"),
])
def test_who_comes_first_when_the_words_call_for_two_services(text: str, service: str) -> None:
    look = first_look(RULES_ALONE, text, at=DAY)
    assert look.outcome(MIN) == "REDIRECTED" and look.classification.redirect_to == service


def test_a_first_pattern_for_a_service_with_no_words_is_refused() -> None:
    doc = load_yaml(Settings().config_dir / "categories.yaml")
    doc["redirect_first"] = {"110": {"over": ["999"], "patterns": ["打架"]}}
    with pytest.raises(ValidationError, match="redirect_first for services not in redirect"):
        Lexicon.model_validate(doc)


@pytest.mark.parametrize(("text", "tier"), [
    # Discoloured water alone is a day; water that makes people ill is two hours.
    ("这两天水龙头放出来的水是黄的，有股铁锈味，烧开了底下一层渣", "T24H"),
    ("村里井水这几天发浑，好几家喝了都拉肚子，孩子也闹肚子", "T2H"),
    ("自来水里有股农药味，不敢喝", "T2H"),
    # A dog that has bitten and e-bikes charged in the stairwell: a day, not two hours.
    ("小区流浪狗越来越多，昨天还追着咬了个孩子", "T24H"),
    ("邻居天天在楼道里给电动车充电，从窗户拉的线", "T24H"),
])
def test_the_rules_give_water_dogs_and_charging_the_tier_most_writers_give(
        text: str, tier: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier == tier


@pytest.mark.parametrize("text", [
    "我们这老楼六层没电梯，我腿脚不好，想问问加装电梯要多少户同意",  # 没电梯 is not 没电
    "我的房子没人住，能不能申请停暖？停暖费怎么算？",  # asking to stop one's own heating
])
def test_a_missing_lift_or_a_heating_stop_asked_for_is_not_an_outage(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier != "T2H"


@pytest.mark.parametrize("text", [
    "车棚里有人私拉电线给电动车充电，插排就搁在地上，下雨都泡水里了",
    "楼上那家窗外的空调架子锈得快掉了，正对着楼下的便道",
])
def test_a_socket_in_water_or_a_bracket_about_to_fall_is_two_hours(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H"


@pytest.mark.parametrize(("text", "two_hours"), [
    # A loose handrail or its paint coming off is a repair; a handrail gone is a fall.
    ("楼梯扶手松动了，一扶就晃", False),
    ("楼道扶手上的胶皮掉了", False),
    ("楼梯扶手整段掉了，老人没处扶", True),
    # Illness named before the water, and poison smelt in plain 水, are still two hours.
    ("这两天全家都拉肚子，自来水放出来是黄的", True),
    ("家里的水有一股农药味，孩子喝了一口就吐了", True),
    # 没电视 is not 没电.
    ("我家没电视信号好几天了", False),
])
def test_handrails_water_and_television_are_two_hours_only_when_dangerous(
        text: str, two_hours: bool) -> None:
    assert (first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H") is two_hours


@pytest.mark.parametrize(("text", "service"), [
    # From retired v12's misses: transfers said as seen ...
    ("楼道里有股烟味儿，烟从他家门缝底下往外冒，我敲门没人应，门把手摸着有点烫", "119"),
    ("下暴雨，院里的水已经灌进屋了，到膝盖了，我姥姥腿脚不好在里屋出不来", "119"),
    # (lost in the hills: the police, 2 writers of 3 — retired v17)
    ("我们几个人爬野长城，天黑了迷路了，有个同伴崴了脚走不了", "110"),
    ("我现在在一辆出租车上，司机没按导航走，一直往郊区开，问他也不说话，我有点害怕", "110"),
    # ... and no transfer where nobody is in danger now.
    ("楼停电了，电梯停在半截不动了，我爸腿脚不好住十八楼，下不来也上不去", None),
    ("地下车库里一股子燃气味儿，下去取车的都闻着了", None),
    ("好几户都停电了，说是变压器烧了，冒了一股黑烟就没电了", None),
    ("大桥底下的石头墩子被水冲得露了根，桥上还在过大车", None),
    ("有个老人前几天摔了一跤，现在躺在炕上起不来，儿女不在身边", None),
    ("路口的红绿灯杆子让车撞倒了，斜躺在马路中间", None),
])
def test_v12s_missed_and_false_transfers(text: str, service: str | None) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


def test_a_car_in_flood_water_with_its_people_out_is_the_drainage_companys() -> None:
    """The model transfers a car in deep water to 119; once the caller says the people are
    out, it is water to pump out (rules.yaml ``model.not_in_progress``)."""
    text = "桥底下积水到车窗了，有辆车熄火在里面，人已经出来了，后面还有车往里开"
    look = first_look(CONFIG, text, at=DAY)
    assert look.classification.redirect_to is None, look.classification.matched
    assert look.classification.tier == "T2H" and look.route.lead.unit_id == "bj-drainage"


@pytest.mark.parametrize("text", ["小区停车场闸门坏了，抬不起来", "地铁站闸门打不开"])
def test_a_barrier_gate_is_not_a_sluice(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier != "T2H"


@pytest.mark.parametrize(("text", "service"), [
    # From retired v14's misses: a swindle being paid out now, smoke that sends a building
    # down the stairs ...
    ("刚才把验证码告诉了一个冒充客服的，现在卡里的钱正一笔一笔往外转", "110"),
    ("楼道里冒烟了，一股焦味，楼上的人都在往下跑", "119"),
    # ... and a robbery that keeps happening, said as 最近: the pattern is hedged as the
    # words are.
    ("最近老有人在小区门口抢包，晚上都不敢出门", None),
])
def test_v14s_missed_and_false_transfers(text: str, service: str | None) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize(("text", "service"), [
    # From retired v15's misses: smoke at a neighbour's door ...
    ("楼道里有股烧焦的味儿，好像是从对门飘出来的，门缝里有点烟，他家今天没人", "119"),
    # ... and what is not an emergency going on: a renovation knocking out a wall (the
    # street's two hours, above), a bar's drums, asking a company for its accounts, a
    # headache of yesterday, straw burnt in the open.
    ("邻居装修把承重墙砸了一半，墙上都是裂缝，他们还在砸呢", None),
    ("后海边上那几家酒吧，每天夜里两三点还在放音乐、打鼓", None),
    ("物业费一年一涨，问他们要账目也不给，我们业主想换物业", None),
    ("民宿冬天烧炭盆，昨天晚上有客人说头疼恶心，今天还在烧", None),
    ("村里有人烧秸秆，烟大得不得了，整个村都是烟，呛得人眼睛疼", None),
    ("有人在葡萄园旁边焚烧秸秆，烟特别大，高速上都看不清了", None),
])
def test_v15s_missed_and_false_transfers(text: str, service: str | None) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


# A model reading a 119 transfer (P 0.7) whatever the text, as the shipped model did on
# the first two requests below until round 21 retrained it.
READS_119 = reading(REDIRECT_119=0.7)


@pytest.mark.parametrize(("text", "why"), [
    # A model reading 119 in both is not followed: straw burnt in the open with no flames
    # is the street's, and a driver who climbed out of a flooded car leaves the water to
    # the drainage company.
    ("北台头村有户人家在烧秸秆，烟一直往我们这边刮，不过他家人在旁边看着，火不大",
     "burning in the open"),
    ("莲花桥底下积水了，有辆小轿车熄火泡在里头，司机自己爬出来了，可后头的车还往里开",
     "not happening now"),
    # Round 21's review: a chimney's black smoke is pollution, not a fire.
    ("阎村镇某小区旁边锅炉房烟囱冒黑烟，熏得整个小区都是煤烟味", "a chimney's smoke"),
])
def test_the_model_does_not_transfer_what_is_no_fire_now(text: str, why: str) -> None:
    cl = first_look(replace(CONFIG, model=READS_119), text, at=DAY).classification
    assert cl.redirect_to is None
    assert any("not made" in m and why in m for m in cl.matched), cl.matched


@pytest.mark.parametrize(("text", "service"), [
    # Round 15's review: 最近 as "nearest", clauses apart with spaces, 这会儿 as now, a
    # hedged mention before a live one (of a pattern and of a word), a guarded pattern
    # hedged where its words are ...
    ("我们楼最近的那户人家着火了", "119"),
    ("最近小区老有人打架 快来人啊 楼下打起来了", "110"),
    ("最近老有人跟踪我他这会儿就在我家门口砸门", "110"),
    ("昨天有人在小区门口抢包，刚才又有人抢包，人还没走", "110"),
    ("楼下饭馆着火了！上次着火了也是这家，老板也不管", "119"),
    ("上次我爸喘不上气送医院了，这次好多了，想问问社区有没有上门体检", None),
    # ... money moving out only with a swindle's marks; swindles being paid now.
    ("公司账上的钱正在往外转，老板要跑路，工资还没发", None),
    ("开发商把监管账户里的钱正往外转，楼盘要烂尾了", None),
    ("我妈在银行柜台要给骗子汇款，我拦不住她，柜员也劝不住", "110"),
    ("刚才接了个电话，对方说是公安局的，让我把钱转到安全账户，我已经转了一半", "110"),
    ("我手机被人远程控制了，银行卡一直在扣钱，一会儿一笔", "110"),
    ("我接到一个电话说我涉嫌洗钱，让我把钱转到安全账户，我转了三万，后来才觉得不对", None),
])
def test_round_15_reviews_transfers(text: str, service: str | None) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize(("text", "two_hours"), [
    ("楼下饭馆油烟呛人，我家孩子一直咳嗽", False),
    ("隔壁装修刷漆，味道刺鼻，熏得眼睛疼", False),
    ("游泳馆氯气泄漏了，好多人眼睛疼，都在咳嗽", True),
    ("小区里有人烧东西，一股刺鼻的黑烟，好几个人都咳嗽", True),
    ("去年地下车库淹过一次，充电桩泡坏了，到现在也没换新的", False),
    ("小区门口积水好几天了，旁边就是充电桩，晚上路过怕滑倒", False),
    ("地铁区间总是停车，空调也关，闷得慌，希望改进", False),
    ("地铁6号线停在半道上四十分钟了，没空调没通风，有人快不行了", True),
    ("下水道堵了，污水都流到屋里了", True),
    ("路口的消火栓让货车撞了，水喷了一地", True),
])
def test_round_15_reviews_two_hours(text: str, two_hours: bool) -> None:
    assert (first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H") is two_hours


def test_a_train_stuck_in_a_tunnel_is_not_someone_who_cannot_move() -> None:
    look = first_look(RULES_ALONE, "地铁卡在隧道里不动了，广播也不说，已经半个多小时，车厢里有老人",
                      at=DAY)
    assert look.classification.redirect_to is None


@pytest.mark.parametrize(("text", "service"), [
    # Round 16's review: a transfer pattern sees past a line break and past 装修 said of
    # something else; open burning that spreads or is indoors is still a fire; symptoms
    # of today after a quiet yesterday are still the ambulance's ...
    ("楼上邻居两口子吵架\n现在还在砸东西，孩子一直哭", "110"),
    ("地址：朝阳区某小区\n楼道里全是烟，呛得看不见，下不去楼", "119"),
    ("我老公又喝多了，现在还在砸东西，家里刚装修好的，孩子吓得直哭", "110"),
    ("有人在楼道里烧垃圾，楼道里全是烟，呛得看不见，下不去楼", "119"),
    ("地里有人烧秸秆，风一刮烧到旁边的仓库了，烟越来越大，看不清", "119"),
    ("家里一直烧煤炉子取暖，昨天还好好的，今天早上我妈起来头晕恶心，站都站不稳", "120"),
    ("滴滴司机半路上把车门锁了，不让我下车，一直往郊区开", "110"),
    # ... while a smell of cigarette smoke, a boss who will not pay and a house left
    # half-built are none.
    ("对门老头天天在屋里抽烟，我家门缝有股烟味，熏得孩子咳嗽", None),
    ("我们老板拖欠三个月工资了，问他要钱也不给，电话也不接", None),
    ("装修了一半公司跑路了，现在房子扔在那儿没法住", None),
])
def test_round_16s_review_transfers(text: str, service: str | None) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", [
    # The model's 119 is kept where the fire spreads, or someone is still in the car.
    "有人烧荒，火烧到山坡上的林子里了，往村子这边过来了",
    "桥底下积水很深，一辆出租车泡在里面，司机爬出来了，后座还有乘客没出来",
])
def test_the_model_still_transfers_a_fire_that_spreads_or_people_still_inside(
        text: str) -> None:
    assert first_look(CONFIG, text, at=DAY).classification.redirect_to == "119"


@pytest.mark.parametrize("text", [
    # Round 16's review: coal said of the past, a question, a lecture or a blocked lane;
    # a dam in a question or broken last year.
    "前几年村里有人烧煤中毒，现在煤改气了，可是燃气费太贵了",
    "我们这平房区冬天烧煤球的多，社区能不能组织个讲座讲讲怎么防中毒",
    "卖蜂窝煤的三轮车把胡同口堵得严严实实，车都过不去",
    "想咨询一下，我们村上游水库如果溃坝了往哪儿撤离",
    "去年发大水把村里的橡胶坝冲垮了，到现在还没修好",
])
def test_coal_and_dams_not_in_danger_now_are_not_two_hours(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier != "T2H"


@pytest.mark.parametrize(("text", "service"), [
    # From retired v16's misses: a burglar's noise next door, a child's head stuck in a
    # railing, a child shut in with the stove on, a pot boiled dry behind a locked door,
    # a greenhouse fallen in on people not seen since, someone down who only grunts, bones
    # out of shape, a driver pulled out and beaten ...
    ("我邻居一家出国了，刚才听见他家屋里有翻东西的动静，门好像被撬过，我不敢过去看", "110"),
    ("我儿子五岁，刚才在阳台把脑袋钻进防护栏杆里了，拔不出来，一直哭", "119"),
    ("风把门给带上了，我三岁的孩子一个人在屋里，煤气灶上还坐着锅", "119"),
    ("隔壁大爷出门了，他家锅在灶上烧干了冒烟，屋里全是糊味儿，门锁着进不去", "119"),
    ("昨天夜里下大雪，大棚被压塌了，棚里还住着看棚的老两口，早上没见他们出来", "119"),
    ("隔壁一个孤寡老头倒在院子里，喊他他能嗯一声，但起不来", "120"),
    ("有个朋友从石头上滑下来了，腿好像断了，骨头都变形了，动不了", "120"),
    ("两辆车剐了一下，有个司机把另一个司机从车里拽出来打，脸上都是血了，还在打", "110"),
    # ... and what is none: people throwing rubbish down a blocked chute, a site's
    # breaker at midnight.
    ("我们楼的垃圾道堵了，上面的人还在往下扔，臭味顺着楼道往家里钻", None),
    ("拆迁工地夜里十二点多还在用炮锤砸水泥，震得我家玻璃都响", None),
])
def test_v16s_missed_and_false_transfers(text: str, service: str | None) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", [
    # From retired v16's misses: sewage backing up into ground-floor homes, a whole
    # compound's heating gone cold with a child ill.
    "这栋楼一层好几户，下水道往上返污水，屋里地上全是，臭得不行",
    "污水井往外冒，黑水流了一整条胡同，住户门槛都挡不住了，有一户已经进屋了",
    "小区的换热站坏了，全小区暖气都凉了，已经一整天了，我家孩子发烧",
])
def test_v16s_missed_two_hours(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H"


@pytest.mark.parametrize(("text", "service"), [
    # The second review of round 16: a call still being made or a drip is no blow; a
    # demolition crew smashing a door, a drunk smashing cars by a road works, bricks
    # thrown by a rubbish chute, and 憋得喘不上气 of someone with COPD are emergencies ...
    ("老人突然晕倒了，叫不醒，邻居还在打急救电话", "120"),
    ("施工队的人正在砸我家的门，说要强拆，我们一家人都在屋里", "110"),
    ("楼下路面施工好几天了，刚才有个喝醉的人现在正在砸路边停的车", "110"),
    ("楼上有人正在往下扔砖头，垃圾道口那儿差点砸到人", "110"),
    ("我爷爷慢阻肺，氧气用完了，憋得喘不上气，社区医院关门了", "120"),
    # ... and these are not: an old man alone with a stove that will not light, a
    # greenhouse whose compensation "没出来", a kettle sent back, mice, old deformities, a
    # guardrail bent by rocks, a load-bearing wall being drilled, a site's steel, cards, a
    # lawsuit.
    ("我家老人一个人在家里住，煤气灶老打不着火，想找燃气公司上门看看", None),
    ("去年大棚被雪压塌了，看棚的老人住着的那间房补偿款到现在还没出来", None),
    ("买的电水壶干烧冒烟了，没有自动断电，要求商家退货", None),
    ("家里天花板上有动静，像是老鼠，晚上孩子都不敢睡", None),
    ("类风湿十几年了，手指骨头都变形了，想问门诊特殊病怎么报销", None),
    ("山上滚下来的石头把护栏砸变形了，就在109国道边上", None),
    ("楼上装修现在正在打承重墙，整栋楼都在震", None),
    ("工地夜里还在扔钢管，叮叮咣咣的", None),
    ("半夜还在打牌，吵得睡不着", None),
    ("我跟开发商还在打官司", None),
])
def test_round_16s_second_review_transfers(text: str, service: str | None) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", ["路边污水井冒黑水，流到我们门口，家里都是臭味",
                                  "门口污水横流，我踩了一脚，进了屋满地都是脚印",
                                  "暖气费一交，心都凉了，物业收费太贵"])
def test_sewage_at_the_door_and_a_cold_heart_are_not_two_hours(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier != "T2H"



@pytest.mark.parametrize(("text", "service"), [
    # From retired v17's misses: smoke with the building's people running out, someone
    # lost on a hill as night falls, a car the wrong way on an expressway, gas inside a
    # home whose door nobody answers, someone pinned under a vehicle without 被, a crash
    # with someone bleeding (the ambulance's, not the police's).
    ("楼道电箱那儿冒烟了，一股糊味儿，楼里的人都在往外跑", "119"),
    ("我们俩在香山后山走岔了道，迷路了，天都黑了，同伴还崴了脚", "110"),
    ("有辆黑色轿车在京承高速上逆行，往我们这边冲过来了", "110"),
    ("对门老太太家里一股很冲的煤气味，敲门半天没人应，屋里灯还亮着", "119"),
    ("路口一辆电动三轮侧翻了，骑车的大爷压在车底下出不来", "120"),
    ("刚才在路口我的车追尾了前车，前车司机额头出血了，说话还算清楚", "120"),
])
def test_v17s_missed_transfers(text: str, service: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", [
    # ... and what is none: a lift that fell and will not open ("现在门打不开" is no blow),
    # a kitchen fire already put out, a smell of gas on the stairs with doors unanswered
    # (the gas company's two hours), a wrong-way e-bike that is a standing complaint.
    "单元电梯突然往下掉了几层，卡住了，现在门打不开，里面有两个人",
    "楼上邻居炒菜油锅着了，已经拿锅盖捂灭了，就是楼道里有点呛",
    "楼道里有股煤气味，挨家敲门都没人应，不知道谁家的",
    "小区门口老有外卖电动车逆行，好几次差点撞到人",
])
def test_v17s_false_transfers(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to is None


@pytest.mark.parametrize("text", [
    # From retired v17's misses: a bus stalled in deep water with people aboard, a fire
    # hydrant knocked off and gushing.
    "路上积水太深，一辆公交车在水里熄火了，车上还有乘客，水往车里灌",
    "路口的消火栓让货车撞断了，水柱喷了好几米高",
])
def test_v17s_missed_two_hours(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H"


@pytest.mark.parametrize("text", [
    # From the round's review: no one bleeding, a pet hurt, a cat under a car, wrong-way
    # riding as a standing complaint, a courier who keeps losing his way.
    "两车追尾了，没人流血，我们自己协商好了，就是想问问保险怎么走",
    "我家的猫被车撞了，一直流血，附近有没有宠物医院",
    "一只猫压在车底下出不来，叫得可惨了",
    "小区门口主路上经常有人骑电动车逆行，太危险了，希望交警管一管",
    "送快递的经常迷路，天黑了更找不着，希望物业装个指示牌",
])
def test_the_rounds_new_transfer_patterns_leave_these_alone(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to is None


@pytest.mark.parametrize(("text", "service"), [
    # From retired v18 (read after its end-of-round score): a fire said to be out already,
    # later in the same sentence, is no transfer; one still burning is.
    ("我们这片全停电了，说是变压器着火了，火已经灭了，可电一直没来，家里还有个发烧的孩子", None),
    ("村里配电房起火冒烟，现已熄灭，但全村停电，有卧床的老人", None),
    ("楼下着火了，火很大，邻居说已经打了119，火还没灭", "119"),
])
def test_a_fire_already_out_is_no_transfer(text: str, service: str | None) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", [
    # ... and two hours for a whole compound without heat, a room at 9 ℃ with someone
    # bedridden, a station's lift stuck with someone inside.
    "我们小区这几天整个小区都没暖气，晚上屋里跟冰窖一样，孩子还发着烧",
    "家里暖气一直不热，今天室温降到9℃了，家里有卧床的老人",
    "地铁站那个无障碍直梯卡住了，里面有个坐轮椅的大爷出不来",
])
def test_v18s_missed_two_hours(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H"


def test_a_room_at_fifteen_or_sixteen_degrees_is_not_two_hours() -> None:
    # 十五六度 is not 六度: a heating complaint for a day (as its writer labels it).
    text = "我们楼暖气温度不达标，室温仅十五六度，已经一个星期了"
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier != "T2H"


@pytest.mark.parametrize(("text", "service"), [
    # From retired v19 (read after its one score at the round's start): smoke with sparks;
    # a man walking a compound with a kitchen knife; a worker buried in a trench; a driver
    # weaving across the lanes; a lift stuck with smoke and someone inside.
    ("我们院里那个电线啊，老化了，刚才开始冒烟，有股胶皮烧焦的味儿，还有点火星子", "119"),
    ("小区里有一名男子手持菜刀在楼下来回走，嘴里喊着要找人算账，居民都不敢下楼", "110"),
    ("工地沟槽塌方，一名工人被埋至胸部，工友正在用手刨土", "119"),
    ("我在路上开车，前面一辆白色SUV一直在那儿画龙，刚才差点撞上一个骑车的，肯定是喝多了", "110"),
    ("电梯停在两层中间了，里面有烟冒出来，有股焦糊味，我老伴还在里面，拍门喊呢", "119"),
])
def test_v19s_missed_transfers(text: str, service: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", [
    # ... and what stays: sparks from a box with no smoke (the power company's two hours),
    # a pipe buried under a road, a knife held in a shop's advert.
    "我们平房院里的电表箱冒火星子了，噼里啪啦的，现在没火了，我把总闸拉了",
    "施工队把小区的消防栓给埋了，上面堆了一堆土",
    "村里的自来水管子冬天老冻，能不能把管子埋深一点",
])
def test_v19s_transfer_patterns_leave_these_alone(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to is None


@pytest.mark.parametrize("text", [
    # ... and two hours for a traffic light out with cars going every way, and glass
    # falling from a curtain wall.
    "路口信号灯故障，灯全部熄灭，现场车辆无序通行，已发生剐蹭，无人疏导",
    "写字楼的玻璃幕墙有一块出现裂纹，今日有玻璃碎片坠落至便道",
])
def test_v19s_missed_two_hours(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H"


@pytest.mark.parametrize("text", [
    # From the readable sets: short of breath, or a child crying in a mother's arms, shut
    # in a stuck lift is the lift's two hours (5 of 5 writers), not an ambulance or the
    # police; a child dragged off crying by a stranger still is the police's.
    "我孕七个多月，被困在电梯里了，已经十来分钟了，里面越来越热，我有点喘不上气",
    "我们楼的电梯卡住了，里面有个孕妇，人在里面说有点喘不上气，维保的电话一直打不通",
    "电梯困人了，我媳妇抱着孩子在里头，说里头特别热，孩子一直哭，物业电话打不通",
])
def test_short_of_breath_in_a_stuck_lift_is_the_lifts_two_hours(text: str) -> None:
    look = first_look(CONFIG, text, at=DAY)
    assert look.classification.redirect_to is None and look.classification.tier == "T2H"


def test_a_child_dragged_off_crying_is_still_the_polices() -> None:
    text = "小区门口有个人拉着一个小女孩往车里塞，孩子一直在哭在挣，不像是她家里人"
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == "110"


@pytest.mark.parametrize("text", [
    # From the readable sets: a smell that grows is not smoke that grows; sparks that have
    # stopped (现在不打了) are nobody striking anyone; a door that will not push (推不动了)
    # is nobody lying still.
    "楼道里有股焦糊味儿，好像是电线烧了，我找了一圈没看见哪冒烟，味越来越大",
    "胡同里的电线老化，昨天晚上打火了，噼里啪啦的，现在不打了",
    "这两天我们楼下的地面裂了好几条缝，而且在往下沉，单元门都有点推不动了",
])
def test_the_rules_transfer_none_of_these(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to is None


@pytest.mark.parametrize("text", [
    # From round 18's review: the round's new transfer patterns leave a grave, a cable, a
    # drain or 埋汰; a barbecue, a welder, a chimney or straw with sparks every day, sparks
    # that keep coming with a smell, smoke not found; graffiti of a dragon, e-bikes or a
    # mobility scooter weaving; a fitter with a spanner, a cook with a cleaver; a road
    # buried by a landslide with nobody under it.
    "我家老人埋在昌平那个公墓，公墓管理费一年涨一次",
    "后院邻居盖房，他把排水沟埋住了，一下雨水全流我家院里",
    "门口的人行道被埋了一半，全是渣土",
    "家里孩子被埋汰得不行",
    "楼下烧烤摊天天冒烟，晚上火星子乱飞，希望城管管管",
    "旁边工地晚上电焊，冒烟还火星四溅，吵得睡不着",
    "饭馆的烟囱天天冒烟，有时候还带火星子",
    "楼下有人烧秸秆，冒烟还有火星子往我们院里飘",
    "充电桩插头那儿老打火星，有点烟味，物业不管",
    "物业说电箱冒烟了，我去看了，没冒烟也没有火星",
    "我们小区墙上不知道谁画龙画凤的，乱涂乱画",
    "外卖电动车天天在人行道上蛇形走位，希望管管",
    "小区里的老年代步车开得歪歪扭扭，没牌没照",
    "物业的维修工手持扳手把我家暖气阀门给关了",
    "饭馆厨师天天手持菜刀在店门口剁肉",
    "我闺女抱着孩子困在电梯里了，孩子一直哭",
    "我们村出村的唯一一条路被塌方的土石埋了，车出不去，村里有个孕妇预产期就这两天",
])
def test_the_reviews_texts_are_no_transfer_by_the_rules(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to is None


@pytest.mark.parametrize(("text", "service"), [
    # ... while someone buried, someone ill short of breath near or in a stuck lift, and a
    # fire an extinguisher did not put out stay transfers, by the rules alone.
    ("有个工人让土埋了，就露个脑袋", "119"),
    ("沟槽塌方，埋进去一个人", "119"),
    ("邻居老太太刚才突然喘不上气，我们楼电梯又卡住了，担架上不来", "120"),
    ("家里老人心脏病，在电梯里困住了，现在喘不上气，脸都白了", "120"),
    ("家里油锅着了，我拿灭火器扑了两下，没用，火越来越大", "119"),
])
def test_the_reviews_transfers_stay(text: str, service: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize(("text", "service"), [
    # From retired v20 (read after its end-of-round score): a chimney on fire, a worker
    # fallen from a scaffold who cannot move, a flood round a house with people upstairs,
    # a car weaving (东倒西歪), a mother at the bank paying a fake policeman, a man who
    # followed the caller home and waits at the door, thick smoke up the stairs.
    ("后沙峪那边一个饭馆烟囱着了，从房顶往外冒火星子和黑烟，里头的人都跑出来了", "119"),
    ("工地一工人从约四米高的脚手架坠落，意识尚清醒但腿部无法动弹，工友已守在身边", "120"),
    ("十渡卧龙村，河水涨上来了，把我们这个农家院围上了，我们一家五口还有两个客人都在二楼平台上",
     "119"),
    ("前面一辆白色小轿车开得东倒西歪的，一会儿压线一会儿别车，司机八成是喝多了", "110"),
    ("我妈现在就在工商银行柜台，非要给一个自称公安局的人转三十万，柜员也拦不住", "110"),
    ("这几天有个男的老跟着我下班，今天又跟到我们楼下了，现在就在单元门外面来回走", "110"),
    ("楼道里一股烧焦的味儿，浓烟是从一楼那家饭馆后厨窜上来的，我们在五楼，楼梯间已经看不清了",
     "119"),
])
def test_v20s_missed_transfers(text: str, service: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", [
    # ... and no transfer for a van slid to the roadside, a site pounding at night, pollen
    # that leaves someone short of breath outdoors, a bus-stop sign the wind blew over, a
    # charging lead that sparked (起火花) last night.
    "山路冻上了，刚才一辆面包车出溜到沟边上了，还好没翻",
    "工地天天夜里施工，昨儿夜里两点还在那儿哐哐砸，打桩机震得我家玻璃直响",
    "杨絮飘得跟下雪似的，我老伴儿哮喘，一出门就喘不上气，能不能给树打打药",
    "村口那个公交站，站牌子去年让风刮倒了，到现在还躺在沟里",
    "楼道内电动车充电线从窗户拉下来，今晚起火花冒烟后被邻居拔掉，现线路仍在，担心再次起火",
])
def test_v20s_false_transfers(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to is None


@pytest.mark.parametrize("text", [
    # ... and two hours for drums leaking near a school, a stroke turned away at the door.
    "村外废院子堆了好多铁桶，这两天有几个桶漏了，流出来的东西黑乎乎的，味儿呛嗓子",
    "急诊科的护士说床位满了让我们去别的医院，可我爸是脑梗刚发作送过来的",
])
def test_v20s_missed_two_hours(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H"


@pytest.mark.parametrize(("text", "service"), [
    # From retired v21 (read after its start-of-round score): an e-bike battery smoking
    # or sparking now is 119's (7 of 8 such requests in the readable sets); a chimney in
    # flames still is.
    ("楼道里有人给电动车充电，电池那块一直冒白烟，噼里啪啦响，我们都躲到院子里了", "119"),
    ("车棚里一辆电瓶车的电瓶鼓包了，正在冒黑烟，旁边停着好几十辆", "119"),
    ("烤鸭店的烟囱往外冒火苗子，旁边就是居民楼", "119"),
])
def test_v21s_missed_transfers(text: str, service: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", [
    # ... and no transfer for a carriage too full to squeeze onto (挤不动了), blood-water
    # from a yard that kills sheep, a crash a month ago and weeks lying at home, a boiler
    # house's or a chimney's black smoke, a van slid into the ditch with nobody hurt, a
    # battery that smoked and went out by itself.
    "早高峰车厢挤得跟沙丁鱼罐头似的，我一个五十多岁的人实在挤不动了，建议加车",
    "小区后面的院子天天夜里杀羊，血水还顺着沟流出来，又吵又腥",
    "我是送外卖的，上个月送餐路上被车撞了，腿骨折了，在家躺了一个多月，站点不给报工伤",
    "楼下锅炉房烟囱冒黑烟，一股煤味儿",
    "工厂锅炉房在冒黑烟，一整天都在冒，楼顶上都是黑灰",
    "昨晚下冻雨，早上已经有一辆面包车滑到沟里了，人没事，得赶紧撒融雪剂",
    "刚才楼下有家的电动车电瓶冒烟，大家想拿消防栓浇，一开啥都没有，幸好自己灭了",
])
def test_v21s_false_transfers(text: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to is None


def test_v21s_children_in_deep_water_now_are_two_hours() -> None:
    now = "村东边那个挖沙留下的大坑积满了水，这会儿有五六个半大孩子在里面游泳打闹，大人不在跟前"
    summer = "现在天热了，孩子们老去村口那个大坑游泳，能不能插个牌子"
    assert first_look(RULES_ALONE, now, at=DAY).classification.tier == "T2H"
    assert first_look(RULES_ALONE, summer, at=DAY).classification.tier != "T2H"


@pytest.mark.parametrize(("text", "two_hours"), [
    # From retired v21: plaster off a stairwell's walls is repair work (6 of 8 such
    # requests in the readable sets are seven or fifteen days); tiles or plaster off an
    # outer wall over a pavement still fall on people.
    ("我们这栋老楼楼道里墙皮一块一块往下掉，冬天楼道里灌风，社区能不能协调一下维修", False),
    ("楼道里的墙皮大片大片往下掉，这个楼是不是该纳入老旧小区改造", False),
    ("我们楼外墙的墙皮一块一块往下掉，底下就是人行道", True),
])
def test_v21s_plaster_in_a_stairwell(text: str, two_hours: bool) -> None:
    assert (first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H") is two_hours


@pytest.mark.parametrize(("text", "two_hours"), [
    # Round 19's review: plaster in a stairwell said other ways, children in a pool (no
    # deep open water) are no two hours by the rules.
    ("楼梯间的墙皮往下掉，好几年了没人管", False),
    ("走廊里的墙皮脱落了，物业不管", False),
    ("楼道里面的墙皮一直往下掉，物业几年都不管", False),
    ("现在孩子在小区泳池游泳，水特别浑，想问问谁管", False),
])
def test_round_19s_review_two_hours(text: str, two_hours: bool) -> None:
    assert (first_look(RULES_ALONE, text, at=DAY).classification.tier == "T2H") is two_hours


@pytest.mark.parametrize(("text", "service"), [
    # ... while someone in the river whose state the caller asks about (人没事吧) and
    # blood coming down from a flat nobody answers stay transfers.
    ("有人掉进河里了，人没事吧不知道，快来", "119"),
    ("血水顺着楼上往下流，邻居家里不知道出什么事了，敲门没人应", "120"),
])
def test_round_19s_review_transfers_stay(text: str, service: str) -> None:
    assert first_look(RULES_ALONE, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize(("text", "service"), [
    # From set v23: thick smoke with the alarms going while people leave; a meter box
    # smoking with a red glow inside; chest tightness with a sweat and heart disease.
    ("我们写字楼十二层楼道里突然有很浓的烟，烟感报警器一直在响，我们正从楼梯往下走", "119"),
    ("楼道里电表箱冒烟了，一股塑料糊味，拿手电照里面好像有点红光", "119"),
    ("我爷爷刚才说胸口闷，像压了块石头，出了一头汗，他有冠心病", "120"),
])
def test_round_20s_emergencies_in_progress(text: str, service: str) -> None:
    assert first_look(CONFIG, text, at=DAY).classification.redirect_to == service


@pytest.mark.parametrize("text", [
    # ... but a smoke alarm that keeps going off with no smoke, a box that sparked last
    # week, and a chest tight in a crowded carriage are not.
    "楼道里的烟感报警器老是自己响，也没有烟，物业不来修",
    "小区的配电箱上礼拜冒过火花，现在还没人来检查",
    "地铁里挤得胸口闷，出了一身汗，能不能多加几趟车",
])
def test_round_20s_transfers_leave_these(text: str) -> None:
    assert first_look(CONFIG, text, at=DAY).classification.redirect_to is None


def test_money_not_paid_yet_is_no_fight() -> None:
    # From the round's review: "到现在还没打到账上" read as 现在…打 (a blow) was a 110 transfer.
    look = first_look(CONFIG, "去年拆迁签了协议，补偿款到现在还没打到账上，镇里一直拖着", at=DAY)
    assert look.classification.redirect_to is None


def test_someone_fallen_into_a_septic_tank_is_119s() -> None:
    assert first_look(CONFIG, "化粪池里有人掉进去了，快来人", at=DAY
                      ).classification.redirect_to == "119"
    # (A leg through a broken cover, pulled out, is the cover's two hours.)
    assert first_look(CONFIG, "小区里一个窨井盖碎了，刚才一个孩子一条腿掉下去了，被大人拉上来了，"
                              "孩子没大事，可是那个洞还在那儿敞着呢", at=DAY
                      ).classification.redirect_to is None


@pytest.mark.parametrize("text", [
    # From round 20's second review: cooking smoke or a barbecue that sets the alarm off
    # every day, a glow from a barbecue or a chimney, a fire long over, and a cover fallen
    # in two years ago are no transfers.
    "楼下烧烤店好大的烟，我家烟感报警器都响了好几回了，天天这样",
    "做饭炒辣椒好大的烟，烟感一直叫，物业说这个烟感太灵敏了",
    "烧烤摊天天晚上冒烟，炭火烧得通红",
    "工厂烟囱一天到晚冒烟，晚上整片天都映得红彤彤的，怕有污染",
    "前年化粪池里就有人掉进去过，盖子到现在也没修好",
    "补偿款到现在还没打到账上",
    "我住燕郊，暖气到现在还不热，打了好几次电话物业都不管",
])
def test_round_20s_second_review_no_transfer(text: str) -> None:
    assert first_look(CONFIG, text, at=DAY).classification.redirect_to is None


@pytest.mark.parametrize(("text", "service"), [
    ("楼下那帮人打了半个多小时了，现在还没打完，有人脸上都是血", "110"),
    ("有人掉化粪池里了，快来人救救", "119"),
    ("小孩掉进化粪池了，就露个头", "119"),
])
def test_round_20s_second_review_transfers(text: str, service: str) -> None:
    assert first_look(CONFIG, text, at=DAY).classification.redirect_to == service


def test_a_chimney_with_flames_coming_out_is_still_a_fire() -> None:
    cl = first_look(replace(CONFIG, model=READS_119),
                    "小区锅炉房的烟囱冒黑烟，火苗都窜出来了，旁边就是居民楼", at=DAY).classification
    assert cl.redirect_to == "119"
