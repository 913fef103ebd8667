"""A small simulated city for ``hotline demo``: citizens' filings and how everyone behaves.

Pure and deterministic: :func:`generate_city` turns a seed into ``ComplaintFiled`` records
(natural Chinese text from slot templates, real districts and streets from
``beijing_units.csv``) and, for every case, a plan of what the units, the citizen, a
supervisor and the callback centre will do with it. ``workers/devstack/demo.py`` plays those plans
against the real stack.

Besides ordinary handling (with the lateness that makes the escalation ladder climb), a
seeded share of the cases exercises each handling rule of DESIGN.md: returns and
re-dispatch (twice: city coordination), extensions (by rule, and longer ones a supervisor
decides), whistled-in assisting units, supplements, urges (twice: one level up),
withdrawals, repeat filings merged into the open case, and callbacks that reopen the case.
Those rules need time to play out, so they go to T7D/T15D cases; the tier of each case
comes from the real classifier, as the worker will compute it.

The templates are written against ``categories.yaml``: the classifier takes the *first*
category whose keywords appear in the text, so each template names its own category's
keywords and none of an earlier category's (``tests/test_demo_city.py`` checks every
generated text with the real classifier).
"""

from __future__ import annotations

import csv
import math
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from activities.dispatch.classify import classify
from activities.dispatch.config import HotlineConfig, load_config
from workers.open311.model import ApiClient, complaint_id_for
from workers.runtime.settings import REPO_ROOT, get_settings

UNITS_CSV = REPO_ROOT / "deploy" / "config" / "beijing_units.csv"
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST in China since 1991
# Event ids of filings are uuid5 of the complaint id: stable for a seed, unique per case.
_EVENT_NS = uuid.UUID("6f1c2a34-12a5-4b8e-9d0e-8c1f5a3e2b70")

# Relative call volume per district (roughly population; the big urban districts dominate).
DISTRICT_WEIGHTS: dict[str, float] = {
    "朝阳区": 16, "海淀区": 13, "丰台区": 9, "昌平区": 9, "大兴区": 7, "通州区": 7,
    "西城区": 5, "东城区": 4, "顺义区": 5, "房山区": 5, "石景山区": 3, "门头沟区": 2,
    "怀柔区": 2, "平谷区": 2, "密云区": 2, "延庆区": 1.5,
}
# Approximate centre of each district, for the optional coordinates of a filing.
DISTRICT_CENTRES: dict[str, tuple[float, float]] = {
    "东城区": (39.928, 116.416), "西城区": (39.912, 116.366), "朝阳区": (39.921, 116.443),
    "海淀区": (39.959, 116.298), "丰台区": (39.858, 116.287), "石景山区": (39.906, 116.223),
    "门头沟区": (39.937, 116.102), "房山区": (39.736, 116.139), "通州区": (39.902, 116.657),
    "顺义区": (40.130, 116.654), "昌平区": (40.218, 116.235), "大兴区": (39.727, 116.338),
    "怀柔区": (40.324, 116.632), "平谷区": (40.144, 117.112), "密云区": (40.377, 116.843),
    "延庆区": (40.465, 115.985),
}
CHANNEL_WEIGHTS: dict[str, float] = {
    "PHONE": 55, "APP": 15, "WECHAT": 12, "MINI_PROGRAM": 10, "WEB": 8,
}

SATISFIED = "SATISFIED"
BASICALLY_SATISFIED = "BASICALLY_SATISFIED"
UNSATISFIED = "UNSATISFIED"
RESOLVED = "RESOLVED"
PARTLY_RESOLVED = "PARTLY_RESOLVED"
NOT_RESOLVABLE = "NOT_RESOLVABLE"

# What acceptance should decide for a template (the workflow's Outcome values).
DISPATCH = "DISPATCH"
ANSWERED_DIRECTLY = "ANSWERED_DIRECTLY"
REDIRECTED = "REDIRECTED"
MERGED = "MERGED"  # a repeat filing of an open case

# The citizen's later calls about an open case.
SUPPLEMENT = "SUPPLEMENT"
URGE = "URGE"
WITHDRAW = "WITHDRAW"

# Tiers long enough for returns, extensions, whistles and the citizen's calls to play out
# against a scaled clock (T2H is ~0.15 s and T24H ~1.7 s at the demo's time scale).
LONG_TIERS = ("T7D", "T15D")


@dataclass(frozen=True)
class Template:
    """One kind of citizen request, with ``{slots}`` filled per case.

    Slots: ``loc`` (district/street/road/estate as a caller says it), ``estate``,
    ``road``, ``road2``, ``place`` (a spot on the road), ``spot`` (a spot in the estate),
    ``bld``, ``unit_no``, ``floor``, ``district``, ``time``, ``when`` (today, for
    emergencies), ``days``, ``months``, ``years``, ``year``, ``amount``, ``bus``,
    ``item``, ``food``, ``job``, ``workplace``, ``line`` (subway), ``age``.
    """

    key: str
    category: str
    kind: str
    text: str
    weight: float = 1.0
    outcome: str = DISPATCH
    emergency: bool = False


