"""The data layer: format detection, typing, repairs, exact accounting and one-line errors."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import os
import re
import shutil
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

import ctr_lab.data as data
from ctr_lab import schema as S
from ctr_lab.data import describe_reason, detect_format, load, read_truth
from ctr_lab.errors import DataLoadError

CORPUS = Path(__file__).resolve().parent / "corpus"

RAW_VALUES = {
    "id": "10000169349117863715",  # > 2**63: must survive as a string
    "click": "1",
    "hour": "14102100",
    "C1": "1005",
    "banner_pos": "0",
    "site_id": "1fbe01fe",
    "site_domain": "f3845767",
    "site_category": "28905ebd",
    "app_id": "ecad2386",
    "app_domain": "7801e8d9",
    "app_category": "07d7df22",
    "device_id": "a99f214a",
    "device_ip": "ddd2926e",
    "device_model": "44956a24",
    "device_type": "1",
    "device_conn_type": "2",
    "C14": "15706",
    "C15": "320",
    "C16": "50",
    "C17": "1722",
    "C18": "0",
    "C19": "35",
    "C20": "-1",
    "C21": "79",
}


def raw_line(**changes: str) -> str:
    values = dict(RAW_VALUES, **changes)
    return ",".join(values[c] for c in S.RAW_COLUMNS)


def course_line(**changes: str) -> str:
    values = dict(RAW_VALUES, click="TRUE", month="10", dayofweek="1", day="21", hour="7")
    values.update(changes)
    return ",".join(values[c] for c in S.COURSE_COLUMNS)


RAW_HEADER = ",".join(S.RAW_COLUMNS)
COURSE_HEADER = ",".join(S.COURSE_COLUMNS)


def write(path, lines, newline="\n", prefix=""):
    path.write_text(prefix + newline.join(lines) + newline, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------------------------
# The real public samples
# ---------------------------------------------------------------------------------------------


@pytest.mark.real_samples
def test_real_raw_sample_loads_exactly(spark, real_samples):
    path = str(real_samples / "avazu_train_sample_100.csv")
    loaded = load(path, spark)
    report = loaded.report
    assert (report.format, report.rows_read, report.rows_accepted, report.rows_rejected) == (
        "raw",
        100,
        100,
        0,
    )
    assert report.clicks == 20
    assert report.first_event == report.last_event == "2014-10-21 00:00"

    # Independent reference: Python's csv module on the same file.
    with open(path, newline="") as fh:
        expected = {row["id"]: row for row in csv.DictReader(fh)}
    got = {r["id"]: r for r in loaded.df.collect()}
    assert got.keys() == expected.keys()
    for row_id, want in expected.items():
        row = got[row_id]
        assert row["label"] == int(want["click"])
        assert row["device_ip"] == want["device_ip"]
        assert row["C14"] == int(want["C14"]) and row["C20"] == int(want["C20"])
        assert row["event_time"] == dt.datetime(2014, 10, 21, 0, 0)


def _spreadsheet_counts(path):
    """Count repairable (digits only, < 8 long) and unrepairable hex ids, independently."""
    repaired, unrepairable = {}, {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            for col in S.HEX_COLUMNS:
                value = row[col]
                if re.fullmatch(r"[0-9a-f]{8}", value):
                    continue
                if re.fullmatch(r"[0-9]{1,7}", value):
                    repaired[col] = repaired.get(col, 0) + 1
                else:
                    unrepairable[col] = unrepairable.get(col, 0) + 1
    return repaired, unrepairable


@pytest.mark.real_samples
def test_real_course_sample_loads_with_repairs(spark, real_samples):
    path = str(real_samples / "course_quiz_sample_10k.csv")
    report = load(path, spark).report
    assert report.format == "course"
    assert (report.rows_read, report.rows_accepted, report.clicks) == (10_000, 10_000, 1_500)
    repaired, unrepairable = _spreadsheet_counts(path)
    assert report.ids_repaired == repaired
    assert report.ids_unrepairable == unrepairable
    assert sum(repaired.values()) > 0 and sum(unrepairable.values()) > 0
    assert "ids repaired" in str(report) and "ids unrepairable" in str(report)


@pytest.mark.real_samples
def test_real_course_sample_times_and_repaired_values(spark, real_samples):
    path = str(real_samples / "course_quiz_sample_10k.csv")
    df = load(path, spark).df
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    # Every event time matches month/day/hour, and dayofweek agrees with the 2014 calendar.
    want_times = sorted(
        dt.datetime(2014, int(r["month"]), int(r["day"]), int(r["hour"])) for r in rows
    )
    assert sorted(r["event_time"] for r in df.select("event_time").collect()) == want_times
    assert all(
        dt.date(2014, int(r["month"]), int(r["day"])).weekday() == int(r["dayofweek"]) for r in rows
    )
    # A stripped id comes back zero-padded to 8 hex characters.
    short = next(r["device_model"] for r in rows if re.fullmatch(r"[0-9]{1,7}", r["device_model"]))
    padded = short.rjust(8, "0")
    assert df.where(df.device_model == padded).count() == sum(
        r["device_model"] in (short, padded) for r in rows
    )


# ---------------------------------------------------------------------------------------------
# Formats and containers
# ---------------------------------------------------------------------------------------------


def test_detect_format_from_header():
    assert detect_format(list(S.RAW_COLUMNS)) == ("raw", {}, [], [])
    assert detect_format(list(S.COURSE_COLUMNS))[0] == "course"
    typo = [("add_category" if c == "app_category" else c) for c in S.COURSE_COLUMNS]
    assert detect_format(typo)[:2] == ("course", {"add_category": "app_category"})
    fmt, _, ignored, missing = detect_format([*S.RAW_COLUMNS, "extra"])
    assert (fmt, ignored, missing) == ("raw", ["extra"], [])
    assert detect_format([c for c in S.RAW_COLUMNS if c != "C14"])[3] == ["C14"]


def test_raw_csv_types_and_canonical_schema(spark, tmp_path):
    path = write(
        tmp_path / "raw.csv", [RAW_HEADER, raw_line(), raw_line(click="0", hour="14103023")]
    )
    loaded = load(path, spark)
    want = S.canonical_schema()
    assert [(f.name, f.dataType) for f in loaded.df.schema.fields] == [
        (f.name, f.dataType) for f in want.fields
    ]
    rows = sorted(loaded.df.collect(), key=lambda r: r["event_time"])
    assert rows[0]["id"] == "10000169349117863715"
    assert rows[0]["event_time"] == dt.datetime(2014, 10, 21, 0)
    assert rows[1]["event_time"] == dt.datetime(2014, 10, 30, 23)
    assert [r["label"] for r in rows] == [1, 0]
    assert rows[0]["C20"] == -1
    assert loaded.report.click_rate == 0.5


def test_course_csv_matches_raw_after_normalising(spark, tmp_path):
    raw = write(tmp_path / "raw.csv", [RAW_HEADER, raw_line(hour="14102107")])
    course = write(tmp_path / "course.csv", [COURSE_HEADER, course_line()])
    raw_df = load(raw, spark).df.drop("id")
    course_df = load(course, spark).df.drop("id")
    assertDataFrameEqual(course_df, raw_df)


def test_gzip_parquet_and_folders_give_the_same_rows(spark, tmp_path):
    lines = [RAW_HEADER] + [raw_line(id=str(i), C14=str(1000 + i)) for i in range(50)]
    plain = write(tmp_path / "plain.csv", lines)
    gz = tmp_path / "data.csv.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    folder = tmp_path / "parts"
    folder.mkdir()
    write(folder / "part-0000.csv", lines[:26])
    write(folder / "part-0001.csv", [lines[0], *lines[26:]])
    (folder / "_SUCCESS").write_text("")
    # Files Spark skips (checksums, hidden) or reads as nothing (empty) are not part files.
    (folder / ".part-0000.csv.crc").write_bytes(b"\x00crc\xff")
    (folder / "part-0002.csv").write_bytes(b"")

    reference = load(plain, spark)
    gz_loaded = load(str(gz), spark)
    assert gz_loaded.report.container == "gzip csv"
    assertDataFrameEqual(gz_loaded.df, reference.df)
    assertDataFrameEqual(load(str(folder), spark).df, reference.df)

    canonical = str(tmp_path / "canonical.parquet")
    reference.df.write.parquet(canonical)
    again = load(canonical, spark)
    assert again.report.format == "canonical" and again.report.rows_read == 50
    assertDataFrameEqual(again.df, reference.df)

    typed = str(tmp_path / "typed_raw.parquet")
    spark.read.option("header", True).option("inferSchema", True).csv(plain).write.parquet(typed)
    from_typed = load(typed, spark)
    assert from_typed.report.format == "raw"
    assertDataFrameEqual(from_typed.df, reference.df)


def test_canonical_parquet_reports_utc_hours_on_a_machine_in_another_zone(spark, tmp_path):
    import time

    lines = [RAW_HEADER, raw_line(hour="14102100"), raw_line(id="2", hour="14102223")]
    canonical = str(tmp_path / "canonical.parquet")
    load(write(tmp_path / "two.csv", lines), spark).df.write.parquet(canonical)
    zone = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"  # PySpark turns timestamps into local wall times
    time.tzset()
    try:
        report = load(canonical, spark).report
    finally:
        if zone is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = zone
        time.tzset()
    assert report.format == "canonical"
    assert (report.first_event, report.last_event) == ("2014-10-21 00:00", "2014-10-22 23:00")


def test_crlf_bom_and_header_typo(spark, tmp_path):
    typo_header = COURSE_HEADER.replace("app_category", "add_category")
    path = write(
        tmp_path / "excel.csv",
        [typo_header, course_line(), course_line(click="FALSE")],
        newline="\r\n",
        prefix="\ufeff",
    )
    loaded = load(path, spark)
    assert loaded.report.header_fixes == ["add_category -> app_category"]
    assert loaded.report.rows_accepted == 2
    rows = loaded.df.collect()
    assert {r["C21"] for r in rows} == {79}
    assert {r["app_category"] for r in rows} == {"07d7df22"}


def test_fmt_argument_must_match_the_header(spark, tmp_path):
    path = write(tmp_path / "raw.csv", [RAW_HEADER, raw_line()])
    with pytest.raises(DataLoadError, match="looks like the raw format, not course") as info:
        load(path, spark, fmt="course")
    # The fix suits the Python API and `ctr-lab inspect --format` alike.
    fix = str(info.value).split("Fix: ", 1)[1]
    assert "fmt=None" in fix and "--format" in fix and "'raw'" in fix


# ---------------------------------------------------------------------------------------------
# Row-level problems: counted, kept aside, never dropped silently
# ---------------------------------------------------------------------------------------------


def test_bad_rows_are_counted_by_reason(spark, tmp_path):
    good = [raw_line(id=str(i)) for i in range(6)]
    bad = {
        "malformed_row": raw_line(id="100") + ",extra",  # one field too many
        "not_integer:C14": raw_line(id="101", C14="15x06"),
        "bad_time": raw_line(id="102", hour="1410210"),
        "missing:device_ip": raw_line(id="103", device_ip=""),
        "repeated_header": RAW_HEADER,
        "bad_id": raw_line(id="1.00E+19"),
    }
    truncated = ",".join(raw_line(id="104").split(",")[:10])
    path = write(tmp_path / "messy.csv", [RAW_HEADER, *good, *bad.values(), truncated])
    loaded = load(path, spark)
    report = loaded.report
    assert report.rows_read == 6 + len(bad) + 1
    assert report.rows_accepted == 6
    assert report.rows_accepted + report.rows_rejected == report.rows_read
    assert sum(report.rejected_by_reason.values()) == report.rows_rejected
    # The truncated row is malformed too: two malformed rows, one of each other reason.
    assert report.rejected_by_reason == {reason: 1 for reason in bad} | {"malformed_row": 2}
    rejected = loaded.rejected_df.collect()
    assert len(rejected) == report.rows_rejected
    assert {r["reason"] for r in rejected} >= set(bad)
    assert loaded.df.count() == 6
    # Each reason about a value shows the value written above; the printed report names the column.
    examples = report.rejected_examples
    assert examples["not_integer:C14"] == ["15x06"]
    assert examples["bad_time"] == ["1410210"]
    assert examples["bad_id"] == ["1.00E+19"]
    assert "missing:device_ip" not in examples and "repeated_header" not in examples
    assert len(examples["malformed_row"]) == 2
    assert all(e.startswith(("100,", "104,")) for e in examples["malformed_row"])
    printed = str(report)
    assert "C14: not an integer (e.g. '15x06')" in printed
    assert "hour: event time not a valid YYMMDDHH (e.g. '1410210')" in printed
    assert "id: not an unsigned integer (e.g. '1.00E+19')" in printed


def test_rejected_values_are_shown_a_few_per_reason(spark, tmp_path):
    bad_c1 = ["abc", "1x", "zz", "abc"]
    lines = [raw_line(id="1")] + [raw_line(id=str(10 + i), C1=v) for i, v in enumerate(bad_c1)]
    report = load(write(tmp_path / "bad_int.csv", [RAW_HEADER, *lines]), spark).report
    assert report.rejected_by_reason == {"not_integer:C1": len(bad_c1)}
    shown = report.rejected_examples["not_integer:C1"]
    assert len(shown) == 2 and len(set(shown)) == 2 and set(shown) <= set(bad_c1)
    assert f"C1: not an integer (e.g. {shown[0]!r}, {shown[1]!r})" in str(report)
    assert report.to_dict()["rejected_examples"] == {"not_integer:C1": shown}

    course = write(tmp_path / "course.csv", [COURSE_HEADER, course_line(), course_line(day="32")])
    report = load(course, spark).report
    assert report.rejected_examples == {"bad_time": ["10/32/7"]}
    assert "month/day/hour: event time not a valid month/day/hour (e.g. '10/32/7')" in str(report)


def test_integers_too_large_for_the_column_are_out_of_range(spark, tmp_path):
    lines = [
        raw_line(id="1", C14="2147483647", C15="-2147483648"),  # the INT column's limits: kept
        raw_line(id="2", C14="99999999999"),
        raw_line(id="3", C15="-2147483649"),
        raw_line(id="4", C14="15x06"),
    ]
    report = load(write(tmp_path / "big.csv", [RAW_HEADER, *lines]), spark).report
    assert report.rows_accepted == 1
    assert report.rejected_by_reason == {
        "out_of_range:C14": 1,
        "out_of_range:C15": 1,
        "not_integer:C14": 1,
    }
    assert report.rejected_examples["out_of_range:C14"] == ["99999999999"]
    printed = str(report)
    assert "C14: an integer out of the column's range" in printed and "'99999999999'" in printed
    assert "C15: an integer out of the column's range" in printed and "'-2147483649'" in printed
    assert "C14: not an integer (e.g. '15x06')" in printed


def test_the_load_runs_at_hotspots_code_limit_and_leaves_the_sessions_own(spark, tmp_path):
    """The validation's pass runs with hugeMethodLimit 8000; the session keeps its own value."""
    key = "spark.sql.codegen.hugeMethodLimit"
    seen = []
    real_collect = data._collect_one

    def collect_one(df, shown):
        seen.append(df.sparkSession.conf.get(key))
        return real_collect(df, shown)

    good = write(tmp_path / "raw.csv", [RAW_HEADER, raw_line(id="7")])
    bad = write(tmp_path / "bad.csv", [RAW_HEADER, raw_line(id="8", click="maybe")])
    spark.conf.set(key, "20000")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(data, "_collect_one", collect_one)
            load(good, spark)
        load(good, spark, cache_dir=str(tmp_path / "kept"))
        with pytest.raises(DataLoadError, match="not 0/1"):
            load(bad, spark, cache_dir=str(tmp_path / "kept"))
        assert seen == ["8000"]
        assert spark.conf.get(key) == "20000"
    finally:
        spark.conf.unset(key)


