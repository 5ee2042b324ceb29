"""The police source end to end through Airflow (`dag.test()`), on a real PostgreSQL and a real S3 server.

The tests run in file order and share one warehouse: each one is a step an operator would take
(first load, rerun, new data at the source, a bad batch, the fix). As the scheduler would, each
ingest run is followed by `publish_open_data`, publication's one owner.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from urllib.parse import quote

import pytest

from aim import gate
from aim.dag_builders.ingest import build_ingest_dag
from aim.dag_builders.publish import build_publish_dag
from aim.sources import load_source_config
from aim.settings import sources_dir
from aim_demo import mpd_rms
from aim_demo.databases import libpq_dsn, query
from alert_receivers import Webhook, webhook_server

DATASET = "mpd-crime-incidents"
LATEST_CSV = f"latest/{DATASET}/{DATASET}.csv"
WIBR_INCIDENTS = 20_246


class Police:
    def __init__(self, warehouse: str, rms: str, s3, bucket: str):
        self.warehouse, self.rms, self.s3, self.bucket = warehouse, rms, s3, bucket
        self.config = load_source_config(sources_dir() / "mpd_crime_incidents.yaml")
        self.first_run: tuple[str, dict] | None = None  # the module's first run, against an empty warehouse
        self.after_first_run: dict = {}

    def ingest(self):
        """One ingest DAG run through Airflow; returns (dag run state, its ops.run_log row, its task states)."""
        dag_run = build_ingest_dag(self.config).test()
        return str(dag_run.state), self.run_log(dag_run.run_id), task_states(dag_run)

    def publish(self) -> None:
        """One `publish_open_data` run, as the scheduler starts it on the source's asset or its daily floor."""
        dag_run = build_publish_dag().test()
        assert str(dag_run.state) == "success", task_states(dag_run)

    def run(self):
        """An ingest run, then the publication; returns (ingest run state, its ops.run_log row)."""
        state, log, _ = self.ingest()
        self.publish()
        return state, log

    def query(self, statement: str, params=None):
        return query(self.warehouse, statement, params)

    def run_log(self, run_id: str) -> dict:
        rows = self.query(
            "SELECT status, quality_outcome, rows_extracted, rows_loaded, message, batch_id "
            "FROM ops.run_log WHERE source = 'mpd_crime_incidents' AND run_id = %s",
            (run_id,),
        )
        assert len(rows) == 1, f"expected one run_log row for {run_id}, found {rows}"
        keys = ("status", "quality_outcome", "rows_extracted", "rows_loaded", "message", "batch_id")
        return dict(zip(keys, rows[0]))

    def core_fingerprint(self) -> tuple[int, str]:
        """Row count and a hash of every core row, trace columns included."""
        return self.query(
            "SELECT count(*), md5(coalesce(string_agg(c::text, '|' ORDER BY incident_num), '')) "
            "FROM core.mpd_crime_incidents c"
        )[0]

    def watermark(self):
        return self.query("SELECT value, batch_id, updated_at FROM ops.watermark WHERE source = 'mpd_crime_incidents'")

    def watermark_time(self) -> dt.datetime:
        """The stored watermark as the time it is (to compare directions, not just inequality)."""
        return dt.datetime.fromisoformat(self.watermark()[0][0])

    def rows_to_read(self, watermark: dt.datetime) -> int:
        """Source rows the next run reads: changed at or after the watermark less the overlap window."""
        since = watermark - dt.timedelta(seconds=self.config.extract.overlap_seconds)
        return query(self.rms, "SELECT count(*) FROM rms.incident WHERE updated_at >= %s", (since,))[0][0]

    def expected_watermark(self, clock: dt.datetime) -> dt.datetime:
        """The newest change merged, but never later than the run's start (the test clock) less the skew."""
        newest = self.query("SELECT max(updated_at) FROM core.mpd_crime_incidents")[0][0]
        return min(newest, clock - dt.timedelta(seconds=self.config.extract.clock_skew_seconds))

    def export_key(self) -> str:
        return f"exports/{LATEST_CSV}"

    def exported_keys(self) -> list[str]:
        listed = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix="exports/")
        return [o["Key"] for o in listed.get("Contents", [])]

    def export_object(self) -> tuple[bytes, dict]:
        client = self.s3.client()
        head = client.head_object(Bucket=self.bucket, Key=self.export_key())
        body = client.get_object(Bucket=self.bucket, Key=self.export_key())["Body"].read()
        return body, head

    def exported_rows(self) -> list[dict]:
        body, _ = self.export_object()
        return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


