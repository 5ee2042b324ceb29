"""A publication before every source has loaded: the data sets whose source has not loaded are
skipped with a warning naming it, everything else publishes, and a later publication adds them."""
from __future__ import annotations

import json
import logging

from aim import db
from aim.migrations import migrate
from aim.publish.datasets import inventory
from aim.publish.publication import publish
from aim.settings import sources_dir
from aim.sources import load_source_config
from aim.storage import target_from_url
from aim.tables import ensure_tables

LOADED = "mhd_lead_tests"


def _load(url: str, source: str) -> None:
    with db.transaction(url) as conn, conn.cursor() as cur:
        ensure_tables(cur, load_source_config(sources_dir() / f"{source}.yaml"))


def test_data_sets_whose_source_has_not_loaded_are_skipped_and_the_rest_publishes(
        new_database, tmp_path, monkeypatch, caplog):
    url = new_database("aim_wh")
    migrate(url)
    _load(url, LOADED)
    monkeypatch.setenv("AIM_WAREHOUSE_URL", url)
    target = target_from_url(str(tmp_path / "open"))
    released = {d.id: d.source for d in inventory() if d.released}
    not_loaded = {i for i, source in released.items() if source and source != LOADED}
    assert not_loaded and any(source == LOADED for source in released.values())

    with caplog.at_level(logging.WARNING, logger="aim.publish.publication"):
        first = publish(run_id="early", target=target)

    assert set(first.skipped) == not_loaded
    for dataset_id in not_loaded:
        assert released[dataset_id] in first.skipped[dataset_id]
        assert any(dataset_id in r.getMessage() and "has not loaded" in r.getMessage() for r in caplog.records)
    assert set(first.changed) == set(released) - not_loaded  # the loaded source's, the measures', the inventory
    listed = {f["dataset"] for f in json.loads(target.read_bytes("manifest.json"))["files"]}
    assert listed == set(released) - not_loaded
    assert target.read_bytes("site/index.html") and target.read_bytes("catalog/data.json")

    police = next(i for i, source in released.items() if source == "mpd_crime_incidents")
    _load(url, "mpd_crime_incidents")  # the police source loads (no rows yet): its data set follows
    second = publish(run_id="later", target=target)
    assert police in second.changed and police not in second.skipped
    assert set(second.skipped) == not_loaded - {police}
