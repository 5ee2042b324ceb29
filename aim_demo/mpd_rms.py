"""The police records management system (RMS), simulated as its own PostgreSQL database.

`seed()` loads the real WIBR extract (`aim_demo/data/wibr_2023.csv`) into `rms.incident`, typed
as a records system would keep it, with an `updated_at` that incremental extraction follows.
`add_incidents()` and `amend_incidents()` make the new and changed records a later run picks up.
`synthesize_recent()` gives the RMS a recent history (the extract ends in 2023) by resampling the
real incidents onto the last year's days.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg2

from sqlalchemy.engine import make_url

from aim import clock
from aim_demo.databases import ensure_database, libpq_dsn

DATABASE = "mpd_rms"  # the database name `make demo` uses
MILWAUKEE = ZoneInfo("America/Chicago")
WIBR_CSV = Path(__file__).parent / "data" / "wibr_2023.csv"

# WIBR column -> RMS column, in table order.
COLUMNS = {
    "IncidentNum": "incident_num", "ReportedDateTime": "reported_at", "Location": "location",
    "WeaponUsed": "weapon_used", "ALD": "ald", "NSP": "nsp", "POLICE": "police", "TRACT": "tract",
    "WARD": "ward", "ZIP": "zip", "RoughX": "rough_x", "RoughY": "rough_y", "Arson": "arson",
    "AssaultOffense": "assault_offense", "Burglary": "burglary", "CriminalDamage": "criminal_damage",
    "Homicide": "homicide", "LockedVehicle": "locked_vehicle", "Robbery": "robbery",
    "SexOffense": "sex_offense", "Theft": "theft", "VehicleTheft": "vehicle_theft",
}

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS rms;
CREATE TABLE IF NOT EXISTS rms.incident (
    incident_num    varchar(20) PRIMARY KEY,
    reported_at     timestamp NOT NULL,
    location        text,
    weapon_used     text,
    ald             smallint,
    nsp             smallint,
    police          smallint,
    tract           varchar(10),
    ward            varchar(10),
    zip             varchar(10),
    rough_x         double precision,
    rough_y         double precision,
    arson           smallint NOT NULL DEFAULT 0,
    assault_offense smallint NOT NULL DEFAULT 0,
    burglary        smallint NOT NULL DEFAULT 0,
    criminal_damage smallint NOT NULL DEFAULT 0,
    homicide        smallint NOT NULL DEFAULT 0,
    locked_vehicle  smallint NOT NULL DEFAULT 0,
    robbery         smallint NOT NULL DEFAULT 0,
    sex_offense     smallint NOT NULL DEFAULT 0,
    theft           smallint NOT NULL DEFAULT 0,
    vehicle_theft   smallint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS incident_updated_at ON rms.incident (updated_at);
"""