def task_states(dag_run) -> dict[str, str]:
    """Each task of a finished DAG run and its state, from Airflow's metadata database."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        instances = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id)
        return {ti.task_id: str(ti.state) for ti in instances}


@pytest.fixture(scope="module")
def police(new_database, s3_server, airflow_db):
    warehouse = new_database("aim_wh")
    rms = new_database("mpd_rms")
    assert mpd_rms.seed(rms) == WIBR_INCIDENTS
    bucket = f"aim-test-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=bucket)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIM_WAREHOUSE_URL", warehouse)
        env.setenv("AIRFLOW_CONN_MPD_RMS", libpq_dsn(rms))
        env.setenv("AIM_EXPORT_URL", f"s3://{bucket}/exports")
        env.setenv("AIM_QUALITY_URL", f"s3://{bucket}/quality")  # beside the exports, never under them
        env.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
        env.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        grouped_by_key = []  # the gate's GROUP BY finding whether each key comes once: the source's primary key says so
        each_key_once = gate.each_key_once
        env.setattr(gate, "each_key_once", lambda *args, **kwargs: grouped_by_key.append(args[2])
                    or each_key_once(*args, **kwargs))
        helper = Police(warehouse, rms, s3_server, bucket)
        state, log, tasks = helper.ingest()
        helper.grouped_by_key = list(grouped_by_key)  # the first run's
        helper.first_run = (state, log)
        exported_by_ingest = helper.exported_keys()
        helper.publish()
        helper.after_first_run = {
            "tasks": tasks, "exported_by_ingest": exported_by_ingest,
            "core_rows": helper.core_fingerprint()[0], "exported": helper.exported_rows(),
            "staged": helper.query("SELECT count(*) FROM staging.mpd_crime_incidents")[0][0],
            "newest_change": helper.query("SELECT max(updated_at) FROM core.mpd_crime_incidents")[0][0],
            "watermark": helper.watermark_time(),
        }
        yield helper


def test_first_run_loads_and_exports_every_incident(police):
    state, log = police.first_run
    after = police.after_first_run

    assert state == "success", log["message"]
    assert (log["status"], log["quality_outcome"]) == ("success", "passed")
    assert log["rows_extracted"] == log["rows_loaded"] == WIBR_INCIDENTS
    assert after["core_rows"] == WIBR_INCIDENTS
    assert after["tasks"]["announce_changes"] == "success", "the run announces the source's change (its core asset)"
    assert after["exported_by_ingest"] == [], "an ingest run publishes nothing: publish_open_data does, once"
    rows = after["exported"]
    assert len(rows) == WIBR_INCIDENTS
    numbers = [r["incident_num"] for r in rows]
    assert len(set(numbers)) == WIBR_INCIDENTS
    assert set(numbers) == {r["incident_num"] for r in mpd_rms.read_wibr()}
    # the source's primary key (incident_num) holds each key once: the gate need not group the batch to find it
    assert police.query("SELECT keys_unique_at_source, each_key_once FROM ops.batch WHERE batch_id = %s",
                        (log["batch_id"],)) == [(True, True)]
    assert police.grouped_by_key == []
    # the staged batch was published and cleared; the watermark is the newest change merged
    assert after["staged"] == 0
    assert after["newest_change"] == after["watermark"]


def test_export_to_s3_is_byte_identical_to_local_export(police, tmp_path, monkeypatch):
    monkeypatch.setenv("AIM_EXPORT_URL", str(tmp_path))
    police.publish()

    local_bytes = (tmp_path / LATEST_CSV).read_bytes()
    s3_bytes, head = police.export_object()
    assert local_bytes == s3_bytes
    assert head["ContentType"].startswith("text/csv")
    assert not list(tmp_path.rglob("*.tmp")), "no temporary file is left beside the export"
    assert (tmp_path / "catalog" / "data.json").is_file() and (tmp_path / "manifest.json").is_file()


def test_rerun_changes_nothing(police):
    before = (police.core_fingerprint(), police.watermark(), police.export_object()[1]["LastModified"])
    overlap = police.rows_to_read(police.watermark_time())

    state, log, tasks = police.ingest()
    police.publish()  # its daily run: with nothing new, it rewrites nothing

    assert state == "success", log["message"]
    assert tasks["announce_changes"] == "skipped", "a run that changed nothing announces nothing"
    assert (log["rows_extracted"], log["rows_loaded"]) == (overlap, 0), \
        "a rerun reads only the overlap window behind the watermark again, and changes nothing"
    after = (police.core_fingerprint(), police.watermark(), police.export_object()[1]["LastModified"])
    assert after == before


def test_new_and_changed_incidents_move_exactly(police, clock):
    rows_before, watermark_before = police.core_fingerprint()[0], police.watermark_time()
    new = mpd_rms.add_incidents(police.rms, 10, clock.replace(tzinfo=None))
    changed = sorted(r["incident_num"] for r in mpd_rms.read_wibr()[100:105])
    mpd_rms.amend_incidents(police.rms, changed, location="100 E WELLS ST")
    others = "SELECT md5(string_agg(c::text, '|' ORDER BY incident_num)) FROM core.mpd_crime_incidents c " \
             "WHERE NOT incident_num = ANY(%s)"
    others_before = police.query(others, (changed + new,))
    to_read = police.rows_to_read(watermark_before)
    body, head = police.export_object()
    published_before = (body, head["LastModified"])

    state, log, tasks = police.ingest()

    assert state == "success", log["message"]
    assert tasks["announce_changes"] == "success"
    body, head = police.export_object()
    assert (body, head["LastModified"]) == published_before, "the ingest run leaves publishing to publish_open_data"
    police.publish()
    assert (log["rows_extracted"], log["rows_loaded"]) == (to_read, 15), \
        "the run reads the 15 changes (and the overlap window behind the watermark) and merges the 15"
    assert police.core_fingerprint()[0] == rows_before + 10
    assert police.watermark_time() == max(watermark_before, police.expected_watermark(clock)), \
        "the watermark moves to the newest change merged, capped at the run's start less the clock skew allowance " \
        "(the test clock stands still: once at the cap, it stays), never back"
    assert police.query(
        "SELECT count(*) FROM core.mpd_crime_incidents WHERE incident_num = ANY(%s) AND location = '100 E WELLS ST' "
        "AND _batch_id = %s", (changed, log["batch_id"])
    ) == [(5,)]
    assert police.query(others, (changed + new,)) == others_before  # every other row is untouched
    exported = {r["incident_num"]: r for r in police.exported_rows()}
    assert len(exported) == rows_before + 10
    assert set(new) <= set(exported)
    assert {exported[n]["location"] for n in changed} == {"100 BLOCK E WELLS ST"}  # generalized


def test_bad_batch_is_quarantined_untouched_and_merges_once_fixed(police, monkeypatch):
    before = (police.core_fingerprint(), police.watermark(), police.export_object())
    bad_district, future = sorted(r["incident_num"] for r in mpd_rms.read_wibr()[200:202])
    mpd_rms.amend_incidents(police.rms, [bad_district], police=9)
    mpd_rms.amend_incidents(police.rms, [future], reported_at="2099-01-01 00:00:00")

    Webhook.received.clear()
    with webhook_server() as hook:  # IT operations' alert channel
        host, port = hook.server_address[:2]
        monkeypatch.setenv("AIRFLOW_CONN_AIM_ALERTS_WEBHOOK", f"http://{host}:{port}/aim")
        state, log = police.run()

    assert state == "failed"
    (alert,) = [post["json"] for post in Webhook.received]  # one alert: the publication after it succeeded
    assert (alert["kind"], alert["source"], alert["batch_id"], alert["task_id"]) == \
        ("batch quarantined", "mpd_crime_incidents", log["batch_id"], "validate")
    assert alert["url"].endswith(f"/dags/ingest_mpd_crime_incidents/runs/{quote(alert['run_id'], safe='')}")
    assert "expect_column_values_to_be_in_set on police" in alert["reason"]
    assert (log["status"], log["quality_outcome"]) == ("failed", "failed")
    message = log["message"]
    assert "mpd_crime_incidents" in message and log["batch_id"] in message
    assert "expect_column_values_to_be_in_set on police" in message
    assert "reported time is not in the future" in message
    assert '"9"' in message  # a sample of the offending value
    after = (police.core_fingerprint(), police.watermark(), police.export_object())
    assert after[0] == before[0] and after[1] == before[1]
    assert after[2][0] == before[2][0] and after[2][1]["LastModified"] == before[2][1]["LastModified"]
    # the batch is quarantined with its rows kept for review, and every result is recorded
    assert police.query("SELECT status FROM ops.batch WHERE batch_id = %s", (log["batch_id"],)) == [("quarantined",)]
    assert police.query(
        "SELECT count(*) FROM staging.mpd_crime_incidents WHERE _batch_id = %s AND incident_num = ANY(%s)",
        (log["batch_id"], [bad_district, future]),
    ) == [(2,)]
    failed = police.query(
        "SELECT expectation, column_name FROM ops.quality_result WHERE batch_id = %s AND NOT success "
        "AND severity = 'critical' ORDER BY 1, 2", (log["batch_id"],)
    )
    assert ("expect_column_values_to_be_in_set", "police") in failed
    # IT operations can open the evidence in the private quality target: the quality index and the batch's Data Docs
    client = police.s3.client()
    assert client.list_objects_v2(Bucket=police.bucket, Prefix="exports/quality/")["KeyCount"] == 0
    index = client.get_object(Bucket=police.bucket, Key="quality/index.html")["Body"].read().decode()
    row = next(line for line in index.splitlines() if log["batch_id"] in line)
    assert "quarantined" in row
    (docs,) = police.query("SELECT data_docs FROM ops.batch WHERE batch_id = %s", (log["batch_id"],))[0]
    assert f'href="{docs}"' in row
    page = client.get_object(Bucket=police.bucket, Key=f"quality/{docs}")["Body"].read().decode()
    assert "expect_column_values_to_be_in_set" in page or "values must belong to this set" in page

    # the department fixes its records: the next run merges them
    mpd_rms.amend_incidents(police.rms, [bad_district], police=5)
    mpd_rms.amend_incidents(police.rms, [future], reported_at="2023-05-01 12:00:00")
    to_read = police.rows_to_read(police.watermark_time())

    state, log = police.run()

    assert state == "success", log["message"]
    assert (log["rows_extracted"], log["rows_loaded"]) == (to_read, 2)
    fixed = dict(police.query(
        "SELECT incident_num, (police, reported_at)::text FROM core.mpd_crime_incidents WHERE incident_num = ANY(%s)",
        ([bad_district, future],),
    ))
    assert fixed[bad_district].startswith("(5,")
    assert fixed[future].endswith(',"2023-05-01 12:00:00")')