_T = Template
TEMPLATES: tuple[Template, ...] = (
    # --- public services: water, power, gas, heating, drainage, bus --------------------
    _T("water-yellow", "public-services.water", "COMPLAINT",
       "{loc}{bld}{time}自来水发黄，烧开后还有沉淀，家里老人孩子都不敢喝，请自来水公司来检测一下水质。"),
    _T("water-pressure", "public-services.water", "COMPLAINT",
       "{loc}{time}水压特别低，{floor}以上的住户基本接不上水，洗澡做饭都成问题。"),
    _T("power-trip", "public-services.power", "COMPLAINT",
       "{loc}{bld}{time}经常跳闸，电压不稳，家里冰箱空调都不敢开，请供电公司来查一下线路。"),
    _T("gas-meter", "public-services.gas", "HELP",
       "{loc}{bld}家里的燃气表{time}显示异常，充值后还是打不着火，营业厅说要排队等一周，请帮忙协调。"),
    _T("gas-pipe", "public-services.gas", "SUGGESTION",
       "{loc}一带的平房到现在还在烧煤取暖，希望能尽快通上天然气，老人冬天烧煤太不方便了。"),
    _T("heating-cold", "public-services.heating", "COMPLAINT",
       "{loc}{bld}{time}暖气一直不热，室温只有十四五度，家里有刚出生的孩子，请供热单位尽快处理。",
       weight=3),
    _T("heating-half", "public-services.heating", "COMPLAINT",
       "{loc}{bld}已经交了采暖费，可是暖气片上半截热下半截凉，{time}一直这样，请派人来检修。", 2),
    _T("drain-blocked", "public-services.drainage", "COMPLAINT",
       "{loc}{spot}的下水道堵了{days}，污水漫到路上，味道很大，请尽快疏通。"),
    _T("drain-puddle", "public-services.drainage", "COMPLAINT",
       "{road}{place}一下雨就积水，最深的地方能没过脚踝，行人和车辆都过不去，请排水部门来看看。"),
    _T("bus-last", "public-services.bus", "COMPLAINT",
       "{bus}公交车{time}经常不按时发车，末班车提前半小时就收车了，下夜班的人根本赶不上。"),
    _T("bus-stop", "public-services.bus", "SUGGESTION",
       "{road}的公交车站拆了以后一直没有恢复，附近老人坐车要多走一公里，建议恢复这一站。"),
    _T("bus-driver", "public-services.bus", "COMPLAINT",
       "{bus}的司机{time}开车很猛，急刹车好几次，车上老人差点摔倒，请公交集团加强管理。"),
    _T("subway-escalator", "public-services.subway", "COMPLAINT",
       "地铁{line}号线{road}站的出站口扶梯{time}一直停用，老人拎着东西爬楼梯很吃力，请尽快修好。"),
    _T("subway-security", "public-services.subway", "SUGGESTION",
       "早高峰地铁{line}号线换乘的人太多，安检口排队要二十多分钟，建议多开几个安检口。"),
    _T("telecom-signal", "public-services.telecom", "COMPLAINT",
       "{loc}{time}手机信号很差，在家打电话经常断线，宽带也时好时坏，运营商一直说在排查。"),
    # --- housing -------------------------------------------------------------------------
    _T("lift-broken", "housing.lift", "COMPLAINT",
       "{loc}{bld}电梯又坏了，已经停了{days}，老人上下楼很困难，请尽快修理。", 3),
    _T("lift-noise", "housing.lift", "COMPLAINT",
       "{loc}{bld}的电梯{time}运行时有异响，有时还会突然往下一沉，居民都不敢坐，担心出事。"),
    _T("lift-install", "housing.lift", "SUGGESTION",
       "我们{estate}是九十年代的老楼，{bld}住了很多老人，希望能加装电梯，不知道需要走什么程序。"),
    _T("certificate-late", "housing.certificate", "COMPLAINT",
       "我{year}年在{loc}买的商品房，开发商到现在都没给办房产证，去问了好几次都说在走流程，请帮忙督促。"),
    _T("certificate-resettle", "housing.certificate", "COMPLAINT",
       "{loc}回迁房交房已经{years}了，不动产登记一直办不下来，孩子上学都受影响。"),
    _T("agent-deposit", "housing.agent", "COMPLAINT",
       "我在{road}附近通过中介租房，退租时房间没有任何损坏，中介以各种理由押金不退，{time}一直拖着。"),
    _T("agent-longlet", "housing.agent", "COMPLAINT",
       "{loc}附近的一家长租公寓{time}突然通知不续约，预交的半年房租不退，好多租户都遇到同样的问题。"),
    _T("group-rental", "housing.group-rental", "REPORT",
       "{loc}{bld}有一套房子被人打了隔断改成群租房，住了十几个人，进进出出很不安全，请查一查。"),
    _T("compound-roof", "housing.compound", "COMPLAINT",
       "{loc}{bld}顶层屋顶漏雨，{time}一下雨家里墙面就渗水发霉，找物业好几次都没人来修。", 2),
    _T("compound-service", "housing.compound", "COMPLAINT",
       "{loc}的物业{time}不作为，楼道灯坏了几个月没人修，单元门禁也是坏的，外人随便进出。", 2),
    _T("compound-leak", "housing.compound", "HELP",
       "{loc}{bld}楼上卫生间漏水，{time}把我家天花板泡坏了，楼上住户不配合，物业也不管，请帮忙协调。"),
    # --- labour, market, health, education -----------------------------------------------
    _T("wages-arrears", "labour.wages", "HELP",
       "我在{workplace}做{job}，老板拖欠工资{months}了，一共{amount}元，一直推脱不给，请帮忙讨薪。",
       weight=2),
    _T("wages-insurance", "labour.wages", "COMPLAINT",
       "我在{road}附近一家公司上班，公司{time}一直没给交社保，找人事也没结果，请劳动部门查一下。"),
    _T("pension-late", "labour.social-insurance", "HELP",
       "我{year}年办理退休，养老金{time}一直没有按时发放，社保经办机构说还在核算，请帮忙问问。"),
    _T("prepaid-gym", "market.prepaid", "COMPLAINT",
       "我在{road}一家健身房办了{amount}元的会员卡，{time}健身房突然关门，老板跑路了，请帮忙维权。",
       weight=2),
    _T("prepaid-salon", "market.prepaid", "COMPLAINT",
       "{loc}附近的一家美发店劝我办卡充值，现在想退卡店家不同意，说充进去的钱概不退还。"),
    _T("online-return", "market.online", "COMPLAINT",
       "我在网店买的{item}有质量问题，申请退货{time}商家一直不处理，平台客服也不管，请帮忙协调。"),
    _T("online-parcel", "market.online", "COMPLAINT",
       "{loc}的快递{time}总是不送上门，直接放在驿站也不打电话通知，找快递公司也没有结果。"),
    _T("price-tags", "market.price", "COMPLAINT",
       "{road}一家商场{time}搞促销，明码标价的东西结账时价格比标签贵了不少，找商家也不给说法。"),
    _T("food-expired", "market.food", "REPORT",
       "我在{road}一家超市买的{food}已经过期{days}了，还摆在货架上卖，店员态度还很差，请市场监管部门查处。"),
    _T("food-kitchen", "market.food", "REPORT",
       "举报{road}一家餐馆后厨卫生很差，有老鼠出没，吃完饭后肚子疼，请相关部门检查食品安全。"),
    _T("medical-registration", "health.medical", "COMPLAINT",
       "{district}某医院挂号太难了，{time}在网上一直挂不上号，现场的号也被号贩子抢光了，请卫健部门管一管。"),
    _T("medical-attitude", "health.medical", "COMPLAINT",
       "{loc}社区卫生服务站的医生{time}态度很差，给老人看病很不耐烦，还开了很多不必要的药。"),
    _T("insurance-refund", "health.insurance", "HELP",
       "我在{district}住院的医疗费报销{time}一直办不下来，医保窗口让我补了三次材料。"),
    _T("epidemic-vaccine", "health.epidemic", "HELP",
       "{loc}社区卫生服务中心的流感疫苗{time}一直约不上，家里老人想打疫苗，想知道什么时候能到货。"),
    _T("epidemic-flu", "health.epidemic", "COMPLAINT",
       "最近甲流疫情比较严重，{loc}附近的药店{time}退烧药一直断货，孩子发烧买不到药。"),
    _T("school-place", "education.school", "COMPLAINT",
       "孩子今年该上小学了，我们户籍就在{loc}，可是片区的学校说学位已满，让去很远的学校入学。"),
    _T("school-training", "education.school", "COMPLAINT",
       "{loc}附近有一家培训机构{time}突然关门，交的一万多元课外班费用退不回来，很多家长都受骗了。"),
    _T("school-kindergarten", "education.school", "SUGGESTION",
       "{loc}的幼儿园门口早晚接送孩子的时候秩序很乱，希望能安排人员在门口疏导。"),
    # --- traffic, order, environment, urban management -----------------------------------
    _T("parking-crossing", "traffic.parking", "COMPLAINT",
       "{road}{place}{time}经常有车违章停车，把路口堵得死死的，早晚高峰堵车特别严重。", 2),
    _T("parking-lights", "traffic.parking", "SUGGESTION",
       "{road}与{road2}交叉口没有红绿灯，车流量很大，行人过马路很危险，建议增设信号灯。"),
    _T("parking-locks", "traffic.parking", "COMPLAINT",
       "{loc}门口的路边{time}被人用地锁和石墩占了，说是私人车位，居民回家没地方停车。"),
    _T("taxi-refusal", "traffic.taxi", "COMPLAINT",
       "昨天晚上在{road}打车，出租车司机嫌路近拒载，态度还很差，车号我已经记下来了。"),
    _T("bikes-pile", "traffic.bikes", "COMPLAINT",
       "{loc}门口的共享单车越来越多，单车堆成一片，行人根本过不去，希望运营企业及时清理。"),
    _T("noise-site", "order.noise", "COMPLAINT",
       "{loc}旁边的工地{time}一直夜间施工，施工声吵得人根本睡不着，请城管查处。", 3),
    _T("noise-dance", "order.noise", "COMPLAINT",
       "{loc}{spot}每天晚上有人跳广场舞，音响开得很大，一直到十点多，严重扰民。", 2),
    _T("noise-bar", "order.noise", "COMPLAINT",
       "{loc}{bld}楼下的酒吧{time}噪音很大，凌晨还在放音乐，请相关部门管一管。"),
    _T("vendors-road", "order.vendors", "COMPLAINT",
       "{road}{place}{time}聚集了大量流动商贩，占道经营卖水果和烤串，行人只能走机动车道，很危险。",
       weight=2),
    _T("vendors-nightmarket", "order.vendors", "COMPLAINT",
       "{loc}附近的夜市{time}一直开到凌晨，摊贩把人行道都占满了，走路都过不去。"),
    _T("vendors-exam", "order.vendors", "SUGGESTION",
       "{road}一带晚上有很多小摊，旁边就是考点，考生晚上休息受影响，希望考试期间管一管。"),
    _T("rubbish-pile", "environment.rubbish", "COMPLAINT",
       "{loc}{spot}的垃圾{time}一直没人清运，堆得像小山一样，臭味很大。", 2),
    _T("rubbish-dumping", "environment.rubbish", "REPORT",
       "{road}路边有人偷倒建筑垃圾，{time}越堆越多，已经占了半条路。"),
    _T("rubbish-bins", "environment.rubbish", "COMPLAINT",
       "{loc}的垃圾桶{time}满了也没人收，周围苍蝇乱飞，请环卫部门增加清运次数。"),
    _T("pollution-bbq", "environment.pollution", "COMPLAINT",
       "{loc}{bld}楼下新开了一家烧烤店，油烟直接往楼上飘，{time}家里窗户都不敢开。", 2),
    _T("pollution-dust", "environment.pollution", "COMPLAINT",
       "{road}附近的搅拌站{time}粉尘很大，附近居民家里的窗台一天就落一层灰，请环保部门查一查。"),
    _T("pollution-factory", "environment.pollution", "REPORT",
       "{road}附近的一家工厂{time}晚上偷偷排放废气，有很刺鼻的异味，附近居民都闻得到。"),
    _T("streetlight-dark", "urban.streetlight", "COMPLAINT",
       "{road}{place}的路灯{time}一直不亮，晚上黑漆漆的，老人走夜路很不安全。"),
    _T("streetlight-potholes", "urban.streetlight", "COMPLAINT",
       "{road}的路面坑洼不平，{time}一下雨坑里全是水，已经有骑车的人摔倒了。"),
    _T("streetlight-pavement", "urban.streetlight", "COMPLAINT",
       "{loc}门口的人行道砖{time}破损严重，很多砖都翘起来了，老人容易绊倒。"),
    _T("greening-branches", "urban.greening", "COMPLAINT",
       "{loc}{bld}窗前的大树长得太高了，树枝都伸到屋里来了，挡光还招虫子，请园林部门来修剪一下。"),
    _T("greening-lawn", "urban.greening", "COMPLAINT",
       "{road}旁边的绿化带{time}被人毁了种菜，草坪也被踩秃了，希望尽快恢复。"),
    _T("firelane-cars", "urban.fire-lane", "COMPLAINT",
       "{loc}{spot}的消防通道{time}被私家车长期占用，救护车都开不进来，请相关部门清理。"),
    _T("firelane-goods", "urban.fire-lane", "REPORT",
       "{road}一家商场后面的消防通道{time}被商户的货物和杂物堵死了，存在很大安全隐患。"),
    _T("illegal-shed", "urban.illegal-construction", "REPORT",
       "{loc}{bld}一楼的住户私搭乱建，把楼前的空地圈占起来盖了一间房，挡住了大家的路。"),
    _T("elderly-allowance", "civil.elderly", "HELP",
       "我家老人今年{age}岁了，高龄津贴{time}一直没有发到卡上，社区说要等区里审核。"),
    _T("elderly-canteen", "civil.elderly", "HELP",
       "{loc}的养老驿站{time}把老年餐桌停了，附近行动不便的老人吃饭成了问题。"),
    _T("household-newborn", "public-security.household", "HELP",
       "孩子出生快半年了，在{district}办落户手续{time}一直办不下来，户籍窗口让我们来回跑了好几趟。"),
    _T("security-bikes", "public-security.order", "REPORT",
       "{loc}附近{time}经常有可疑人员在车棚转悠，好几家的电动车被偷了，希望加强巡逻。"),
    _T("general-dogs", "other.general", "COMPLAINT",
       "{loc}附近{time}有很多流浪狗聚集，晚上经常追着路人叫，孩子都不敢出门，希望有关部门处理一下。"),
    _T("general-toilet", "other.general", "COMPLAINT",
       "{road}边上的公共厕所{time}一直锁着门，附近居民和游客如厕很不方便。"),
    _T("general-lock", "other.general", "HELP",
       "我是{loc}的独居老人，腿脚不好，家里的门锁坏了打不开，求助社区帮忙找人来修一下。"),
    # --- emergencies: T2H whatever the category (emergency_keywords) ---------------------
    _T("emergency-water", "public-services.water", "HELP",
       "{loc}{bld}从{when}开始突然停水了，没有任何通知，家里老人做不了饭，请尽快恢复供水。",
       emergency=True),
    _T("emergency-power", "public-services.power", "HELP",
       "{loc}{bld}整栋楼{when}突然停电，已经两个多小时了，家里有卧床老人要用制氧机，请尽快抢修。",
       emergency=True),
    _T("emergency-lift", "housing.lift", "HELP",
       "{loc}{bld}电梯困人，我家老人和孩子被困在里面十多分钟了，物业电话打不通，请马上派人救援！",
       emergency=True),
    _T("emergency-gas", "public-services.gas", "HELP",
       "{loc}{bld}{unit_no}的楼道里燃气味很重，怀疑燃气泄漏，请燃气公司马上来人检查。",
       emergency=True),
    _T("emergency-manhole", "urban.streetlight", "COMPLAINT",
       "{road}{place}的井盖丢失了，路中间留下一个大洞，晚上看不清特别危险，请马上处理。",
       emergency=True),
    _T("emergency-tree", "urban.greening", "HELP",
       "{road}{place}有一棵大树倒了，压在路边的车上，还挡住了半条路，请赶快派人处理。",
       emergency=True),
    _T("emergency-pipe", "public-services.water", "HELP",
       "{road}{place}地下水管爆裂，水冒得老高，路上已经淹了，请马上派人抢修。",
       emergency=True),
    # --- consultations the operator answers on the phone (直接答复) -----------------------
    _T("consult-residence", "other.general", "CONSULTATION",
       "请问在{district}办理居住证需要什么材料？在哪里办？", outcome=ANSWERED_DIRECTLY),
    _T("consult-pension", "other.general", "CONSULTATION",
       "咨询一下，灵活就业人员怎么办理养老保险？需要带什么材料？", outcome=ANSWERED_DIRECTLY),
    _T("consult-medicalcard", "other.general", "CONSULTATION",
       "请问孩子的医保卡丢了，怎么办理补办手续？", outcome=ANSWERED_DIRECTLY),
    _T("consult-elderly", "other.general", "CONSULTATION",
       "请问老年人优待卡在哪里办？需要本人到场吗？", outcome=ANSWERED_DIRECTLY),
    _T("consult-fund", "other.general", "CONSULTATION",
       "咨询一下，提取住房公积金付房租需要什么材料？", outcome=ANSWERED_DIRECTLY),
    _T("consult-hours", "other.general", "CONSULTATION",
       "请问{district}政务服务中心周末上班吗？几点开门？", outcome=ANSWERED_DIRECTLY),
    # --- police or fire matters: redirected to 110 / 119 --------------------------------
    _T("redirect-fight", "other.general", "REPORT",
       "{road}一家烧烤店门口有人打架斗殴，已经有人受伤了，你们快来管管！", outcome=REDIRECTED),
    _T("redirect-fire", "other.general", "HELP",
       "{loc}{bld}有一户人家厨房着火了，窗户往外冒烟，家里好像没人，请赶快派人！",
       outcome=REDIRECTED),
)