def read_wibr(path: Path = WIBR_CSV) -> list[dict[str, str | None]]:
    """The WIBR extract's rows with RMS column names; empty strings become None.

    `newline=""` lets the csv module take the file's bare `\\r` line endings (and any quoted
    newline inside a field) as the file means them.
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: WIBR columns missing: {sorted(missing)}")
        return [{COLUMNS[k]: (v if v != "" else None) for k, v in row.items() if k in COLUMNS} for row in reader]


def seed(rms_url: str, wibr: Path = WIBR_CSV) -> int:
    """Create the RMS database `rms_url` names and load every WIBR incident not already in it; returns rows added.

    `updated_at` of a seeded incident is one hour after it was reported (Milwaukee time), so
    seeding is deterministic and reruns add nothing.
    """
    ensure_database(rms_url, make_url(rms_url).database)
    rows = read_wibr(wibr)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = list(COLUMNS.values())
    for row in rows:
        writer.writerow([row[n] for n in names])
    buffer.seek(0)
    conn = psycopg2.connect(libpq_dsn(rms_url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(SCHEMA_SQL)
            cur.execute("CREATE TEMP TABLE wibr_load (LIKE rms.incident INCLUDING DEFAULTS) ON COMMIT DROP")
            cur.copy_expert(f"COPY wibr_load ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)", buffer)
            cur.execute(
                f"""
                INSERT INTO rms.incident ({', '.join(names)}, updated_at)
                SELECT {', '.join(names)}, (reported_at + interval '1 hour') AT TIME ZONE 'America/Chicago'
                FROM wibr_load
                ON CONFLICT (incident_num) DO NOTHING
                """
            )
            return cur.rowcount
    finally:
        conn.close()


def add_incidents(rms_url: str, count: int, now: datetime, prefix: str = "DEMO") -> list[str]:
    """Insert `count` new incidents reported an hour before `now` (Milwaukee wall time; copies of real
    ones, new numbers), changed at the platform's clock time (`aim.clock`, as the RMS's clock agrees
    with it); returns their numbers."""
    conn = psycopg2.connect(libpq_dsn(rms_url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                WITH template AS (
                    SELECT * FROM rms.incident ORDER BY incident_num LIMIT %(count)s
                ), numbered AS (
                    SELECT t.*, %(prefix)s || to_char(clock_timestamp(), 'YYMMDDHH24MISS')
                           || lpad(row_number() OVER ()::text, 4, '0') AS new_num
                    FROM template t
                )
                INSERT INTO rms.incident (incident_num, reported_at, location, weapon_used, ald, nsp, police, tract,
                    ward, zip, rough_x, rough_y, arson, assault_offense, burglary, criminal_damage, homicide,
                    locked_vehicle, robbery, sex_offense, theft, vehicle_theft, updated_at)
                SELECT new_num, date_trunc('second', %(now)s::timestamp - interval '1 hour'), location, weapon_used, ald,
                       nsp, police, tract, ward, zip, rough_x, rough_y, arson, assault_offense, burglary,
                       criminal_damage, homicide, locked_vehicle, robbery, sex_offense, theft, vehicle_theft,
                       %(changed)s
                FROM numbered
                RETURNING incident_num
                """,
                {"count": count, "prefix": prefix, "now": now, "changed": clock.now()},
            )
            return sorted(r[0] for r in cur.fetchall())
    finally:
        conn.close()


