"""The settings object: every field resolved once, at load, from PARALLAX_* variables or its
default; grouped, immutable, all of it shown by `parallax settings`; Spark's conf for
spark-submit taken from the one place that defines it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.settings import SettingsError, load_settings
from infra.spark import session_conf, submit_conf


def test_paths_default_under_the_var_dir_and_are_fields(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PARALLAX_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("PARALLAX_MASTER_DIR", raising=False)
    monkeypatch.setenv("PARALLAX_CHECKPOINT_DIR", str(tmp_path / "elsewhere"))
    paths = load_settings().paths
    assert paths.master_dir == tmp_path / "var" / "master" / "events"
    assert paths.checkpoint_dir == tmp_path / "elsewhere"  # a variable wins over the default
    assert paths.airflow_home == tmp_path / "var" / "airflow"


def test_values_are_read_once_at_load(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PARALLAX_MASTER_DIR", str(tmp_path / "a"))
    settings = load_settings()
    monkeypatch.setenv("PARALLAX_MASTER_DIR", str(tmp_path / "b"))
    assert settings.paths.master_dir == tmp_path / "a"  # the process keeps what it loaded
    assert load_settings().paths.master_dir == tmp_path / "b"


def test_groups_read_their_variables(monkeypatch):
    monkeypatch.setenv("PARALLAX_CASSANDRA_HOSTS", "10.0.0.1, 10.0.0.2")
    monkeypatch.setenv("PARALLAX_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("PARALLAX_TOPIC_EVENTS", "events-test")
    monkeypatch.setenv("PARALLAX_RATE_LIMIT_IP", "600/minute")
    monkeypatch.setenv("PARALLAX_WATERMARK", "5 minutes")
    s = load_settings()
    assert s.cassandra.hosts == ("10.0.0.1", "10.0.0.2")
    assert s.kafka.servers == ["k1:9092", "k2:9092"] and s.kafka.host_port == ("k1", 9092)
    assert s.kafka.topic_events == "events-test" and s.kafka.topic_names()["events"] == "events-test"
    assert s.collector.rate_limit_ip == "600/minute" and s.speed.watermark == "5 minutes"


def test_a_bad_value_names_its_variable(monkeypatch):
    monkeypatch.setenv("PARALLAX_CASSANDRA_PORT", "nine thousand")
    with pytest.raises(SettingsError, match="PARALLAX_CASSANDRA_PORT='nine thousand': Input should be a valid integer"):
        load_settings()
    monkeypatch.setenv("PARALLAX_CASSANDRA_PORT", "9042")
    monkeypatch.setenv("PARALLAX_SPEED_MAX_BATCH_EVENTS", "lots")
    with pytest.raises(SettingsError, match="PARALLAX_SPEED_MAX_BATCH_EVENTS='lots'"):
        load_settings()
    monkeypatch.setenv("PARALLAX_SPEED_MAX_BATCH_EVENTS", "1000")
    monkeypatch.setenv("PARALLAX_KEYSPACE", "ks")
    assert load_settings().cassandra.keyspace == "ks"


def test_settings_are_immutable_and_copied_by_group():
    s = load_settings()
    with pytest.raises(ValidationError):
        s.kafka.bootstrap = "elsewhere:9092"
    changed = s.replace(kafka={"topic_events": "t"}, collector={"rate_limit_ip": "off"})
    assert (changed.kafka.topic_events, changed.collector.rate_limit_ip) == ("t", "off")
    assert s.kafka.topic_events == "events" and changed.cassandra == s.cassandra
    with pytest.raises(ValueError, match="no field"):
        s.replace(kafka={"no_such_setting": 1})


def test_parallax_settings_shows_every_field(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PARALLAX_MASTER_DIR", str(tmp_path / "master"))
    shown = json.loads(subprocess.run([sys.executable, "-m", "cli", "settings"], capture_output=True, text=True,
                                      check=True).stdout)
    s = load_settings()
    assert set(shown) == set(type(s).model_fields)
    for group, values in shown.items():
        assert set(values) == set(type(getattr(s, group)).model_fields), group
    assert shown["paths"]["master_dir"] == str(tmp_path / "master")


def test_spark_submit_takes_the_sessions_own_conf(monkeypatch):
    monkeypatch.setenv("PARALLAX_SPARK_DRIVER_MEMORY", "3g")
    s = load_settings()
    conf, batch = submit_conf(s), session_conf(s, batch=True)
    assert "spark.master" not in conf and "spark.driver.memory" not in conf  # spark-submit's own arguments
    assert {k: v for k, v in conf.items() if not k.startswith("spark.pyspark.") and k != "spark.jars"} == \
        {k: v for k, v in batch.items() if k not in ("spark.master", "spark.driver.memory")}
    assert "delta-spark" in conf["spark.jars"]  # the master dataset's table format
    assert conf["spark.pyspark.python"] == sys.executable
    assert batch["spark.driver.memory"] == "3g"