# Emergencies in the order the demo uses them: the brief's three first.
EMERGENCY_ORDER = ("emergency-water", "emergency-power", "emergency-lift", "emergency-gas",
                   "emergency-manhole", "emergency-tree", "emergency-pipe")

# --- slot values ---------------------------------------------------------------------------

_TIMES = ("最近一个月", "这几天", "从上周开始", "最近半个月", "入冬以来", "这段时间", "近两周",
          "从上个月开始", "这一个多星期")
_WHEN = ("今天早上七点", "中午十二点左右", "今天下午三点多", "昨天半夜", "一个小时前", "今天凌晨")
_DAYS = ("两天", "三天", "四五天", "一个星期", "十来天")
_MONTHS = ("两个月", "三个月", "四个多月", "半年")
_YEARS = ("两年", "三年多", "五年")
_AMOUNTS = ("五千六", "八千", "一万二", "两万三", "三万多")
_ITEMS = ("一台空气炸锅", "一件羽绒服", "一双运动鞋", "一部手机", "一套儿童玩具")
_FOODS = ("牛奶", "面包", "酸奶", "火腿肠", "速冻饺子")
_JOBS = ("保洁", "水电工", "服务员", "小工", "保安")
_WORKPLACES = ("一家装修公司", "一家物流公司", "一个建筑工地", "一家酒店", "一家商场")
_ROAD_SUFFIXES = ("大街", "路", "东路", "西路", "南路", "北路", "中街")
_ESTATE_SUFFIXES = ("家园", "东里", "西里", "北里", "南里", "新村", "花园", "嘉园", "苑")
_PLACES = ("东口", "西口", "南段", "北段", "路口", "中段")
_SPOTS = ("东门", "北门外", "南侧空地", "中心广场", "西侧")
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何林高罗"
_GIVEN = ("秀英", "建国", "丽娟", "志强", "海燕", "国华", "淑珍", "伟", "敏", "静", "磊", "洋")
_UNIT_SUFFIX = re.compile(r"(满族|回族)?(街道|地区|镇|乡)$")

