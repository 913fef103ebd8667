"""Proactive governance (未诉先办) over the ledger: rankings, hotspots, topics, streets.

Everything here is SQL over the ledger tables (``cases``, ``evaluations``; see
``deploy/migrations``), which the projector keeps equal to ``hotline.lifecycle``. The
functions take an open connection and are what the tests and the CLI call;
:class:`GovernanceActivities` wraps them as Temporal activities. One module a task:

- ``config``     ``governance.yaml`` and its population file;
- ``months``     calendar months in the configured time zone;
- ``rankings``   the units' monthly rankings (考评排名);
- ``streets``    priority streets (治理类街乡镇);
- ``topics``     monthly-topic candidates (每月一题) and their half-monthly trend;
- ``hotspots``   hotspot warnings and the governance cases filed for them;
- ``activities`` the Temporal activities.

The requests and results the governance workflows exchange with the activities are in
:mod:`workflows.governance_model`. This file only re-exports the modules' public names, so
``from activities.governance import …`` keeps working; the modules import one another
directly, never through it.
"""

from activities.governance.activities import GovernanceActivities, Publisher
from activities.governance.config import (
    GovernanceConfig,
    GovernanceError,
    HotspotRule,
    PointRule,
    PriorityStreetsRule,
    ScheduleRule,
    TopicRule,
    TopicWeights,
    load_governance_config,
    place_key,
)
from activities.governance.hotspots import (
    HOTSPOT_PREFIX,
    Hotspot,
    detect_hotspots,
    governance_filing,
    hotspot_record,
    load_hotspots,
    poisson_tail,
    record_hotspots,
    scan_and_record,
    warning_id_for,
)
from activities.governance.months import month_bounds, previous_month, shift_month
from activities.governance.rankings import (
    GROUP_DEPARTMENTS,
    GROUP_OTHER,
    GROUP_STREETS,
    RankingRow,
    RegistryDirectory,
    UnitDirectory,
    compute_rankings,
    ranking_record,
    store_rankings,
    unit_group,
)
from activities.governance.streets import PriorityStreet, priority_streets
from activities.governance.topics import (
    TopicCandidate,
    half_month_trend,
    store_topic_candidates,
    topic_candidates,
)

__all__ = [
    "GROUP_DEPARTMENTS",
    "GROUP_OTHER",
    "GROUP_STREETS",
    "HOTSPOT_PREFIX",
    "GovernanceActivities",
    "GovernanceConfig",
    "GovernanceError",
    "Hotspot",
    "HotspotRule",
    "PointRule",
    "PriorityStreet",
    "PriorityStreetsRule",
    "Publisher",
    "RankingRow",
    "RegistryDirectory",
    "ScheduleRule",
    "TopicCandidate",
    "TopicRule",
    "TopicWeights",
    "UnitDirectory",
    "compute_rankings",
    "detect_hotspots",
    "governance_filing",
    "half_month_trend",
    "hotspot_record",
    "load_governance_config",
    "load_hotspots",
    "month_bounds",
    "place_key",
    "poisson_tail",
    "previous_month",
    "priority_streets",
    "ranking_record",
    "record_hotspots",
    "scan_and_record",
    "shift_month",
    "store_rankings",
    "store_topic_candidates",
    "topic_candidates",
    "unit_group",
    "warning_id_for",
]
