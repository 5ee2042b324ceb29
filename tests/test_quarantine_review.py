"""Reviewing a quarantined batch: inspect it in ops, release it (same merge path, published by the
next publication) or discard it (nothing merged, the source's rows come again), from the command line or Airflow."""
from __future__ import annotations

import csv
import datetime as dt
import json
import uuid

import pytest

from aim import quarantine
from aim.dag_builders.ingest import build_ingest_dag
from aim.dag_builders.publish import build_publish_dag
from aim.dag_builders.review import build_review_dag
from aim.settings import sources_dir
from aim.sources import load_source_config
from aim_demo import mpd_rms
from aim_demo.databases import libpq_dsn, query

CONFIG = load_source_config(sources_dir() / "mpd_crime_incidents.yaml")


class Review:
    def __init__(self, warehouse, rms, exports):
        self.warehouse, self.rms, self.exports = warehouse, rms, exports

    def query(self, statement, params=None):
        return query(self.warehouse, statement, params)

    def ingest(self):
        dag_run = build_ingest_dag(CONFIG).test()
        (batch_id,) = self.query("SELECT batch_id FROM ops.run_log WHERE run_id = %s", (dag_run.run_id,))[0]
        return str(dag_run.state), batch_id

    def publish(self) -> None:
        """A `publish_open_data` run, as the scheduler starts it on the source's asset or daily."""
        assert str(build_publish_dag().test().state) == "success"

    def watermark_time(self) -> dt.datetime:
        (value,) = self.query("SELECT value FROM ops.watermark WHERE source = 'mpd_crime_incidents'")[0]
        return dt.datetime.fromisoformat(value)

    def quarantined(self) -> list[str]:
        return sorted(r[0] for r in self.query("SELECT batch_id FROM ops.batch WHERE status = 'quarantined'"))

    def exported_police(self, incident):
        with open(self.exports / "latest/mpd-crime-incidents/mpd-crime-incidents.csv", newline="", encoding="utf-8") as f:
            return next(r["police"] for r in csv.DictReader(f) if r["incident_num"] == incident)


@pytest.fixture(scope="module")
def review(new_database, airflow_db, tmp_path_factory):
    warehouse, rms = new_database("aim_wh"), new_database("mpd_rms")
    exports = tmp_path_factory.mktemp("exports")
    mpd_rms.seed(rms)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIM_WAREHOUSE_URL", warehouse)
        env.setenv("AIRFLOW_CONN_MPD_RMS", libpq_dsn(rms))
        env.setenv("AIM_EXPORT_URL", str(exports))
        env.setenv("AIM_REVIEWER", "it-ops-tester")
        helper = Review(warehouse, rms, exports)
        assert helper.ingest()[0] == "success"
        helper.publish()
        yield helper


INCIDENTS = sorted(r["incident_num"] for r in mpd_rms.read_wibr()[300:303])