# --- unit and callback texts -----------------------------------------------------------------

_PROGRESS_TEXTS = (
    "已派工作人员到现场查看，正在协调相关单位处理，已电话告知来电人。",
    "已与来电人取得联系，问题已登记，正在安排施工队伍。",
    "已约谈相关责任方，限期整改，整改期间持续跟进。",
)
_REPLY_TEXTS: dict[str, tuple[str, ...]] = {
    RESOLVED: (
        "经现场核实，问题已处理完毕，已与来电人电话沟通，来电人表示认可。",
        "已安排人员当天处理完毕，并加强日常巡查，防止问题反复。",
        "已责令相关责任方整改到位，现场复查合格，已回复来电人。",
    ),
    PARTLY_RESOLVED: (
        "已先行采取临时措施，彻底解决需列入改造计划，已向来电人解释。",
        "已协调责任方部分整改，剩余问题涉及多方权属，正在持续协调。",
    ),
    NOT_RESOLVABLE: (
        "经核实，该问题涉及历史遗留及产权纠纷，暂不具备解决条件，已向来电人做好解释。",
        "诉求超出现行政策范围，已向来电人说明相关规定及其他解决途径。",
    ),
}
_COMMENTS: dict[str, tuple[str, ...]] = {
    SATISFIED: ("问题已经解决了，谢谢你们。", "处理得很及时，很满意。", "工作人员态度很好。"),
    BASICALLY_SATISFIED: ("基本解决了，希望以后多注意。", "比以前好一些了，还要再观察。"),
    UNSATISFIED: ("没人联系我，问题还在。", "只是来看了一眼，什么都没解决。", "答复敷衍，不满意。"),
}
UNREACHED_COMMENT = "电话无人接听。"

# --- returns, extensions, whistles and the citizen's calls -------------------------------

_RETURN_REASONS = (
    "经核实，该地址不属于本街道辖区，请改派至属地街道。",
    "该事项不属于本单位职责范围，建议由属地政府牵头办理。",
    "诉求点位位于相邻街乡交界处，经现场核实归对方管辖，请改派。",
    "涉事小区为驻京单位自管产权，不属于本单位管理范围。",
    "该路段由市级部门负责养护管理，非本单位职责。",
    "经查询权责清单，该事项应由行业主管部门办理，申请退回。",
)
_EXTENSION_REASONS = (
    "需协调产权单位和施工队伍，现场施工需要更多时间。",
    "涉及多个部门会商，相关材料尚在审核中，申请延期办理。",
    "维修所需配件需厂家调货，预计到货后完成维修。",
    "需等待第三方检测报告出具结果，申请延长办理时限。",
    "涉及资金申请和招标程序，短期内无法完成，申请延期。",
)
_SUPERVISOR_GRANT = "经审核，延期理由充分，同意延期，请在新时限内办结。"
_SUPERVISOR_DENY = "延期理由不充分，请按原时限办结并及时回复来电人。"
_SUPPLEMENTS = (
    "补充一下具体情况：问题主要集中在晚上，白天不太明显，希望工作人员晚上过来看看。",
    "补充：楼里还有其他几户邻居也遇到同样的问题，大家都希望尽快解决。",
    "补充联系方式说明：白天上班不方便接电话，请下午六点以后联系我。",
    "补充现场照片，请工作人员参考。",
)
_URGES = (
    "之前反映的问题到现在还没人联系我，请尽快处理。",
    "已经过去好几天了，问题还是老样子，麻烦再催一下。",
)
_SECOND_URGES = (
    "这是第二次催办了，问题越来越严重，希望领导重视，尽快解决。",
    "又打电话来催了，还是没人管，请上级部门督促一下。",
)
_WITHDRAW_REASONS = (
    "问题已经自行解决了，撤回这个诉求。",
    "已经和对方协商好了，不需要再处理了，谢谢。",
)
# A repeat call about the same problem starts like this; the words are chosen so the text
# keeps its category ("再次来电" would not: "来电" reads as power; tests/test_demo_city.py
# checks every repeat filing with the real classifier).
_REPEAT_PREFIXES = (
    "上周已经打电话说过，到现在还是老样子，再说一遍：",
    "我前几天反映过这个问题，一直没有人处理，",
    "这个事我之前反映过，现在还是这样：",
)


@dataclass(frozen=True)
class WhistleGroup:
    """Departments a lead unit calls in (吹哨) for one kind of request, and the issue why."""

    units: tuple[str, ...]
    issue: str