def test_spreadsheet_ids_repaired_or_kept(spark, tmp_path):
    path = write(
        tmp_path / "course.csv",
        [
            COURSE_HEADER,
            course_line(device_model="5490809"),
            course_line(device_ip="2.53E+79"),
            course_line(site_id="1FBE01FE"),
        ],
    )
    loaded = load(path, spark)
    assert loaded.report.ids_repaired == {"site_id": 1, "device_model": 1}
    assert loaded.report.ids_unrepairable == {"device_ip": 1}
    values = {(r["site_id"], r["device_ip"], r["device_model"]) for r in loaded.df.collect()}
    assert ("1fbe01fe", "ddd2926e", "05490809") in values
    assert ("1fbe01fe", "2.53E+79", "44956a24") in values


def _id_as_loaded(text: str) -> tuple:
    """What the load should make of an id, by Python's regular expressions: (value, outcome)."""
    if re.fullmatch("[0-9a-f]{8}", text):
        return text, "kept"
    if re.fullmatch("[0-9a-fA-F]{8}", text):
        return text.lower(), "repaired"
    if re.fullmatch("[0-9]{1,7}", text):
        return text.zfill(8), "repaired"
    return text, "unrepairable"


def test_every_id_is_classified_as_a_regular_expression_would(spark, tmp_path):
    """Ids of every shape, and near misses: each kept, repaired or counted as Python's re says."""
    import random

    rng = random.Random(7)
    alphabet = "0123456789abcdefABCDEFgxz+-. é"
    ids = ["1fbe01fe", "ABCDEF12", "aBcDeF12", "12345678", "1234567", "1", "0x123456"]
    ids += ["1fbe01f", "1fbe01fe0", "é1234567", "１２３４５６７８", "+1234567", "-1234567"]
    ids += ["1.5E+07", "1fbe 01f", "1fbe01fG"]
    ids += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))) for _ in range(300)]
    ids = [text.strip() for text in ids if text.strip()]
    path = write(
        tmp_path / "ids.csv",
        [RAW_HEADER] + [raw_line(id=str(i), site_id=text) for i, text in enumerate(ids)],
    )
    loaded = load(path, spark)
    expected = {str(i): _id_as_loaded(text) for i, text in enumerate(ids)}
    got = {r["id"]: r["site_id"] for r in loaded.df.select("id", "site_id").collect()}
    assert got == {i: value for i, (value, _) in expected.items()}
    outcomes = [outcome for _, outcome in expected.values()]
    assert loaded.report.ids_repaired.get("site_id", 0) == outcomes.count("repaired") > 0
    assert loaded.report.ids_unrepairable.get("site_id", 0) == outcomes.count("unrepairable") > 0