def test_release_merges_the_reviewed_batch_and_the_next_publication_carries_it(review, capsys, clock):
    mpd_rms.amend_incidents(review.rms, [INCIDENTS[0]], police=9)
    state, batch_id = review.ingest()
    assert state == "failed"
    watermark_before = review.watermark_time()
    capsys.readouterr()  # drop what the DAG run printed

    assert quarantine.main(["list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    # the list is every quarantined batch in the warehouse (and so holds this one), nothing else
    assert batch_id in [b["batch_id"] for b in listed]
    assert sorted(b["batch_id"] for b in listed) == review.quarantined()
    assert quarantine.main(["show", batch_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert any(c["column_name"] == "police" and c["unexpected_sample"] == ["9"] for c in shown["failed_checks"])

    result = quarantine.release(batch_id, "district 9 confirmed by MPD records")

    assert result["rows_loaded"] == 1
    assert review.query("SELECT police FROM core.mpd_crime_incidents WHERE incident_num = %s", (INCIDENTS[0],)) == [(9,)]
    assert review.query("SELECT status, reviewed_by, review_note FROM ops.batch WHERE batch_id = %s", (batch_id,)) == [
        ("merged", "it-ops-tester", "district 9 confirmed by MPD records")
    ]
    (changed_at,) = query(review.rms, "SELECT updated_at FROM rms.incident WHERE incident_num = %s", (INCIDENTS[0],))[0]
    ceiling = clock - dt.timedelta(seconds=CONFIG.extract.clock_skew_seconds)
    assert review.watermark_time() == max(watermark_before, min(changed_at, ceiling)), \
        "a release moves the watermark forward to the batch's newest change (capped at the run's start less the " \
        "skew allowance), never back"
    assert review.exported_police(INCIDENTS[0]) != "9", "a release merges; publishing is publish_open_data's"
    review.publish()
    assert review.exported_police(INCIDENTS[0]) == "9"
    assert review.query("SELECT status FROM ops.run_log WHERE run_id = %s", (f"release__{batch_id}",)) == [("success",)]
    with pytest.raises(quarantine.ReviewError, match="not quarantined"):
        quarantine.release(batch_id, "again")


def test_discard_from_airflow_merges_nothing_and_the_rows_come_again(review):
    mpd_rms.amend_incidents(review.rms, [INCIDENTS[1]], police=8)
    state, batch_id = review.ingest()
    assert state == "failed"
    before = review.query("SELECT md5(string_agg(c::text, '|' ORDER BY incident_num)) FROM core.mpd_crime_incidents c")
    watermark = review.query("SELECT value FROM ops.watermark")

    dag_run = build_review_dag().test(run_conf={"batch_id": batch_id, "action": "discard", "note": "bad RMS export"})

    assert str(dag_run.state) == "success"
    assert review.query("SELECT status, review_note FROM ops.batch WHERE batch_id = %s", (batch_id,)) == [
        ("discarded", "bad RMS export")
    ]
    assert review.query("SELECT count(*) FROM staging.mpd_crime_incidents WHERE _batch_id = %s", (batch_id,)) == [(0,)]
    assert review.query("SELECT md5(string_agg(c::text, '|' ORDER BY incident_num)) FROM core.mpd_crime_incidents c") \
        == before
    assert review.query("SELECT value FROM ops.watermark") == watermark
    # the source still has the bad row: the next run quarantines it again; once fixed, it merges
    state, again = review.ingest()
    assert state == "failed"
    quarantine.discard(again, "same bad RMS export")  # reviewed like the first; nothing is left held
    mpd_rms.amend_incidents(review.rms, [INCIDENTS[1]], police=4)
    assert review.ingest()[0] == "success"
    assert review.query("SELECT police FROM core.mpd_crime_incidents WHERE incident_num = %s", (INCIDENTS[1],)) == [(4,)]


def test_a_review_needs_a_quarantined_batch_and_a_note(review):
    with pytest.raises(quarantine.ReviewError, match="no batch"):
        quarantine.discard(f"no-such-batch-{uuid.uuid4().hex[:6]}", "why")
    with pytest.raises(quarantine.ReviewError, match="needs a note"):
        quarantine.release("anything", "  ")


def test_a_release_after_a_newer_batch_merged_leaves_the_newer_data(review):
    incident = sorted(r["incident_num"] for r in mpd_rms.read_wibr()[303:304])[0]
    mpd_rms.amend_incidents(review.rms, [incident], police=9)  # not a district: the batch is quarantined
    state, stale = review.ingest()
    assert state == "failed"
    mpd_rms.amend_incidents(review.rms, [incident], police=3)  # MPD corrects the record: the next run merges it
    assert review.ingest()[0] == "success"
    watermark = review.watermark_time()

    result = quarantine.release(stale, "released after the correction, by mistake")

    assert (result["rows_loaded"], result["keys_left_out"]) == (0, 1), \
        "the key a later batch merged is left out of the release, and said so"
    assert result["keys_left_out_sample"] == [[incident]]
    assert review.query("SELECT police FROM core.mpd_crime_incidents WHERE incident_num = %s", (incident,)) == [(3,)], \
        "the newer data stays in core"
    review.publish()
    assert review.exported_police(incident) == "3", "and in the export"
    assert review.watermark_time() == watermark, "a release never moves the watermark back"
    (note,) = review.query("SELECT review_note FROM ops.batch WHERE batch_id = %s", (stale,))[0]
    assert "1 key(s) changed since by later batches were left out" in note, "the batch's record says what was left out"