def amend_incidents(rms_url: str, incident_nums: list[str], **changes) -> None:
    """Change fields of existing incidents as the RMS would, moving their `updated_at` to now
    (`aim.clock`), or just past its last change when that is later (a test clock stands still)."""
    allowed = set(COLUMNS.values()) - {"incident_num"}
    if not changes or set(changes) - allowed:
        raise ValueError(f"changes must name RMS columns among {sorted(allowed)}")
    assignments = ", ".join(f"{name} = %({name})s" for name in changes)  # names from the allow-list
    conn = psycopg2.connect(libpq_dsn(rms_url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                f"UPDATE rms.incident SET {assignments}, "
                "updated_at = greatest(%(changed)s, updated_at + interval '1 microsecond') "
                "WHERE incident_num = ANY(%(nums)s)",
                {**changes, "nums": list(incident_nums), "changed": clock.now()},
            )
            if cur.rowcount != len(set(incident_nums)):
                raise ValueError(f"expected {len(set(incident_nums))} incidents, updated {cur.rowcount}")
    finally:
        conn.close()


# Incidents of one target day, resampled from the real ones of one complete 2023 month's day.
# Everything is a function of the target date and the WIBR rows, never of `now` (which only
# decides how much of today exists yet), so incident numbers are stable from one run to the next.
_SYNTHESIZE_SQL = """
WITH target AS (
    SELECT d::date AS target_day
    FROM generate_series(%(first_day)s::date, %(last_day)s::date, interval '1 day') AS d
), source_month AS (  -- Jan-Jul 2023 (complete in the extract) months that have the target's day of month
    SELECT t.target_day, m AS month,
           row_number() OVER (PARTITION BY t.target_day ORDER BY m) - 1 AS position,
           count(*) OVER (PARTITION BY t.target_day) AS choices
    FROM target t
    CROSS JOIN generate_series(1, 7) AS m
    WHERE extract(day FROM t.target_day) <= extract(day FROM make_date(2023, m, 1) + interval '1 month - 1 day')
), chosen AS (  -- one of them, rotating with the target date
    SELECT target_day, make_date(2023, month, extract(day FROM target_day)::int) AS source_day
    FROM source_month
    WHERE position = (target_day - date '2000-01-01') %% choices
), resampled AS (
    SELECT c.target_day, i.*,
           row_number() OVER (PARTITION BY c.target_day ORDER BY i.reported_at, i.incident_num COLLATE "C")
               AS source_position
    FROM chosen c
    JOIN rms.incident i ON i.reported_at >= c.source_day AND i.reported_at < c.source_day + 1
    WHERE i.incident_num ~ '^(P2C)?[0-9]+$'  -- real WIBR incidents only, never synthesized or demo ones
), kept AS (  -- three of every four, for about 70 a day
    SELECT r.*,
           r.target_day + r.reported_at::time AS new_reported_at,
           row_number() OVER (PARTITION BY r.target_day ORDER BY r.source_position) AS sequence
    FROM resampled r
    WHERE r.source_position %% 4 <> (r.target_day - date '2000-01-01') %% 4
)
INSERT INTO rms.incident (incident_num, reported_at, location, weapon_used, ald, nsp, police, tract, ward, zip,
    rough_x, rough_y, arson, assault_offense, burglary, criminal_damage, homicide, locked_vehicle, robbery,
    sex_offense, theft, vehicle_theft, updated_at)
SELECT 'S' || to_char(target_day, 'YYMMDD') || lpad(sequence::text, 4, '0'),
       new_reported_at, location, weapon_used, ald, nsp, police, tract, ward, zip, rough_x, rough_y, arson,
       assault_offense, burglary, criminal_damage, homicide, locked_vehicle, robbery, sex_offense, theft,
       vehicle_theft,
       least((new_reported_at + interval '1 hour') AT TIME ZONE 'America/Chicago', %(now_instant)s::timestamptz)
FROM kept
WHERE new_reported_at <= %(now)s::timestamp
ORDER BY new_reported_at, sequence
ON CONFLICT (incident_num) DO NOTHING
"""


def synthesize_recent(rms_url: str, now: datetime, days: int = 365) -> int:
    """Give the RMS incidents on each of the `days` days up to `now` (today included, up to `now`); returns rows added.

    The WIBR extract ends in 2023, so without this the last year would hold almost no police
    data. Each target day takes the real incidents reported on the same day of one month of
    January-July 2023 (complete months; the month rotates with the target date), keeps three of
    every four (about 70 a day), and copies each with its time of day, location, districts,
    coordinates, weapon and offense flags onto the target day, numbered `S` + YYMMDD + a 4-digit
    sequence. `updated_at` is an hour after the report (Milwaukee time) but never after `now`:
    a record cannot have changed in the future, and a future `updated_at` would carry the
    extraction watermark past records added later.

    `now` is Milwaukee local time (naive; an aware datetime is converted). Deterministic: the same
    `now` gives the same rows, a rerun adds nothing, a later `now` adds only what happened since.
    Needs `seed()` first (without WIBR rows there is nothing to resample).
    """
    if days < 1:
        return 0
    # The cap on updated_at is an instant: a wall time of the hour daylight saving time repeats reads as
    # its second (standard time) pass in PostgreSQL, an hour later; a naive `now` is taken as its first.
    now_instant = now if now.tzinfo is not None else now.replace(tzinfo=MILWAUKEE, fold=0)
    if now.tzinfo is not None:
        now = now.astimezone(MILWAUKEE).replace(tzinfo=None)
    last_day = now.date()
    first_day = last_day - timedelta(days=days - 1)
    conn = psycopg2.connect(libpq_dsn(rms_url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(SCHEMA_SQL)
            cur.execute(_SYNTHESIZE_SQL, {"first_day": first_day, "last_day": last_day, "now": now,
                                          "now_instant": now_instant})
            return cur.rowcount
    finally:
        conn.close()