_W = WhistleGroup
# By template: unit ids from beijing_departments.csv, never the request's own lead or
# routing-assisting units (routing.yaml), so the whistle always brings someone new.
WHISTLE_GROUPS: dict[str, WhistleGroup] = {
    "water-yellow": _W(("bj-health",), "水质问题需要卫生健康部门抽样检测"),
    "water-pressure": _W(("bj-water",), "二次供水设施改造需要水务部门统筹"),
    "drain-blocked": _W(("bj-water",), "排水管网改造需要水务部门统筹"),
    "heating-cold": _W(("bj-urban-mgmt", "bj-housing"), "供热不达标涉及老旧管网改造和物业配合"),
    "heating-half": _W(("bj-urban-mgmt", "bj-housing"), "供热不达标涉及老旧管网改造和物业配合"),
    "bus-last": _W(("bj-transport",), "末班车时刻调整需要行业主管部门批准"),
    "bus-stop": _W(("bj-transport",), "恢复公交站位需要行业主管部门审批"),
    "subway-escalator": _W(("bj-transport",), "车站设施维修需要行业主管部门督促"),
    "lift-broken": _W(("bj-housing",), "老旧电梯维修涉及专项维修资金使用"),
    "lift-noise": _W(("bj-housing",), "老旧电梯维修涉及专项维修资金使用"),
    "lift-install": _W(("bj-housing", "bj-planning"), "老楼加装电梯涉及规划审批和建设手续"),
    "compound-roof": _W(("bj-housing",), "屋顶防水维修涉及专项维修资金，物业长期推诿"),
    "compound-service": _W(("bj-housing",), "物业服务长期不到位，需要约谈物业企业"),
    "group-rental": _W(("bj-housing", "bj-police"), "群租房存在治安和消防安全隐患"),
    "agent-deposit": _W(("bj-samr",), "中介机构涉嫌违规收费、拒不退还押金"),
    "agent-longlet": _W(("bj-samr", "bj-finance-office"), "长租公寓预收租金后不退，涉嫌资金风险"),
    "certificate-late": _W(("bj-housing",), "房产证办理涉及开发商竣工验收备案"),
    "wages-arrears": _W(("bj-justice", "bj-police"), "涉嫌恶意欠薪，劳动者需要法律援助"),
    "food-kitchen": _W(("bj-health",), "疑似食品安全问题引发身体不适"),
    "online-return": _W(("bj-commerce",), "网络交易纠纷涉及平台企业"),
    "medical-registration": _W(("bj-police",), "号贩子倒号扰乱就医秩序"),
    "medical-attitude": _W(("bj-medical-insurance",), "涉嫌过度开药，需要核查医保费用"),
    "school-training": _W(("bj-samr",), "校外培训机构预收费用后停业"),
    "parking-crossing": _W(("bj-transport",), "路口违停严重，需要优化交通组织"),
    "parking-lights": _W(("bj-transport",), "增设信号灯需要交通主管部门规划"),
    "parking-locks": _W(("bj-chengguan",), "私设地锁、石墩占用道路"),
    "bikes-pile": _W(("bj-chengguan",), "共享单车乱停放占用人行道"),
    "noise-site": _W(("bj-chengguan", "bj-housing"), "工地夜间违规施工，涉及施工许可管理"),
    "noise-bar": _W(("bj-chengguan", "bj-ecoenv"), "经营场所噪声扰民屡禁不止"),
    "noise-dance": _W(("bj-police",), "广场舞音响扰民，多次劝阻无效"),
    "vendors-road": _W(("bj-chengguan", "bj-samr"), "流动商贩占道经营，且涉及食品安全"),
    "vendors-nightmarket": _W(("bj-chengguan", "bj-samr"), "夜市摊贩占道经营，且涉及食品安全"),
    "rubbish-pile": _W(("bj-urban-mgmt",), "垃圾清运不及时，需要督促环卫作业单位"),
    "rubbish-bins": _W(("bj-urban-mgmt",), "垃圾清运不及时，需要督促环卫作业单位"),
    "rubbish-dumping": _W(("bj-chengguan", "bj-urban-mgmt"), "建筑垃圾偷倒，需要查处并清运"),
    "pollution-bbq": _W(("bj-chengguan", "bj-samr"), "餐饮油烟扰民，涉及经营许可"),
    "pollution-dust": _W(("bj-chengguan", "bj-housing"), "搅拌站扬尘污染，涉及施工管理"),
    "streetlight-dark": _W(("bj-urban-mgmt",), "路灯管养权属不清"),
    "streetlight-potholes": _W(("bj-transport",), "道路破损需要公路养护部门维修"),
    "streetlight-pavement": _W(("bj-urban-mgmt",), "人行道管养权属不清"),
    "greening-branches": _W(("bj-forestry-parks",), "大树修剪需要园林绿化部门审批"),
    "greening-lawn": _W(("bj-forestry-parks",), "绿地恢复需要园林绿化部门指导"),
    "firelane-cars": _W(("bj-traffic-police", "bj-emergency"), "消防通道被长期占用，存在安全隐患"),
    "firelane-goods": _W(("bj-emergency",), "消防通道被货物堵塞，存在安全隐患"),
    "illegal-shed": _W(("bj-chengguan", "bj-planning"), "违法建设需要认定拆除并核实规划手续"),
    "elderly-allowance": _W(("bj-finance",), "高龄津贴发放涉及财政资金拨付"),
    "general-dogs": _W(("bj-police", "bj-agri-rural"), "流浪犬聚集，涉及犬只管理和动物防疫"),
    "general-toilet": _W(("bj-urban-mgmt",), "公厕开放管理需要城市管理部门协调"),
}


def whistle_reason(issue: str, unit_names: Sequence[str]) -> str:
    """The lead's reason for a whistle: the issue, and whom it calls in."""
    return f"{issue}，吹哨{'、'.join(unit_names)}到场协同处置。"


# --- plans ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandlingPlan:
    """How the lead unit handles one dispatch, as fractions of the windows it was given.

    ``sign_fraction`` is a share of the sign-for window (``issued_at`` → ``sign_by``) and
    ``complete_fraction`` a share of the deadline (``issued_at`` → ``due_at``); above 1.0
    the unit is late. ``progress_fraction`` places the interim reply, None for none.
    """

    sign_fraction: float
    complete_fraction: float
    result: str
    reply_text: str
    progress_fraction: float | None = None
    progress_text: str = ""
    contacted_citizen: bool = True


@dataclass(frozen=True)
class CallbackPlan:
    """What the citizen says when the callback centre calls.

    The first ``unreached_attempts`` calls go unanswered (3: never reached).
    """

    unreached_attempts: int
    responded: bool
    resolved: bool
    satisfaction: str
    comment: str
    delay_hours: float = 2.0


@dataclass(frozen=True)
class ExtensionPlan:
    """The lead unit asks for more time (延期) once it has signed.

    ``request_fraction`` places the request as a share of the deadline. Up to the days the
    rules grant at once the workflow decides by itself; a longer request waits for a
    supervisor, whom the demo plays (``supervisor_grants``, ``supervisor_delay_hours`` after
    the request). Once granted, the unit completes ``complete_share`` of the way into the
    added time; when denied it completes at ``HandlingPlan.complete_fraction``, just in time.
    """

    extra_days: int
    reason: str
    request_fraction: float
    supervisor_grants: bool = True
    supervisor_reason: str = _SUPERVISOR_GRANT
    supervisor_delay_hours: float = 4.0
    complete_share: float = 0.5


@dataclass(frozen=True)
class WhistlePlan:
    """The lead unit calls departments in (吹哨) at ``fraction`` of the deadline."""

    units: tuple[str, ...]
    reason: str
    fraction: float


@dataclass(frozen=True)
class CitizenCall:
    """A later call of the citizen about the open case (补充, 催办, 撤诉).

    ``fraction``: when, as a share of the case's deadline counted from its dispatch; always
    before the unit plans to complete.
    """

    action: str  # SUPPLEMENT | URGE | WITHDRAW
    fraction: float
    text: str
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class CasePlan:
    """Everything the simulated city will do with one case.

    ``returns``: the reasons of the lead units that return the case, in order (the unit
    of the next dispatch handles it); each returns at ``return_fraction`` of its sign-for
    window instead of signing. A repeat filing (``expected_outcome`` MERGED) names the
    case it repeats in ``duplicate_of`` and is filed ``refile_fraction`` of that case's
    deadline after it was dispatched.
    """

    complaint_id: str
    template: str
    category: str
    kind: str
    expected_outcome: str
    emergency: bool
    handling: HandlingPlan
    callback: CallbackPlan
    # After a reopen (重办) the same unit handles it again and the citizen is called again.
    reopen_handling: HandlingPlan
    reopen_callback: CallbackPlan
    tier: str = ""  # as the classifier will decide; "" when the case is not dispatched
    returns: tuple[str, ...] = ()
    return_fraction: float = 0.5
    extension: ExtensionPlan | None = None
    whistle: WhistlePlan | None = None
    citizen_calls: tuple[CitizenCall, ...] = ()
    duplicate_of: str | None = None
    refile_fraction: float = 0.0


@dataclass(frozen=True)
class DemoCase:
    """One filing, when to send it (seconds after the start) and its plan.

    ``open311_key``: set when the citizen's app files it through the Open311 API (the
    app's own reference, sent as the Idempotency-Key) instead of the call centre.
    """

    filing: dict[str, Any]
    offset_seconds: float
    plan: CasePlan
    open311_key: str | None = None


@dataclass(frozen=True)
class Street:
    district: str
    name: str
    stem: str  # the place name without 街道/地区/镇/乡: "望京" for 望京街道


@dataclass
class _Slots:
    values: dict[str, str] = field(default_factory=dict)
    address: str = ""


# --- reference data --------------------------------------------------------------------------


