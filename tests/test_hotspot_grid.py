"""The near-one-point grid is square everywhere: one projection for every row.

Before, the column index scaled longitude by the cosine of each row's own latitude, so a
row up shifted the columns by ~1.3 cells at Beijing's longitude and "a cell and its eight
neighbours" was not a 750 m square (issue 29): points 250 m apart on one meridian fell in
columns 39769, 39768, 39767, ... Here points are planted on and across cell boundaries in
every direction, and the ledger's SQL must put them in the same cells as ``grid_cell``.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from activities.governance.config import PointRule
from activities.governance.hotspots import _POINT_SQL, grid_cell
from workers.devstack.stack import ensure_database
from workers.runtime.migrate import apply_migrations
from workers.runtime.settings import Settings

POINTS = PointRule(cell_m=250, min_count=8, max_p_value=1e-6)
M_LAT = 1 / 111_320.0                                   # degrees of latitude per metre
M_LON = M_LAT / math.cos(math.radians(POINTS.reference_latitude))  # ... of longitude
DIRECTIONS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def _centre(cy: int, cx: int) -> tuple[float, float]:
    """The middle of cell (cy, cx)."""
    return (cy + 0.5) * POINTS.cell_m * M_LAT, (cx + 0.5) * POINTS.cell_m * M_LON


@pytest.mark.parametrize(("lat", "lon"), [(39.8895, 116.3933), (40.95, 117.05),
                                          (39.45, 115.55)])
def test_a_step_of_one_cell_moves_one_cell_in_every_direction(lat: float, lon: float) -> None:
    cy, cx = grid_cell(lat, lon, POINTS)
    c_lat, c_lon = _centre(cy, cx)
    assert grid_cell(c_lat, c_lon, POINTS) == (cy, cx)
    for dy, dx in DIRECTIONS:
        moved = grid_cell(c_lat + dy * POINTS.cell_m * M_LAT,
                          c_lon + dx * POINTS.cell_m * M_LON, POINTS)
        assert moved == (cy + dy, cx + dx), (dy, dx)


def test_points_on_one_meridian_keep_their_column() -> None:
    # The example: 39.8895, 116.3933 and the rows above and below.
    columns = {grid_cell(39.8895 + k * 250 * M_LAT, 116.3933, POINTS)[1] for k in range(-3, 4)}
    assert len(columns) == 1


@pytest.mark.parametrize(("dy", "dx"), DIRECTIONS)
def test_a_metre_either_side_of_a_boundary_is_two_neighbouring_cells(dy: int, dx: int) -> None:
    cy, cx = grid_cell(39.9, 116.4, POINTS)
    c_lat, c_lon = _centre(cy, cx)
    # The boundary (or corner) between this cell and its neighbour in direction (dy, dx).
    b_lat = c_lat + dy * POINTS.cell_m / 2 * M_LAT
    b_lon = c_lon + dx * POINTS.cell_m / 2 * M_LON
    inside = grid_cell(b_lat - dy * M_LAT, b_lon - dx * M_LON, POINTS)
    outside = grid_cell(b_lat + dy * M_LAT, b_lon + dx * M_LON, POINTS)
    assert inside == (cy, cx) and outside == (cy + dy, cx + dx)


def test_a_neighbourhood_is_a_square_of_three_cells_everywhere() -> None:
    for lat in (39.45, 39.9, 40.5, 41.05):
        cy, cx = grid_cell(lat, 116.4, POINTS)
        south_west = _centre(cy - 1, cx - 1)
        north_east = _centre(cy + 1, cx + 1)
        height = (north_east[0] - south_west[0]) / M_LAT
        # East-west metres at this latitude, not the reference one.
        width = (north_east[1] - south_west[1]) / M_LAT * math.cos(math.radians(lat))
        assert height == pytest.approx(500)
        assert width == pytest.approx(500, rel=0.03)  # square to within 3 % over Beijing


@pytest.mark.stack
async def test_the_ledger_query_counts_in_the_same_cells() -> None:
    s = Settings(postgres_db=f"grid_{uuid.uuid4().hex[:8]}")
    ensure_database(s, s.postgres_db)
    apply_migrations(s.dsn)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    cy, cx = grid_cell(39.8895, 116.3933, POINTS)
    planted: dict[str, tuple[float, float]] = {}
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            c_lat, c_lon = _centre(cy + dy, cx + dx)
            for i, (ey, ex) in enumerate([(0, 0), (0.49, 0.49), (-0.49, -0.49), (0.49, -0.49)]):
                planted[f"GRID-{dy}{dx}-{i}"] = (c_lat + ey * 250 * M_LAT,
                                                 c_lon + ex * 250 * M_LON)
    async with await psycopg.AsyncConnection.connect(s.dsn) as conn:
        for cid, (lat, lon) in planted.items():
            await conn.execute(
                """INSERT INTO cases (complaint_id, version, status, outcome, channel, street,
                                      district, category, filed_at, latitude, longitude)
                   VALUES (%s, 1, 'CLOSED', 'DISPATCH', 'APP', '110102001', '西城区',
                           'order.vendors', %s, %s, %s)""",
                (cid, now - timedelta(hours=1), lat, lon))
        await conn.commit()
        rows = await (await conn.execute(_POINT_SQL, {
            "bs": now - timedelta(days=30), "ws": now - timedelta(days=1), "now": now,
            "dlat": POINTS.cell_m / 111_320.0, "hot": "HOT-%", "excl": [],
            "coslat": math.cos(math.radians(POINTS.reference_latitude))})).fetchall()
    counted = {(r[1], r[2]): r[5] for r in rows}
    expected: dict[tuple[int, int], int] = {}
    for lat, lon in planted.values():
        cell = grid_cell(lat, lon, POINTS)
        expected[cell] = expected.get(cell, 0) + 1
    assert counted == expected
    assert set(expected) == {(cy + dy, cx + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
