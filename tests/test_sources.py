"""Source configuration files: the shipped ones validate; broken ones say which file and field."""
from __future__ import annotations

import pytest
import yaml

from aim.settings import expectations_dir, sources_dir
from aim.sources import SourceConfigError, load_source_config, source_config_paths


@pytest.mark.parametrize("path", source_config_paths(sources_dir()), ids=lambda p: p.name)
def test_shipped_source_configurations_validate(path):
    config = load_source_config(path)
    assert path.stem == config.source
    assert (expectations_dir() / config.expectation_suite).is_file()


def _write(tmp_path, **changes):
    raw = yaml.safe_load((sources_dir() / "mpd_crime_incidents.yaml").read_text())
    raw.update(changes)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_column_type_names_file_field_and_expectation(tmp_path):
    raw = yaml.safe_load((sources_dir() / "mpd_crime_incidents.yaml").read_text())
    raw["columns"][1]["type"] = "datetime"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw))

    with pytest.raises(SourceConfigError) as err:
        load_source_config(path)
    assert str(path) in str(err.value)
    assert "columns.1.type" in str(err.value) and "datetime" in str(err.value)


def test_key_must_be_a_listed_column(tmp_path):
    with pytest.raises(SourceConfigError, match="not listed in columns: \\[.incident_id.\\]"):
        load_source_config(_write(tmp_path, key=["incident_id"]))


def test_unquotable_table_name_is_refused(tmp_path):
    with pytest.raises(SourceConfigError, match="extract.sql.table"):
        load_source_config(_write(tmp_path, extract={"table": "rms.incident; DROP TABLE x", "watermark_column": "updated_at"}))


def test_unknown_field_is_refused(tmp_path):
    with pytest.raises(SourceConfigError, match="field 'schedul'"):
        load_source_config(_write(tmp_path, schedul="@daily"))


def test_not_yaml_is_refused(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("source: [unclosed")
    with pytest.raises(SourceConfigError, match="not valid YAML"):
        load_source_config(path)


def test_a_negative_freshness_promise_is_refused_naming_the_field(tmp_path):
    with pytest.raises(SourceConfigError, match=r"field 'freshness\.max_age_days': Input should be greater than or "
                                                r"equal to 0") as err:
        load_source_config(_write(tmp_path, freshness={"max_age_days": -1}))
    assert str(tmp_path / "broken.yaml") in str(err.value)


def test_a_freshness_block_needs_its_promise(tmp_path):
    with pytest.raises(SourceConfigError, match=r"field 'freshness\.max_age_days': Field required"):
        load_source_config(_write(tmp_path, freshness={}))
    # no block at all: no promise (the registry makes none)
    assert load_source_config(sources_dir() / "bmo_aim_registry.yaml").freshness is None
