"""The workbench's words: Chinese first, English on ``?lang=en`` (remembered in a cookie)."""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("zh", "en")

# key: (中文, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("12345 工作台", "12345 workbench"),
    "login": ("登录", "Sign in"),
    "logout": ("退出", "Sign out"),
    "username": ("账号", "User name"),
    "password": ("密码", "Password"),
    "bad_login": ("账号或密码不正确", "Wrong user name or password"),
    "locked": ("登录失败次数过多，请于 {until} 后再试",
               "Too many failed sign-ins; try again after {until}"),
    "inbox": ("待办工单", "Inbox"),
    "inbox_empty": ("没有待办工单", "Nothing to do"),
    "review": ("派单复核", "Review queue"),
    "review_empty": ("没有待复核的工单", "No case waits for review"),
    "supervision": ("督办", "Supervision"),
    "case": ("工单", "Case"),
    "complaint_id": ("工单号", "Case id"),
    "status": ("状态", "Status"),
    "tier": ("时限", "Tier"),
    "category": ("类别", "Category"),
    "place": ("地点", "Place"),
    "due": ("办结时限", "Due"),
    "sign_by": ("签收时限", "Sign by"),
    "stage": ("预警", "Stage"),
    "role": ("承办", "Role"),
    "request": ("诉求内容", "Request"),
    "request_unavailable": ("诉求原文暂时无法读取", "The request's text is not available now"),
    "attachments": ("附件", "Attachments"),
    "timeline": ("办理过程", "Timeline"),
    "units": ("承办单位", "Units"),
    "assist_replies": ("协办单位答复", "Assisting units' replies"),
    "actions": ("办理", "Actions"),
    "no_open_dispatch": ("本单位已无在办派单，无法操作",
                         "Your unit holds no open dispatch of this case"),
    "sign": ("签收", "Sign for"),
    "progress": ("阶段性答复", "Progress reply"),
    "complete": ("办结", "Complete"),
    "return": ("退单", "Return"),
    "extension": ("申请延期", "Request extension"),
    "whistle": ("吹哨报到", "Whistle in units"),
    "text": ("答复内容", "Reply"),
    "contacted": ("已联系市民", "Citizen contacted"),
    "result": ("办理结果", "Result"),
    "RESOLVED": ("已解决", "Resolved"),
    "PARTLY_RESOLVED": ("部分解决", "Partly resolved"),
    "NOT_RESOLVABLE": ("无法解决", "Not resolvable"),
    "photos": ("现场照片（JPEG/PNG/WebP，每张不超过 5 MB）",
               "Photos (JPEG/PNG/WebP, up to 5 MB each)"),
    "reason": ("理由", "Reason"),
    "extra_days": ("延期天数", "Extra days"),
    "whistle_units": ("协办单位编码（逗号分隔）", "Unit ids (comma separated)"),
    "submit": ("提交", "Submit"),
    "applied": ("已办理：工单状态 {status}", "Applied: the case is now {status}"),
    "refused": ("被拒绝（{code}）：{reason}", "Refused ({code}): {reason}"),
    "pending": ("已提交，等待工单处理", "Submitted, pending"),
    "bad_field": ("请检查：{field}", "Please check: {field}"),
    "bad_photo": ("照片不合格：{reason}", "Photo refused: {reason}"),
    "why_unsure": ("待复核原因", "Why unsure"),
    "candidates": ("候选承办单位", "Candidates"),
    "dispatch_to": ("派给", "Dispatch to"),
    "answer_directly": ("直接答复", "Answer directly"),
    "reject": ("不予受理", "Reject"),
    "redirect": ("转 110/119/120", "Redirect to 110/119/120"),
    "filed": ("受理时间", "Filed"),
    "overdue_cases": ("超期与督办工单", "Overdue and escalated cases"),
    "by_district_tier": ("按区和时限", "By district and tier"),
    "district": ("区", "District"),
    "count": ("件数", "Cases"),
    "lead_unit": ("主办单位", "Lead unit"),
    "level": ("督办级别", "Level"),
    "rankings": ("本月三率排名", "This month's three rates"),
    "rank": ("名次", "Rank"),
    "unit": ("单位", "Unit"),
    "response_rate": ("响应率", "Response"),
    "resolution_rate": ("解决率", "Resolution"),
    "satisfaction_rate": ("满意率", "Satisfaction"),
    "score": ("得分", "Score"),
    "hotspots": ("热点预警", "Hotspot warnings"),
    "baseline": ("基线", "Baseline"),
    "none": ("暂无", "None"),
    "normal": ("正常", "Normal"),
    "warned": ("预警", "Warned"),
    "overdue": ("超期", "Overdue"),
    "supervised": ("督办", "Supervised"),
    "LEAD": ("主办", "Lead"),
    "ASSISTING": ("协办", "Assisting"),
    "note": ("备注", "Note"),
    "back": ("返回", "Back"),
    "streets": ("街乡镇", "Streets and townships"),
    "departments": ("委办局与公共服务企业", "Departments and utilities"),
    "other": ("其他", "Other"),
}

STATUS_ZH = {
    "FILED": "已登记", "ACCEPTED": "已受理", "ANSWERED_DIRECTLY": "直接答复",
    "REJECTED": "不予受理",
    "MERGED": "已合并", "DISPATCHED": "已派单", "SIGNED": "已签收", "IN_PROGRESS": "办理中",
    "COMPLETED": "已办结", "CALLBACK": "回访中", "REOPENED": "重办", "EVALUATED": "已考评",
    "WITHDRAWN": "已撤诉", "CLOSED": "已结案", "AWAITING_REVIEW": "待复核",
}


EVENT_ZH = {
    "ACCEPTED": "受理", "DISPATCHED": "派单", "REDISPATCHED": "改派", "SIGNED": "签收",
    "PROGRESS": "阶段性答复", "COMPLETED": "办结", "ASSIST_REPLIED": "协办答复",
    "RETURNED": "退单", "EXTENSION_REQUESTED": "申请延期", "EXTENSION_DECIDED": "延期审批",
    "WHISTLED": "吹哨报到", "NOTICE": "提醒/督办", "URGED": "催办", "SUPPLEMENTED": "补充",
    "WITHDRAWN": "撤诉", "CALLBACK_DUE": "待回访", "CALLBACK": "回访", "REOPENED": "重办",
    "EVALUATED": "考评", "CLOSED": "结案", "MERGED": "合并", "REDIRECTED": "转警情/急救",
    "ANSWERED_DIRECTLY": "直接答复", "REJECTED": "不予受理", "REVIEW_REQUESTED": "待派单复核",
    "REVIEW_DECIDED": "复核派单", "REVIEW_EXPIRED": "复核超时", "REPLY_REFUSED": "答复被拒",
}


def event_label(lang: str) -> Callable[[str], str]:
    def label(event_type: str) -> str:
        return event_type if lang == "en" else EVENT_ZH.get(event_type, event_type)

    return label


def pick_lang(query: str | None, cookie: str | None) -> str:
    for value in (query, cookie):
        if value in LANGS:
            return value
    return "zh"


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)``: the message in ``lang`` (the key itself when unknown)."""
    index = 1 if lang == "en" else 0

    def t(key: str, **values: object) -> str:
        pair = MESSAGES.get(key)
        text = pair[index] if pair else key
        return text.format(**values) if values else text

    return t


def status_label(lang: str) -> Callable[[str | None], str]:
    def label(status: str | None) -> str:
        if not status:
            return "—"
        return status if lang == "en" else STATUS_ZH.get(status, status)

    return label