def test_ids_ending_in_a_newline_are_kept_as_read_and_counted(spark, tmp_path):
    """Text read from Parquet can end in a newline, which a ``$`` in a Java pattern lets pass."""
    rows = [
        dict(RAW_VALUES, id="1", site_id="1fbe01fe\n"),
        dict(RAW_VALUES, id="2", site_id="1234\n"),
    ]
    path = str(tmp_path / "raw.parquet")
    spark.createDataFrame(rows).select(*S.RAW_COLUMNS).write.parquet(path)
    loaded = load(path, spark)
    got = {r["id"]: r["site_id"] for r in loaded.df.select("id", "site_id").collect()}
    assert got == {"1": "1fbe01fe\n", "2": "1234\n"}
    assert loaded.report.ids_unrepairable == {"site_id": 2}
    assert not loaded.report.ids_repaired


def test_a_time_or_row_id_with_a_tab_or_newline_is_rejected_and_counted(spark, tmp_path):
    """From Parquet: Spark's parser raised on '14102100' and a newline, failing the whole load."""
    rows = [
        dict(RAW_VALUES, id="1"),
        dict(RAW_VALUES, id="2", hour="14102100\n"),
        dict(RAW_VALUES, id="3", hour="\t14102100"),
        dict(RAW_VALUES, id="4\t"),
        dict(RAW_VALUES, id=" 5 ", hour=" 14102100 "),
    ]
    path = str(tmp_path / "raw.parquet")
    spark.createDataFrame(rows).select(*S.RAW_COLUMNS).write.parquet(path)
    loaded = load(path, spark)
    assert loaded.report.rejected_by_reason == {"bad_time": 2, "bad_id": 1}
    assert sorted(r["id"] for r in loaded.df.collect()) == ["1", "5"]
    assert sorted(r["id"] for r in loaded.rejected_df.collect()) == ["2", "3", "4\t"]