def load_streets(path: Path = UNITS_CSV) -> dict[str, list[Street]]:
    """Streets, towns and townships of each district, from ``beijing_units.csv``."""
    by_district: dict[str, list[Street]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            name = row["unit_name"].strip()
            district = row["district_name"].strip()
            stem = _UNIT_SUFFIX.sub("", name) or name
            by_district.setdefault(district, []).append(Street(district, name, stem))
    return by_district


def template(key: str) -> Template:
    """The template with this key."""
    for tpl in TEMPLATES:
        if tpl.key == key:
            return tpl
    raise KeyError(key)


# --- generation ------------------------------------------------------------------------------


def complaint_id(day: datetime, serial: int) -> str:
    """The upstream id format: ``BJ20261122-000123`` (Beijing date, daily serial)."""
    return f"BJ{day.astimezone(BEIJING):%Y%m%d}-{serial:06d}"


def generate_city(
    cases: int,
    *,
    seed: int = 12345,
    start: datetime | None = None,
    serial_base: int = 1,
    filing_seconds: float | None = None,
    streets: dict[str, list[Street]] | None = None,
    config: HotlineConfig | None = None,
) -> list[DemoCase]:
    """The filings of one demo run and what everyone will do with them.

    Args:
        cases: how many complaints to file.
        seed: the same seed (with the same other arguments) gives the same city.
        start: the first filing's time (default 2026-11-23 09:00 Beijing, fixed for tests).
        serial_base: the first complaint's serial; a run must not reuse an earlier
            run's ids (each id is a workflow id).
        filing_seconds: spread the filings over this long; default 0.3 s a case, kept
            within 3-40 s.
        streets: the registry (default: read ``beijing_units.csv``).
        config: the lexicon that tells each case's tier (default: the config folder of
            the settings).

    Returns:
        Cases in filing order, repeat filings last (they are filed once the case they
        repeat has been dispatched). Every category is covered once ``cases`` leaves room
        for it, and every district once ``cases >= 16``; about 8 % are consultations
        answered on the phone, a few are emergencies and one is a police or fire matter.
        Of the dispatched cases about 6 % are returned (a third of those twice), 5 %
        whistle departments in, 6 % are urged (some twice) and 4 % supplemented; 8 % of
        the T7D/T15D cases ask for an extension (most for 2-3 days, some longer); one or
        two are withdrawn and about 2.5 % of the filings repeat an open case. About 10 %
        of the callbacks are unresolved or unsatisfied, which reopens the case.
    """
    if cases < 1:
        raise ValueError("cases must be at least 1")
    rng = random.Random(seed)
    streets = streets if streets is not None else load_streets()
    config = config if config is not None else _default_config()
    start = start or datetime(2026, 11, 23, 9, 0, tzinfo=BEIJING)
    if filing_seconds is None:
        filing_seconds = min(40.0, max(3.0, 0.3 * cases))

    repeats = 0 if cases < 20 else max(1, round(cases * 0.025 + 0.25))
    originals = cases - repeats
    chosen = _choose_templates(originals, rng)
    districts = _choose_districts(originals, rng, streets)
    offsets = _offsets(originals, filing_seconds, rng)
    out: list[DemoCase] = []
    for i, (tpl, district) in enumerate(zip(chosen, districts, strict=True)):
        cid = complaint_id(start, serial_base + i)
        filed_at = (start + timedelta(seconds=offsets[i])).astimezone(UTC)
        filing = _filing(cid, tpl, district, filed_at, rng, streets)
        plan = _plan(cid, tpl, rng)
        if tpl.outcome == DISPATCH:
            tier = classify(config.lexicon, filing["content"], kind_hint=filing["kind"]).tier
            plan = replace(plan, tier=tier)
        out.append(DemoCase(filing=filing, offset_seconds=offsets[i], plan=plan))
    # A stream of its own, so the rules played on top never change the filings of a seed.
    events = random.Random(f"{seed}/handling-rules")
    originals_of_repeats = _handling_rules(out, repeats, events, config)
    for j, index in enumerate(originals_of_repeats):
        cid = complaint_id(start, serial_base + originals + j)
        out.append(_repeat_filing(cid, out[index], out[-1], events))
    return out


# Share of the filings that citizens' apps send through the Open311 API.
OPEN311_SHARE = 0.2
OPEN311_CHANNELS = ("APP", "WECHAT", "MINI_PROGRAM", "WEB")


def open311_client(channel: str) -> ApiClient:
    """The demo's Open311 client app of a channel (its key is for the local demo only)."""
    name = f"demo-{channel.lower().replace('_', '-')}"
    return ApiClient(name, f"{name}-local-demo-key", channel)


def route_through_open311(city: list[DemoCase], share: float = OPEN311_SHARE
                          ) -> list[DemoCase]:
    """The city with about ``share`` of its filings sent by apps through Open311.

    Picked evenly among the app, WeChat, mini-program and web filings that no repeat filing
    refers to (a repeat names its first case's id). Each picked case takes the id the
    Open311 service gives it (its app's reference is the Idempotency-Key), so the plan is
    known under that id before it is filed.
    """
    repeated = {c.plan.duplicate_of for c in city if c.plan.duplicate_of}
    eligible = [i for i, c in enumerate(city)
                if c.filing["channel"] in OPEN311_CHANNELS and not c.plan.duplicate_of
                and c.plan.complaint_id not in repeated]
    wanted = min(len(eligible), round(share * len(city)))
    if not wanted:
        return list(city)
    step = len(eligible) / wanted
    picked = {eligible[int(k * step)] for k in range(wanted)}
    out = []
    for i, case in enumerate(city):
        if i not in picked:
            out.append(case)
            continue
        key = case.plan.complaint_id
        cid = complaint_id_for(open311_client(case.filing["channel"]).name, key)
        out.append(replace(case, filing={**case.filing, "complaint_id": cid},
                           plan=replace(case.plan, complaint_id=cid), open311_key=key))
    return out


@cache
def _default_config() -> HotlineConfig:
    return load_config(get_settings().config_dir)


# --- the handling rules played on top of ordinary handling -----------------------------------


def _handling_rules(city: list[DemoCase], repeats: int, rng: random.Random,
                    config: HotlineConfig) -> list[int]:
    """Give a seeded share of the dispatched cases returns, an extension, a whistle, the
    citizen's later calls; pick the cases that ``repeats`` repeat filings will repeat.

    Plans in ``city`` are replaced in place. Each case gets at most one of these rules
    (so what happens to it stays readable on the board), from the T7D/T15D cases only.

    Returns:
        Indices in ``city`` of the cases to file again.
    """
    plans = [c.plan for c in city]
    dispatched = [i for i, p in enumerate(plans) if p.expected_outcome == DISPATCH]
    n = len(dispatched)
    pool = [i for i in dispatched if plans[i].tier in LONG_TIERS]
    rng.shuffle(pool)
    taken: set[int] = set()

    def take(count: int, fits: Callable[[int], bool] = lambda i: True) -> list[int]:
        picked = [i for i in pool if i not in taken and fits(i)][:max(0, count)]
        taken.update(picked)
        return picked

    def roomy(i: int, low: float = 0.35) -> HandlingPlan:
        """The unit's handling, leaving time before completion for what comes first."""
        h = plans[i].handling
        if h.complete_fraction >= low:
            return h
        complete = round(rng.uniform(low + 0.05, 0.7), 3)
        return replace(h, complete_fraction=complete)

    # Withdrawals (撤诉): one or two.
    for i in take(0 if n < 20 else (1 if n < 60 else 2)):
        h = roomy(i)
        call = CitizenCall(WITHDRAW, round(h.complete_fraction * rng.uniform(0.2, 0.5), 3),
                           rng.choice(_WITHDRAW_REASONS))
        plans[i] = replace(plans[i], handling=h, citizen_calls=(call,))

    # Repeat filings (重复件): the same caller names the same street again.
    repeated = take(repeats, lambda i: city[i].filing["street"] is not None
                    and not city[i].filing["anonymous"])
    for i in repeated:
        plans[i] = replace(plans[i], handling=roomy(i))

    # Returns (退单), a third of them twice (→ city coordination).
    n_returns = round(0.06 * n)
    twice = max(1, round(n_returns / 3)) if n_returns >= 2 else 0
    for k, i in enumerate(take(n_returns)):
        reasons = tuple(rng.sample(_RETURN_REASONS, 2 if k < twice else 1))
        plans[i] = replace(plans[i], returns=reasons,
                           return_fraction=round(rng.uniform(0.2, 0.8), 3))

    # Extensions (延期): 8 % of the long-tier cases (at least five once there are 40 of
    # them, so a 100-case run shows every outcome); most within the days granted by rule,
    # about a third longer: a supervisor decides those, granting and denying in turn.
    n_ext = math.ceil(0.08 * len(pool))
    if len(pool) >= 40:
        n_ext = max(n_ext, 5)
    longer = max(2, round(n_ext * 0.3)) if n_ext >= 5 else (1 if n_ext >= 3 else 0)
    for k, i in enumerate(take(n_ext)):
        plan = plans[i]
        request = round(rng.uniform(0.3, 0.5), 3)
        if k < longer:
            days = rng.randint(5, 7) if plan.tier == "T7D" else rng.randint(6, 10)
            grants = k % 2 == 0
        else:
            days, grants = rng.choice((2, 3)), True
        h = plan.handling
        # Without more time the unit finishes just in time; its interim reply comes first.
        progress = (round(request * rng.uniform(0.4, 0.8), 3)
                    if h.progress_fraction is not None else None)
        h = replace(h, complete_fraction=round(rng.uniform(0.75, 0.92), 3),
                    progress_fraction=progress)
        ext = ExtensionPlan(
            extra_days=days, reason=rng.choice(_EXTENSION_REASONS), request_fraction=request,
            supervisor_grants=grants,
            supervisor_reason=_SUPERVISOR_GRANT if grants else _SUPERVISOR_DENY,
            supervisor_delay_hours=round(rng.uniform(2.0, 12.0), 2),
            complete_share=round(rng.uniform(0.3, 0.7), 3),
        )
        plans[i] = replace(plan, handling=h, extension=ext)

    # Whistles (吹哨报到): 5 %, departments sensible for the request.
    for i in take(round(0.05 * n), lambda i: plans[i].template in WHISTLE_GROUPS):
        group = WHISTLE_GROUPS[plans[i].template]
        picked = rng.sample(group.units, rng.choice((1, 2)) if len(group.units) > 1 else 1)
        units = tuple(u for u in group.units if u in picked)
        names = [unit.name if (unit := config.registry.get(u)) else u for u in units]
        h = roomy(i, 0.4)
        whistle = WhistlePlan(units, whistle_reason(group.issue, names),
                              round(h.complete_fraction * rng.uniform(0.2, 0.45), 3))
        plans[i] = replace(plans[i], handling=h, whistle=whistle)

    # Urges (催办): 6 %, about 40 % of them twice (→ one supervision level up).
    n_urged = round(0.06 * n)
    urged_twice = max(1, round(0.4 * n_urged)) if n_urged >= 2 else 0
    for k, i in enumerate(take(n_urged)):
        h = roomy(i)
        cf = h.complete_fraction
        calls = [CitizenCall(URGE, round(cf * rng.uniform(0.25, 0.45), 3), rng.choice(_URGES))]
        if k < urged_twice:
            calls.append(CitizenCall(URGE, round(cf * rng.uniform(0.6, 0.85), 3),
                                     rng.choice(_SECOND_URGES)))
        plans[i] = replace(plans[i], handling=h, citizen_calls=tuple(calls))

    # Supplements (补充): 4 %, some with a photo.
    for i in take(round(0.04 * n)):
        h = roomy(i)
        text = rng.choice(_SUPPLEMENTS)
        photos: tuple[str, ...] = ()
        if "照片" in text:
            photos = (f"https://files.hotline.example/demo/{plans[i].complaint_id}/supplement-1.jpg",)
        call = CitizenCall(SUPPLEMENT, round(h.complete_fraction * rng.uniform(0.1, 0.6), 3),
                           text, photos)
        plans[i] = replace(plans[i], handling=h, citizen_calls=(call,))

    for i, plan in enumerate(plans):
        if plan is not city[i].plan:
            city[i] = replace(city[i], plan=plan)
    return repeated


def _repeat_filing(cid: str, original: DemoCase, last: DemoCase,
                   rng: random.Random) -> DemoCase:
    """The same caller files the same problem again while the first case is open (重复件).

    Same phone, district, street and address, the same text said again: acceptance finds
    the open case (same caller, category and street) and merges the new filing into it.
    """
    first = original.filing
    filing = dict(first)
    filing.update(
        event_id=str(uuid.uuid5(_EVENT_NS, f"{cid}/filed")),
        complaint_id=cid,
        filed_at=last.filing["filed_at"],  # the call centre stamps the real time
        channel="PHONE",
        content=rng.choice(_REPEAT_PREFIXES) + first["content"],
        attachments=[],
        latitude=None,
        longitude=None,
    )
    plan = _plan(cid, template(original.plan.template), rng)
    # Merged at acceptance; were the first case closed already, it would be handled afresh.
    plan = replace(plan, expected_outcome=MERGED, tier=original.plan.tier,
                   duplicate_of=original.plan.complaint_id,
                   refile_fraction=round(original.plan.handling.complete_fraction
                                         * rng.uniform(0.1, 0.5), 3))
    return DemoCase(filing=filing, offset_seconds=last.offset_seconds, plan=plan)


def _weighted(rng: random.Random, items: Sequence[str], weights: Sequence[float]) -> str:
    return rng.choices(list(items), weights=list(weights), k=1)[0]


def _choose_templates(cases: int, rng: random.Random) -> list[Template]:
    answered = [t for t in TEMPLATES if t.outcome == ANSWERED_DIRECTLY]
    redirects = [t for t in TEMPLATES if t.outcome == REDIRECTED]
    ordinary = [t for t in TEMPLATES if t.outcome == DISPATCH and not t.emergency]

    n_answered = round(cases * 0.08)
    n_redirect = 1 if cases >= 12 else 0
    n_emergency = max(2, round(cases * 0.03)) if cases >= 12 else (1 if cases >= 4 else 0)
    n_ordinary = max(0, cases - n_answered - n_redirect - n_emergency)

    chosen: list[Template] = [answered[i % len(answered)] for i in range(n_answered)]
    rng.shuffle(chosen)
    chosen += [rng.choice(redirects) for _ in range(n_redirect)]
    chosen += [template(EMERGENCY_ORDER[i % len(EMERGENCY_ORDER)]) for i in range(n_emergency)]

    # One case per category first, so a normal-sized run shows the whole lexicon; then the
    # rest by template weight (heating and noise are what Beijing calls about in winter).
    by_category: dict[str, list[Template]] = {}
    for tpl in ordinary:
        by_category.setdefault(tpl.category, []).append(tpl)
    categories = list(by_category)
    rng.shuffle(categories)
    for code in categories[:n_ordinary]:
        group = by_category[code]
        chosen.append(group[rng.randrange(len(group))])
    rest = n_ordinary - min(n_ordinary, len(categories))
    chosen += rng.choices(ordinary, weights=[t.weight for t in ordinary], k=rest)
    chosen = chosen[:cases]
    rng.shuffle(chosen)
    return chosen


def _choose_districts(
    cases: int, rng: random.Random, streets: dict[str, list[Street]]
) -> list[str]:
    """District of each case: every district at least once (when it fits), the rest by
    weight with largest remainders, shuffled."""
    names = [d for d in DISTRICT_WEIGHTS if d in streets]
    names += sorted(d for d in streets if d not in DISTRICT_WEIGHTS)
    weights = [DISTRICT_WEIGHTS.get(d, 1.0) for d in names]
    floor = 1 if cases >= len(names) else 0
    free = cases - floor * len(names)
    total = sum(weights)
    exact = [free * w / total for w in weights]
    counts = [floor + int(x) for x in exact]
    left = cases - sum(counts)
    by_remainder = sorted(range(len(names)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in by_remainder[:left]:
        counts[i] += 1
    out = [d for d, c in zip(names, counts, strict=True) for _ in range(c)]
    rng.shuffle(out)
    return out


def _offsets(cases: int, seconds: float, rng: random.Random) -> list[float]:
    """A steady pace with some jitter: calls do not arrive on a metronome."""
    step = seconds / cases
    return sorted(
        round(max(0.0, i * step + rng.uniform(-0.4, 0.4) * step), 3) for i in range(cases)
    )


def _slots(tpl: Template, street: Street, with_street: bool, rng: random.Random) -> _Slots:
    stem = street.stem
    road_suffixes = rng.sample(_ROAD_SUFFIXES, 2)
    road = stem + road_suffixes[0]
    road2 = stem + road_suffixes[1]
    estate = stem + rng.choice(_ESTATE_SUFFIXES)
    bld = f"{rng.randint(1, 28)}号楼"
    district = street.district
    if with_street:
        loc = rng.choice((f"{district}{street.name}{estate}", f"{street.name}{road}{estate}",
                          f"{district}{street.name}{road}{estate}"))
    else:
        loc = rng.choice((f"{district}{road}{estate}", f"{road}{estate}"))
    values = {
        "loc": loc, "estate": estate, "road": road, "road2": road2,
        "place": rng.choice(_PLACES), "spot": rng.choice(_SPOTS), "bld": bld,
        "unit_no": f"{rng.randint(1, 6)}单元", "floor": f"{rng.randint(8, 20)}层",
        "district": district, "time": rng.choice(_TIMES), "when": rng.choice(_WHEN),
        "days": rng.choice(_DAYS), "months": rng.choice(_MONTHS), "years": rng.choice(_YEARS),
        "year": str(rng.randint(2015, 2023)), "amount": rng.choice(_AMOUNTS),
        "bus": f"{rng.choice((1, 52, 300, 302, 408, 429, 602, 675, 915, 983))}路",
        "line": str(rng.choice((1, 2, 4, 5, 6, 8, 10, 13, 14, 15, 17))),
        "age": str(rng.randint(80, 95)),
        "item": rng.choice(_ITEMS), "food": rng.choice(_FOODS), "job": rng.choice(_JOBS),
        "workplace": f"{road}附近{rng.choice(_WORKPLACES)}",
    }
    uses_estate = any(s in tpl.text for s in ("{loc}", "{estate}", "{bld}"))
    address = f"{district}{street.name if with_street else ''}{road}"
    if uses_estate:
        address += estate + (bld if "{bld}" in tpl.text else "")
    elif "{place}" in tpl.text:
        address += values["place"]
    return _Slots(values, address)


def _filing(
    cid: str, tpl: Template, district: str, filed_at: datetime, rng: random.Random,
    streets: dict[str, list[Street]],
) -> dict[str, Any]:
    street = rng.choice(streets[district])
    # Some callers only give an address; the router then finds the street in it.
    with_street = rng.random() >= 0.12
    slots = _slots(tpl, street, with_street, rng)
    content = tpl.text.format_map(slots.values)

    if tpl.outcome != DISPATCH or tpl.emergency:
        channel = "PHONE"  # answered on the phone, or too urgent to type
    else:
        channel = _weighted(rng, list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values()))
    anonymous = tpl.outcome == DISPATCH and rng.random() < 0.1
    name: str | None = None
    if not anonymous:
        surname = rng.choice(_SURNAMES)
        name = (surname + rng.choice(("先生", "女士")) if rng.random() < 0.7
                else surname + rng.choice(_GIVEN))
    lat, lon = DISTRICT_CENTRES.get(district, (39.904, 116.407))
    has_coords = channel in ("APP", "WECHAT", "MINI_PROGRAM")
    attachments: list[str] = []
    if has_coords and rng.random() < 0.4:
        attachments = [f"https://files.hotline.example/demo/{cid}/photo-1.jpg"]
    consultation = tpl.outcome == ANSWERED_DIRECTLY
    return {
        "event_id": str(uuid.uuid5(_EVENT_NS, f"{cid}/filed")),
        "complaint_id": cid,
        "filed_at": filed_at,
        "channel": channel,
        "kind": tpl.kind,
        "content": content,
        "caller_phone": f"1380000{rng.randrange(10_000):04d}",
        "caller_name": name,
        "anonymous": anonymous,
        "district": district,
        "street": street.name if with_street and not consultation else None,
        "address": None if consultation else slots.address,
        "latitude": round(lat + rng.uniform(-0.03, 0.03), 5) if has_coords else None,
        "longitude": round(lon + rng.uniform(-0.03, 0.03), 5) if has_coords else None,
        "category_hint": None,
        "urgency_hint": None,
        "answered_directly": consultation,
        "attachments": attachments,
    }


def _handling(rng: random.Random, *, reopen: bool = False) -> HandlingPlan:
    # Sign for: most within 10-60 % of the window, ~5 % miss it.
    missed = not reopen and rng.random() < 0.05
    sign = rng.uniform(1.2, 2.5) if missed else rng.uniform(0.1, 0.6)
    # Complete: most at 20-70 % of the deadline, ~8 % late.
    late = not reopen and rng.random() < 0.08
    complete = rng.uniform(1.05, 1.4) if late else rng.uniform(0.2, 0.7)
    if reopen:
        result = RESOLVED if rng.random() < 0.85 else PARTLY_RESOLVED
    else:
        result = _weighted(rng, (RESOLVED, PARTLY_RESOLVED, NOT_RESOLVABLE), (87, 10, 3))
    progress: float | None = None
    if rng.random() < 0.7:
        # A share of the deadline before completion; the unit never reports before signing.
        progress = round(complete * rng.uniform(0.3, 0.7), 3)
    return HandlingPlan(
        sign_fraction=round(sign, 3),
        complete_fraction=round(complete, 3),
        result=result,
        reply_text=rng.choice(_REPLY_TEXTS[result]),
        progress_fraction=progress,
        progress_text=rng.choice(_PROGRESS_TEXTS),
        contacted_citizen=rng.random() < 0.95,
    )


# Satisfaction given the unit's result (SATISFIED, BASICALLY, UNSATISFIED), and how often a
# partly resolved problem counts as resolved for the citizen: overall about 94 % satisfied
# or basically satisfied, and about 10 % of the callbacks unresolved or unsatisfied, which
# reopens the case. After a reopen (the unit went back) the citizen is mostly satisfied.
_SATISFACTION_GIVEN_RESULT: dict[str, tuple[float, float, float]] = {
    RESOLVED: (71, 25, 4),
    PARTLY_RESOLVED: (25, 55, 20),
    NOT_RESOLVABLE: (10, 50, 40),
}
_SATISFACTION_AFTER_REOPEN: dict[str, tuple[float, float, float]] = {
    RESOLVED: (75, 23, 2),
    PARTLY_RESOLVED: (35, 55, 10),
    NOT_RESOLVABLE: (15, 55, 30),
}
_PARTLY_COUNTS_AS_RESOLVED = 0.7


def _callback(rng: random.Random, handling: HandlingPlan, *, reopen: bool = False) -> CallbackPlan:
    roll = rng.random()
    # ~5 % are not reached on the first call; one in five of those never answers.
    unreached = 0 if reopen or roll >= 0.05 else (3 if roll < 0.01 else 1)
    table = _SATISFACTION_AFTER_REOPEN if reopen else _SATISFACTION_GIVEN_RESULT
    satisfaction = _weighted(rng, (SATISFIED, BASICALLY_SATISFIED, UNSATISFIED),
                             table[handling.result])
    if satisfaction == UNSATISFIED:
        resolved = False
    elif handling.result == RESOLVED:
        resolved = True
    elif handling.result == PARTLY_RESOLVED:
        resolved = rng.random() < _PARTLY_COUNTS_AS_RESOLVED
    else:
        resolved = False
    responded = handling.contacted_citizen or rng.random() < 0.5
    return CallbackPlan(
        unreached_attempts=unreached,
        responded=responded,
        resolved=resolved,
        satisfaction=satisfaction,
        comment=rng.choice(_COMMENTS[satisfaction]),
        delay_hours=round(rng.uniform(0.5, 6.0), 2),
    )


def _plan(cid: str, tpl: Template, rng: random.Random) -> CasePlan:
    handling = _handling(rng)
    reopen_handling = _handling(rng, reopen=True)
    return CasePlan(
        complaint_id=cid,
        template=tpl.key,
        category=tpl.category,
        kind=tpl.kind,
        expected_outcome=tpl.outcome,
        emergency=tpl.emergency,
        handling=handling,
        callback=_callback(rng, handling),
        reopen_handling=reopen_handling,
        reopen_callback=_callback(rng, reopen_handling, reopen=True),
    )