# ---------------------------------------------------------------------------------------------
# Fatal problems: one line, naming the file, the column or value, and the fix
# ---------------------------------------------------------------------------------------------


def _fatal(spark, path, *fragments):
    with pytest.raises(DataLoadError) as info:
        load(str(path), spark)
    message = str(info.value)
    assert "\n" not in message and "Py4J" not in message and "at org." not in message
    assert str(path) in message and "Fix:" in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_missing_file(spark, tmp_path):
    _fatal(spark, tmp_path / "nope.csv", "no such file")


def test_empty_and_header_only_files(spark, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    _fatal(spark, empty, "empty")
    _fatal(spark, write(tmp_path / "header.csv", [RAW_HEADER]), "no data rows")


def test_binary_garbage_and_corrupt_gzip(spark, tmp_path):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(256)) * 64)
    _fatal(spark, garbage, "not a CSV or Parquet file")

    lines = [RAW_HEADER] + [raw_line(id=str(i)) for i in range(20_000)]
    blob = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(blob[: len(blob) * 2 // 3])
    _fatal(spark, cut, "gzip", "damaged")


def test_text_named_parquet_is_not_parquet(spark, tmp_path):
    fake = write(tmp_path / "fake.parquet", [RAW_HEADER, raw_line()])
    message = _fatal(spark, fake, "not Parquet", "PAR1")
    assert "missing" not in message


def _latin1_file(path, good_rows: int) -> int:
    """A raw file whose row after ``good_rows`` good ones has an 'é' in Latin-1; its offset."""
    head = "\n".join([RAW_HEADER] + [raw_line(id=str(i)) for i in range(good_rows)]) + "\n"
    bad = raw_line(id="99999", site_id="caf\xe9").encode("latin-1")
    body = head.encode("utf-8") + bad + b"\n" + raw_line(id="100000").encode() + b"\n"
    path.write_bytes(body)
    return len(head) + bad.index(b"\xe9")


def test_a_file_not_in_utf8_is_named_so_wherever_the_byte_is(spark, tmp_path):
    early = tmp_path / "early.csv"
    offset = _latin1_file(early, 3)
    _fatal(spark, early, "not UTF-8", f"byte {offset:,} is 0xe9", "re-save it as UTF-8")

    # Past the first 64 KiB the byte is seen by the load's own pass, not by the sniff.
    late = tmp_path / "late.csv"
    assert _latin1_file(late, 1000) > 1 << 16
    message = _fatal(spark, late, "not UTF-8", "site_id", "'caf\ufffd'", "re-save it as UTF-8")
    assert "unrepairable" not in message
    with pytest.raises(DataLoadError) as kept:
        load(str(late), spark, cache_dir=str(tmp_path / "kept"))
    assert str(kept.value) == message and os.listdir(tmp_path / "kept") == []


def test_missing_column_and_bad_labels(spark, tmp_path):
    header = ",".join(c for c in S.RAW_COLUMNS if c != "C14")
    line = ",".join(RAW_VALUES[c] for c in S.RAW_COLUMNS if c != "C14")
    _fatal(spark, write(tmp_path / "no_c14.csv", [header, line]), "C14", "missing")
    labels = write(tmp_path / "labels.csv", [RAW_HEADER, raw_line(), raw_line(click="yes")])
    _fatal(spark, labels, "click", "'yes'", "0/1")


def test_wrong_parquet_schema(spark, tmp_path):
    path = str(tmp_path / "wrong.parquet")
    spark.createDataFrame([(1, "a")], "x int, y string").write.parquet(path)
    _fatal(spark, path, "missing")


def test_reason_descriptions_and_report_json(spark, tmp_path):
    assert describe_reason("missing:C14") == "C14: empty value"
    path = write(tmp_path / "raw.csv", [RAW_HEADER, raw_line(), raw_line(C14="x")])
    report = load(path, spark).report
    as_dict = report.to_dict()
    assert as_dict["rejected_by_reason"] == {"not_integer:C14": 1}
    assert as_dict["rejected_examples"] == {"not_integer:C14": ["x"]}
    assert "C14: not an integer (e.g. 'x')" in str(report)


def _parts(folder, files):
    folder.mkdir()
    for name, lines in files.items():
        write(folder / name, lines)
    return folder


def test_a_part_file_with_another_column_order_is_refused(spark, tmp_path):
    names = list(S.RAW_COLUMNS)
    i, j = names.index("C15"), names.index("C16")
    names[i], names[j] = names[j], names[i]
    swapped = ",".join(dict(RAW_VALUES, id="2")[c] for c in names)
    folder = _parts(
        tmp_path / "parts",
        {
            "part-0000.csv": [RAW_HEADER, raw_line(id="1")],
            "part-0001.csv": [",".join(names), swapped],
        },
    )
    message = _fatal(spark, folder, str(folder / "part-0001.csv"), "part-0000.csv", "'C16'")
    assert "header" in message


def test_a_parquet_file_among_csv_part_files_is_refused(spark, tmp_path):
    folder = _parts(tmp_path / "parts", {"part-0000.csv": [RAW_HEADER, raw_line(id="1")]})
    odd = str(tmp_path / "one.parquet")
    spark.createDataFrame([dict(RAW_VALUES, id="2")]).coalesce(1).write.parquet(odd)
    (part,) = [n for n in os.listdir(odd) if n.endswith(".parquet")]
    shutil.copy(os.path.join(odd, part), folder / "part-0001.parquet")
    _fatal(spark, folder, str(folder / "part-0001.parquet"), "Parquet", "CSV")


def test_a_readme_beside_part_files_is_named(spark, tmp_path):
    folder = _parts(
        tmp_path / "parts",
        {
            "README.txt": ["Click logs, one part per day.", "See the course page."],
            "part-0000.csv": [RAW_HEADER, raw_line(id="1")],
            "part-0001.csv": [RAW_HEADER, raw_line(id="2")],
        },
    )
    _fatal(spark, folder, str(folder / "README.txt"), "'Click logs")


def test_parquet_part_files_with_another_schema_are_refused(spark, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    rows = spark.createDataFrame([dict(RAW_VALUES, id="1")]).select(*S.RAW_COLUMNS)
    for name, df in [("a", rows), ("b", rows.withColumn("C14", rows["C14"].cast("int")))]:
        out = str(tmp_path / name)
        df.coalesce(1).write.parquet(out)
        (part,) = [n for n in os.listdir(out) if n.endswith(".parquet")]
        shutil.copy(os.path.join(out, part), folder / f"part-{name}.parquet")
    _fatal(spark, folder, str(folder / "part-b.parquet"), "C14", "int32", "part-a.parquet")


def test_read_truth_joins_on_id(spark, tmp_path):
    data = write(tmp_path / "raw.csv", [RAW_HEADER, raw_line(id="7"), raw_line(id="8", click="0")])
    truth = write(tmp_path / "truth.csv", ["id,p_click", "7,0.25", "8,0.5"])
    joined = load(data, spark).df.join(read_truth(truth, spark), on="id", how="inner")
    assert sorted((r["id"], r["p_click"]) for r in joined.collect()) == [("7", 0.25), ("8", 0.5)]
    bad = write(tmp_path / "bad_truth.csv", ["key,p", "7,0.25"])
    with pytest.raises(DataLoadError, match="not id,p_click"):
        read_truth(bad, spark)


def _columns_repeated_in_the_check(loaded) -> list:
    """Columns of the loaded rows whose expression the optimised plan's row filter repeats."""
    plan = loaded.df._jdf.queryExecution().optimizedPlan()
    aliases = []
    while plan.nodeName() == "Project":  # the output's columns, over the load's working columns
        columns = plan.projectList()
        aliases += [columns.apply(i) for i in range(columns.size())]
        plan = plan.child()
    assert plan.nodeName() == "Filter" and aliases, plan.nodeName()
    condition = plan.condition().sql()
    return [
        a.name()
        for a in aliases
        if a.nodeName() == "Alias" and a.child().sql() in condition  # its text, as Spark prints it
    ]


@pytest.mark.parametrize("source", ["raw", "course"])
def test_a_join_on_loaded_rows_plans_few_copies_of_the_check(source, spark, tmp_path):
    # Spark's optimizer copies the row filter's constraints once per projected column whose
    # expression they hold (UnaryNode.getAllValidConstraints), before keeping the ones a join can
    # use: 2^n copies. With every integer column's cast in the check (n = 14), a join on the
    # loaded rows spent about 20 s planning on PySpark 3.5.
    from ctr_lab.samples import sample_path

    if source == "raw":
        path = write(tmp_path / "raw.csv", [RAW_HEADER, raw_line(id="7")])
    else:
        path = sample_path("course_10k")
    repeated = _columns_repeated_in_the_check(load(path, spark))
    assert len(repeated) <= 2, repeated
    # The projected integer column has the value of the check's cast, null where it is null.
    texts = [
        *("7", " 7 ", "+5", "-0", "007", "1.5", "-1.5", "2147483647", "2147483648"),
        *("-2147483648", "-2147483649", "2147483647.9", "9223372036854775807"),
        *("9223372036854775808", "", " ", "abc", "1e3", "0x10", "\t7", "7 8", None),
    ]
    df = spark.createDataFrame([(t,) for t in texts], "x string")
    rows = df.selectExpr(data._try_int("x"), data._int_column("x")).collect()
    assert [r[1] for r in rows] == [r[0] for r in rows], list(zip(texts, rows))
    assert [r[0] for r in rows] == [_python_int(t) for t in texts], list(zip(texts, rows))


def _python_int(text):
    """The integer Python reads in ``text`` (spaces and tabs around it allowed), if it fits INT."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        return None
    return value if -(2**31) <= value < 2**31 else None


def test_remote_uris_go_through_spark(spark, tmp_path, monkeypatch):
    """The s3:// branch: header, format and rows read through Spark's filesystem layer."""
    import ctr_lab.data as data_module

    lines = [RAW_HEADER] + [raw_line(id=str(i)) for i in range(5)]
    path = write(tmp_path / "remote.csv", lines)
    local = load(path, spark)
    canonical = str(tmp_path / "remote_parts")
    local.df.write.parquet(canonical)
    monkeypatch.setattr(data_module, "_is_remote", lambda p: True)
    remote = load("file://" + path, spark)
    assert remote.report.rows_accepted == 5 and remote.report.format == "raw"
    assertDataFrameEqual(remote.df, local.df)
    # A folder of Parquet part files without a .parquet suffix is recognised by its magic bytes.
    assert load("file://" + canonical, spark).report.format == "canonical"
    # A remote folder's part files are checked too, from their first bytes.
    folder = tmp_path / "parts"
    folder.mkdir()
    write(folder / "part-0000.csv", lines)
    with gzip.open(folder / "part-0001.csv.gz", "wt") as fh:
        fh.write("\n".join([RAW_HEADER, raw_line(id="9")]) + "\n")
    (folder / "_SUCCESS").write_text("")
    assert load("file://" + str(folder), spark).report.rows_accepted == 6
    write(folder / "notes.txt", ["Click logs, one part per day."])
    with pytest.raises(DataLoadError) as info:
        load("file://" + str(folder), spark)
    assert str(info.value).startswith("file:") and f"{folder}/notes.txt: " in str(info.value)
    assert "column 1 is 'Click logs'" in str(info.value)


def _s3_error(spark, uri: str) -> str:
    with pytest.raises(DataLoadError) as info:
        load(uri, spark)
    message = str(info.value)
    assert message.startswith(uri + ": ") and "\n" not in message
    return message[len(uri) :]


def test_s3_without_a_filesystem_says_what_to_do(spark):
    csv_message = _s3_error(spark, "s3://ctr-lab-example-bucket/avazu/train.csv")
    assert "No FileSystem for scheme" in csv_message and "hadoop-aws" in csv_message
    # A Parquet URI fails for the same reason: the same message, not "re-write the file".
    assert _s3_error(spark, "s3://ctr-lab-example-bucket/avazu/train.parquet") == csv_message


@pytest.mark.parametrize("name", ["train.csv", "train.parquet"])
def test_s3a_without_the_connector_says_what_to_do(spark, name):
    message = _s3_error(spark, f"s3a://ctr-lab-example-bucket/avazu/{name}")
    assert "S3A" in message and "hadoop-aws" in message
    assert "check the URI" not in message and "re-write" not in message


def test_load_by_sample_name_matches_the_file_and_names_the_sample(spark):
    from ctr_lab.samples import sample_path

    by_name = load("course_10k", spark)
    by_path = load(sample_path("course_10k"), spark)
    assert (
        by_name.report.rows_accepted
        == by_path.report.rows_accepted
        == 10_000 - (by_path.report.rows_rejected)
    )
    assert by_name.df.count() == by_path.df.count()
    assert "course_10k (data_samples/course_10k.csv)" in str(by_name.report)
    assert "/data_samples" not in str(by_name.report).split("(data_samples", 1)[0]


def test_a_kept_copy_is_read_without_validating_and_renewed_when_the_file_changes(
    spark, tmp_path, monkeypatch
):
    source = tmp_path / "clicks.csv"
    shutil.copy(CORPUS / "truncated_rows.csv", source)
    cache_dir = str(tmp_path / "kept")
    first = data.load(str(source), spark, cache_dir=cache_dir)
    assert first.report.rows_rejected == 2

    calls = []
    original = data._validate
    monkeypatch.setattr(data, "_validate", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = data.load(str(source), spark, cache_dir=cache_dir)
    assert calls == [] and again.kept_in == first.kept_in
    assert again.report == first.report

    # One more good row: a new copy, validated again.
    good = (CORPUS / "truncated_rows.csv").read_text().splitlines()[1]
    with open(source, "a") as fh:
        fh.write(good + "\n")
    changed = data.load(str(source), spark, cache_dir=cache_dir)
    assert calls == [1] and changed.kept_in != first.kept_in
    assert (changed.report.rows_read, changed.report.rows_accepted) == (11, 9)

    # A copy without its marker (a write that died) is not read: it is written again.
    os.remove(os.path.join(changed.kept_in, data.KEPT_MARKER))
    rewritten = data.load(str(source), spark, cache_dir=cache_dir)
    assert calls == [1, 1] and rewritten.report == changed.report
    assert os.path.isfile(os.path.join(rewritten.kept_in, data.KEPT_MARKER))
    assert not [n for n in os.listdir(cache_dir) if ".tmp-" in n]


@pytest.fixture
def cluster_default_fs(spark, tmp_path):
    """The session's default file system made an HDFS, as on EMR: ``hdfs://`` URIs and paths
    without a scheme are served from ``tmp_path/hdfs`` through Hadoop's own
    ``ViewFileSystemOverloadScheme`` (as the Livy test double's EMR-like mode serves them)."""
    conf = spark._jsc.hadoopConfiguration()
    names = ("fs.defaultFS", "fs.hdfs.impl", "fs.viewfs.mounttable.namenode-test.linkFallback")
    before = {name: conf.get(name) for name in names}
    root = tmp_path / "hdfs"
    root.mkdir()
    conf.set("fs.defaultFS", "hdfs://namenode-test:8020")
    conf.set("fs.hdfs.impl", "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme")
    conf.set("fs.viewfs.mounttable.namenode-test.linkFallback", root.as_uri())
    yield root
    for name, value in before.items():
        if value is None:
            conf.unset(name)
        else:
            conf.set(name, value)


def test_a_path_without_a_scheme_is_read_where_spark_reads_it(
    spark, tmp_path, monkeypatch, cluster_default_fs
):
    """On EMR a path without a scheme is on the cluster's HDFS, for Spark and for ``load``
    alike: a file a notebook wrote there with Spark loads by the same name. It was looked for on
    the driver's local disk (the YARN container's folder) and refused as 'no such file'."""
    import getpass

    home = cluster_default_fs / "user" / getpass.getuser()
    home.mkdir(parents=True)
    write(home / "mine.csv", [RAW_HEADER] + [raw_line(id=str(i)) for i in range(3)])
    monkeypatch.chdir(tmp_path)  # the driver's own folder: the file is not there
    loaded = load("mine.csv", spark)
    assert loaded.report.rows_accepted == 3 and loaded.report.format == "raw"
    # One that is not there either is said to be missing on the cluster's file system.
    with pytest.raises(DataLoadError) as info:
        load("theirs.csv", spark)
    message = str(info.value)
    assert "hdfs://namenode-test:8020/user/" in message and "no such file" in message, message
    assert "\n" not in message and "Fix:" in message


def test_two_sessions_keeping_the_same_file_at_once_keep_one_copy(spark, tmp_path, monkeypatch):
    """Two notebooks (or two students' sessions on one cluster, whose DATA_CACHE is the
    cluster's) load the same file with the same cache_dir at once: each validates and writes,
    the first moves its copy into place, then the second. The second used to delete the first's
    copy to put its own there, and the first notebook's ``df`` then failed on its next action
    with Spark's 'File ... does not exist' trace. Now the second keeps the copy in place (the
    same file read the same way: the same rows) and drops its own."""
    source = tmp_path / "clicks.csv"
    shutil.copy(CORPUS / "truncated_rows.csv", source)
    cache_dir = str(tmp_path / "kept")
    first = data.load(str(source), spark, cache_dir=cache_dir)
    expected = first.df.count()
    # The second session looked for a copy before the first had moved its own into place.
    monkeypatch.setattr(data._Cache, "read", lambda self, spark, shown: None)
    second = data.load(str(source), spark, cache_dir=cache_dir)
    assert second.kept_in == first.kept_in and second.report == first.report
    assert first.df.count() == second.df.count() == expected  # both still read their rows
    assert first.rejected_df.count() == second.rejected_df.count() == 2
    assert os.listdir(cache_dir) == [os.path.basename(first.kept_in)]  # no copy or .tmp- left
