"""Tests for ctr_lab.tools.synth: the synthetic data obey Avazu's structure and statistics.

Expected numbers are copied from shared/reference/avazu_facts.md (never read back from the
generator), files are parsed with the standard library's csv module, and the generator is
checked against its specification rather than against itself. No Spark needed.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import hashlib
import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

from ctr_lab import schema
from ctr_lab.tools import synth

# -- facts (avazu_facts.md) -------------------------------------------------------------------
FULL_ROWS = 40_428_967
DOW_ROWS = {  # Monday=0
    0: 3_225_010,
    1: 9_410_217,
    2: 9_169_734,
    3: 8_089_690,
    4: 3_335_302,
    5: 3_363_122,
    6: 3_835_892,
}
HOD_PROFILE = [208, 232, 315, 376, 468, 506, 467, 441, 535, 574, 525, 493]
HOD_PROFILE += [531, 623, 527, 473, 541, 496, 449, 319, 243, 234, 209, 215]
AD_SIZES = {
    (320, 50),
    (300, 250),
    (216, 36),
    (728, 90),
    (120, 20),
    (1024, 768),
    (480, 320),
    (768, 1024),
    (320, 480),
    (300, 50),
}
NULL_SITE = ("85f751fd", "c4e18dd6", "50e219e0")
NULL_APP = ("ecad2386", "7801e8d9", "07d7df22")
NULL_DEVICE = "a99f214a"
HEX = re.compile(r"[0-9a-f]{8}")

BIG_ROWS = 1_000_000
SMALL_ROWS = 50_000


# -- helpers ------------------------------------------------------------------------------------
def collect(rows: int, seed: int) -> Dict[str, np.ndarray]:
    """All batches of generate_batches joined; hex columns as compact bytes (S8)."""
    parts: Dict[str, List[np.ndarray]] = {}
    for batch in synth.generate_batches(rows, seed):
        for name, values in batch.items():
            if name in schema.HEX_COLUMNS:
                values = values.astype("S8")
            elif name == "id":
                values = values.astype(np.uint64)
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def h(text: str) -> bytes:
    return text.encode()


def key(values: np.ndarray) -> np.ndarray:
    """Sortable integers for S8 hex values (or the values themselves)."""
    return values.view(np.uint64) if values.dtype == np.dtype("S8") else values


def is_functional(keys: np.ndarray, values: np.ndarray) -> bool:
    """True if each key always comes with the same value."""
    k, v = key(keys), key(values)
    order = np.lexsort((v, k))
    k, v = k[order], v[order]
    same = k[1:] == k[:-1]
    return bool(np.all(v[1:][same] == v[:-1][same]))


def top(values: np.ndarray, skip: Tuple = ()) -> object:
    uniq, counts = np.unique(values, return_counts=True)
    keep = ~np.isin(uniq, np.array(list(skip), dtype=uniq.dtype)) if skip else slice(None)
    uniq, counts = uniq[keep], counts[keep]
    return uniq[np.argmax(counts)]


def rate(data: Dict[str, np.ndarray], mask: np.ndarray) -> float:
    return float(data["click"][mask].mean())


def read_csv(path: Path) -> Tuple[List[str], List[List[str]]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def columns(path: Path) -> Dict[str, List[str]]:
    header, rows = read_csv(path)
    assert all(len(r) == len(header) for r in rows)
    return {name: [r[i] for r in rows] for i, name in enumerate(header)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def big() -> Dict[str, np.ndarray]:
    return collect(BIG_ROWS, seed=0)


@pytest.fixture(scope="module")
def small() -> Dict[str, np.ndarray]:
    return collect(SMALL_ROWS, seed=0)


# -- columns and structure ----------------------------------------------------------------------
def test_batch_columns_and_types():
    batch = next(synth.generate_batches(2_000, seed=5))
    assert list(batch) == [*schema.RAW_COLUMNS, schema.TRUTH_COLUMN]
    assert all(len(v) == 2_000 for v in batch.values())
    for name in schema.HEX_COLUMNS:
        assert batch[name].dtype.kind == "U"
        assert all(HEX.fullmatch(v) for v in np.unique(batch[name]))
    for name in ("click", "hour", *schema.INT_COLUMNS):
        assert batch[name].dtype == np.int64, name
    assert batch["id"].dtype.kind == "U"
    assert all(re.fullmatch(r"[1-9][0-9]{0,19}", v) for v in batch["id"])
    assert batch[schema.TRUTH_COLUMN].dtype == np.float64


def test_app_site_exclusivity(big):
    site_null = big["site_id"] == h(NULL_SITE[0])
    app_null = big["app_id"] == h(NULL_APP[0])
    assert np.all(site_null ^ app_null), "every row is exactly one of app traffic / site traffic"
    for col, null in zip(("site_id", "site_domain", "site_category"), NULL_SITE):
        assert np.all(big[col][site_null] == h(null)), col
    for col, null in zip(("app_id", "app_domain", "app_category"), NULL_APP):
        assert np.all(big[col][app_null] == h(null)), col
    assert site_null.mean() == pytest.approx(14_596_137 / FULL_ROWS, abs=0.01)
    # The null domain/category hashes also belong to some real sites and apps.
    assert np.any(~site_null & (big["site_domain"] == h(NULL_SITE[1])))
    assert np.any(~site_null & (big["site_category"] == h(NULL_SITE[2])))
    assert np.any(~app_null & (big["app_domain"] == h(NULL_APP[1])))
    assert np.any(~app_null & (big["app_category"] == h(NULL_APP[2])))


def test_entities_are_coherent(big):
    assert is_functional(big["site_id"], big["site_domain"])
    assert is_functional(big["site_id"], big["site_category"])
    assert is_functional(big["app_id"], big["app_domain"])
    assert is_functional(big["app_id"], big["app_category"])
    real = big["device_id"] != h(NULL_DEVICE)
    assert is_functional(big["device_id"][real], big["device_model"][real])
    assert is_functional(big["C14"], big["C17"])
    assert is_functional(big["C17"], big["C21"])


def test_device_id_null_share(big):
    assert np.mean(big["device_id"] == h(NULL_DEVICE)) == pytest.approx(0.825, abs=0.01)


def test_c1_determines_device_type(big):
    c1, dtype = big["C1"], big["device_type"]
    assert set(np.unique(c1)) <= {1001, 1002, 1005, 1007, 1008, 1010, 1012}
    assert np.all(dtype[c1 == 1002] == 0)
    assert np.all(np.isin(dtype[c1 == 1010], [4, 5]))
    assert np.all(dtype[~np.isin(c1, [1002, 1010])] == 1)
    assert set(np.unique(dtype)) == {0, 1, 4, 5}
    shares = {v: np.mean(c1 == v) for v in (1005, 1002, 1010)}
    assert shares[1005] == pytest.approx(37_140_632 / FULL_ROWS, abs=0.01)
    assert shares[1002] == pytest.approx(2_220_812 / FULL_ROWS, abs=0.01)
    assert shares[1010] == pytest.approx(903_457 / FULL_ROWS, abs=0.005)


def test_ad_sizes(big):
    pairs = set(zip(big["C15"].tolist(), big["C16"].tolist()))
    assert pairs <= AD_SIZES
    assert np.mean((big["C15"] == 320) & (big["C16"] == 50)) == pytest.approx(0.93, abs=0.02)
    share_300x250 = np.mean((big["C15"] == 300) & (big["C16"] == 250))
    assert share_300x250 == pytest.approx(1_806_334 / FULL_ROWS, abs=0.01)


def test_value_ranges(big):
    assert big["C14"].min() >= 375 and big["C14"].max() <= 24_052
    assert big["C17"].min() >= 112 and big["C17"].max() <= 2758
    assert big["C19"].min() >= 33 and big["C19"].max() <= 1959
    c20 = big["C20"]
    assert np.all((c20 == -1) | ((c20 >= 100_000) & (c20 <= 100_248)))
    assert np.mean(c20 == -1) == pytest.approx(0.467, abs=0.03)
    assert set(np.unique(big["C18"])) == {0, 1, 2, 3}
    assert set(np.unique(big["banner_pos"])) <= {0, 1, 2, 3, 4, 5, 7}
    assert set(np.unique(big["device_conn_type"])) == {0, 2, 3, 5}
    c21 = set(np.unique(big["C21"]).tolist())
    assert min(c21) >= 1 and max(c21) <= 253
    assert {1, 13, 15, 16, 17, 20, 23, 32, 33, 35} <= c21
    assert set(np.unique(big["click"])) == {0, 1}
    for name in schema.HEX_COLUMNS:
        assert all(HEX.fullmatch(v.decode()) for v in np.unique(big[name])), name


def test_hours_cover_the_ten_days_in_order(big):
    hours = big["hour"]
    valid = {14_100_000 + d * 100 + hh for d in range(21, 31) for hh in range(24)}
    assert set(np.unique(hours).tolist()) == valid  # all 240 hours at 1M rows
    assert np.all(np.diff(hours) >= 0), "rows are sorted by hour like the Kaggle file"


def test_ids_unique(big):
    ids = big["id"]
    assert np.unique(ids).size == ids.size


# -- statistics -----------------------------------------------------------------------------------
def test_ctr_and_bayes_logloss_at_1m(big):
    y, p = big["click"], big[schema.TRUTH_COLUMN]
    assert y.mean() == pytest.approx(0.17, abs=0.01)
    assert p.mean() == pytest.approx(y.mean(), abs=0.003)
    bayes = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    constant = -(y.mean() * np.log(y.mean()) + (1 - y.mean()) * np.log(1 - y.mean()))
    assert 0.35 < bayes < 0.41
    assert constant == pytest.approx(0.4556, abs=0.004)
    assert bayes < constant - 0.05, "the features must carry real signal"


def test_ctr_holds_for_small_samples():
    # 10k rows: the binomial noise alone has sd 0.0038, so check the average over seeds and
    # allow about 4 sd per seed; 50k rows: each seed within 0.01.
    ctr_10k = [next(synth.generate_batches(10_000, seed))["click"].mean() for seed in range(10)]
    assert np.mean(ctr_10k) == pytest.approx(0.17, abs=0.005)
    assert max(abs(c - 0.17) for c in ctr_10k) < 0.02
    for seed in (0, 1, 2):
        batch = next(synth.generate_batches(50_000, seed))
        assert batch["click"].mean() == pytest.approx(0.17, abs=0.01), seed
        assert batch[schema.TRUTH_COLUMN].mean() == pytest.approx(0.17, abs=0.01), seed


def test_day_of_week_and_hour_of_day_shares(big):
    hours = big["hour"]
    days = hours // 100 % 100
    weekday_of = {d: datetime.date(2014, 10, d).weekday() for d in range(21, 31)}
    dow = np.vectorize(weekday_of.get)(days)
    for weekday, rows in DOW_ROWS.items():
        assert np.mean(dow == weekday) == pytest.approx(rows / FULL_ROWS, abs=0.006), weekday
    hod = hours % 100
    total = sum(HOD_PROFILE)
    for hour, count in enumerate(HOD_PROFILE):
        assert np.mean(hod == hour) == pytest.approx(count / total, abs=0.004), hour


def test_cardinalities_grow_with_rows(small, big):
    for name in ("device_ip", "device_id", "device_model", "site_id", "app_id", "C14", "C17"):
        assert np.unique(small[name]).size < np.unique(big[name]).size, name
    n_ip = np.unique(big["device_ip"]).size
    assert 100_000 < n_ip < 0.8 * BIG_ROWS
    assert np.unique(big["device_id"]).size < 0.2 * BIG_ROWS
    limits = {"site_category": 26, "app_category": 36, "app_domain": 559, "site_id": 4737}
    limits.update({"app_id": 8552, "device_model": 8251, "C14": 2626, "C17": 435, "C21": 60})
    limits.update({"C19": 68, "C20": 172, "C1": 7, "banner_pos": 7, "device_type": 5})
    for name, full in limits.items():
        assert np.unique(big[name]).size <= full, name


def test_top_values_match_the_facts(big):
    assert top(big["site_id"], skip=(h(NULL_SITE[0]),)) == h("1fbe01fe")
    assert top(big["site_domain"]) == h("c4e18dd6")
    assert top(big["site_domain"], skip=(h(NULL_SITE[1]),)) == h("f3845767")
    assert top(big["site_category"]) == h("50e219e0")
    assert top(big["app_id"], skip=(h(NULL_APP[0]),)) == h("92f5800b")
    assert top(big["app_domain"]) == h("7801e8d9")
    assert top(big["app_category"]) == h("07d7df22")
    assert top(big["app_category"], skip=(h(NULL_APP[2]),)) == h("0f2161f8")
    assert top(big["device_model"]) == h("8a4875bd")
    assert top(big["device_ip"]) == h("6b9769f2")
    assert top(big["device_id"], skip=(h(NULL_DEVICE),)) in {h("0f7c61dc"), h("c357dbff")}
    assert np.mean(big["site_id"] == h("1fbe01fe")) == pytest.approx(
        6_486_150 / FULL_ROWS, abs=0.01
    )
    assert top(big["C1"]) == 1005
    assert top(big["banner_pos"]) == 0
    assert top(big["C21"]) == 23


def test_signal_is_learnable(big):
    """Per-value click rates a student can see, as the facts list them."""
    overall = big["click"].mean()
    assert rate(big, big["banner_pos"] == 7) > 0.25
    assert rate(big, big["C21"] == 33) > 0.30
    assert rate(big, (big["C15"] == 300) & (big["C16"] == 250)) > 0.30
    assert rate(big, big["C18"] == 2) > 0.22
    assert rate(big, big["device_conn_type"] == 3) < 0.08
    assert rate(big, big["device_type"] == 0) > overall > rate(big, big["device_type"] == 4)
    assert rate(big, big["C1"] == 1002) == pytest.approx(0.2107, abs=0.02)
    assert rate(big, big["device_conn_type"] == 0) == pytest.approx(0.1811, abs=0.01)


def test_busy_users_click_less(big):
    """A user (device_id, else ip+model) with many impressions in an hour clicks less."""
    real = big["device_id"] != h(NULL_DEVICE)
    user = np.where(real, big["device_id"], np.char.add(big["device_ip"], big["device_model"]))
    user_hour = np.char.add(user, big["hour"].astype("S8"))
    _, inverse, counts = np.unique(user_hour, return_inverse=True, return_counts=True)
    per_row = counts[inverse]
    assert rate(big, per_row == 1) > rate(big, per_row >= 5) + 0.03


# -- files ----------------------------------------------------------------------------------------
def test_csv_matches_generated_batches(tmp_path):
    path = tmp_path / "train.csv"
    report = synth.write_dataset(path, rows=5_000, seed=9)
    data = path.read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data and b'"' not in data
    got = columns(path)
    assert list(got) == list(schema.RAW_COLUMNS)
    want = next(synth.generate_batches(5_000, seed=9))
    for name in schema.RAW_COLUMNS:
        assert got[name] == [str(v) for v in want[name].tolist()], name
    assert report.rows == 5_000
    assert report.clicks == sum(int(v) for v in got["click"])
    assert report.ctr == pytest.approx(report.clicks / 5_000)


def test_same_seed_same_bytes(tmp_path):
    a, b, c = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz", tmp_path / "c.csv.gz"
    synth.write_dataset(a, rows=30_000, seed=4)
    synth.write_dataset(b, rows=30_000, seed=4)
    synth.write_dataset(c, rows=30_000, seed=5)
    assert sha256(a) == sha256(b)
    assert sha256(a) != sha256(c)
    header = a.read_bytes()[:10]
    assert header[3] == 0, "no file name (FNAME) in the gzip header"
    assert header[4:8] == b"\0\0\0\0", "gzip mtime is 0"
    plain = tmp_path / "a.csv"
    synth.write_dataset(plain, rows=30_000, seed=4)
    assert gzip.decompress(a.read_bytes()) == plain.read_bytes()
    again = tmp_path / "again.csv"
    synth.write_dataset(again, rows=30_000, seed=4)
    assert sha256(plain) == sha256(again)


def test_truth_file_is_aligned_and_calibrated(tmp_path):
    data, truth = tmp_path / "train.csv", tmp_path / "truth.csv.gz"
    report = synth.write_dataset(data, rows=200_000, seed=2, truth_path=truth)
    header, truth_rows = read_csv(truth)
    assert header == ["id", schema.TRUTH_COLUMN]
    p_of = {row[0]: float(row[1]) for row in truth_rows}
    got = columns(data)
    assert len(p_of) == len(got["id"]) == 200_000
    p = np.array([p_of[i] for i in got["id"]])  # join on id
    y = np.array(got["click"], dtype=float)
    assert np.all((p > 0) & (p < 1))
    deciles = np.quantile(p, np.linspace(0, 1, 11))
    bucket = np.clip(np.searchsorted(deciles, p, side="right") - 1, 0, 9)
    for d in range(10):
        in_d = bucket == d
        assert y[in_d].mean() == pytest.approx(p[in_d].mean(), abs=0.015), d
    assert y.mean() == pytest.approx(report.ctr)
    assert p.mean() == pytest.approx(report.mean_p, abs=1e-6)
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert loss == pytest.approx(report.bayes_logloss, abs=1e-4)


def test_course_format(tmp_path):
    raw, course = tmp_path / "raw.csv", tmp_path / "course.csv"
    raw_truth, course_truth = tmp_path / "raw_truth.csv", tmp_path / "course_truth.csv"
    synth.write_dataset(raw, rows=20_000, seed=3, truth_path=raw_truth)
    report = synth.write_dataset(course, rows=20_000, seed=3, fmt="course", truth_path=course_truth)
    assert report.fmt == "course"
    r, c = columns(raw), columns(course)
    assert list(c) == list(schema.COURSE_COLUMNS)
    assert set(c["click"]) == {"TRUE", "FALSE"}
    assert c["click"] == ["TRUE" if v == "1" else "FALSE" for v in r["click"]]
    for name in schema.COURSE_COLUMNS[1:-4]:
        assert c[name] == r[name], name
    assert set(c["month"]) == {"10"}
    for hour, day, dow, hod in zip(r["hour"], c["day"], c["dayofweek"], c["hour"]):
        assert (int(day), int(hod)) == (int(hour[4:6]), int(hour[6:8]))
        assert int(dow) == datetime.date(2014, 10, int(day)).weekday()
    first_day = [dow for day, dow in zip(c["day"], c["dayofweek"]) if day == "21"]
    assert set(first_day) == {"1"}, "2014-10-21 was a Tuesday (Monday=0)"
    _, raw_p = read_csv(raw_truth)
    header, course_p = read_csv(course_truth)
    assert header == ["row", schema.TRUTH_COLUMN]
    assert [row[0] for row in course_p] == [str(i) for i in range(20_000)]
    assert [row[1] for row in course_p] == [row[1] for row in raw_p]
    assert [row[0] for row in raw_p] == r["id"]


def test_header_typo_and_raw_restrictions(tmp_path):
    path = tmp_path / "typo.csv"
    synth.write_dataset(path, rows=1_000, seed=0, fmt="course", header_typo=True)
    header = path.read_text().splitlines()[0].split(",")
    assert "add_category" in header and "app_category" not in header
    assert header.index("add_category") == list(schema.COURSE_COLUMNS).index("app_category")
    with pytest.raises(ValueError, match="course"):
        synth.write_dataset(tmp_path / "x.csv", rows=10, header_typo=True)
    with pytest.raises(ValueError, match="course"):
        synth.write_dataset(tmp_path / "x.csv", rows=10, damage=True)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("cell", "excel"),
    [
        ("05490809", "5490809"),
        ("25301e75", "2.53E+79"),
        ("1e10abcd", "1e10abcd"),
        ("00000000", "0"),
        ("3380e4ab", "3380e4ab"),
        ("3380e4", "3.38E+07"),
        ("12345678", "12345678"),
        ("0001e005", "1.00E+05"),
        ("1e000300", "1.00E+300"),
        ("9e999999", "9e999999"),  # overflows a double: kept as text
        ("e1234567", "e1234567"),
        ("1234567e", "1234567e"),
        ("12e4e567", "12e4e567"),
        ("85f751fd", "85f751fd"),
    ],
)
def test_spreadsheet_damage_examples(cell, excel):
    assert synth.spreadsheet_damage(np.array([cell])).tolist() == [excel]


def test_spreadsheet_damage_keeps_shape_and_accepts_bytes():
    cells = np.array([["05490809", "a99f214a"], ["25301e75", "00000001"]])
    out = synth.spreadsheet_damage(cells)
    assert out.shape == (2, 2)
    assert out.tolist() == [["5490809", "a99f214a"], ["2.53E+79", "1"]]
    assert synth.spreadsheet_damage(cells.astype("S8")).tolist() == out.tolist()
    assert synth.spreadsheet_damage(np.array([], dtype=str)).size == 0


def test_damaged_course_file(tmp_path):
    clean, damaged = tmp_path / "clean.csv", tmp_path / "damaged.csv"
    synth.write_dataset(clean, rows=50_000, seed=8, fmt="course")
    synth.write_dataset(damaged, rows=50_000, seed=8, fmt="course", damage=True)
    c, d = columns(clean), columns(damaged)
    changed_any = 0
    for name in schema.COURSE_COLUMNS:
        if name in schema.HEX_COLUMNS:
            assert d[name] == synth.spreadsheet_damage(np.array(c[name])).tolist(), name
            changed = np.mean(np.array(c[name]) != np.array(d[name]))
            assert changed < 0.05, name
            changed_any += int(changed > 0)
        else:
            assert d[name] == c[name], name
    assert changed_any >= 3
    values = {v for name in schema.HEX_COLUMNS for v in d[name]}
    assert any(re.fullmatch(r"[1-9]\.[0-9]{2}E\+[0-9]{2,3}", v) for v in values)
    assert any(re.fullmatch(r"[0-9]{1,7}", v) for v in values)


def test_parquet_round_trip(tmp_path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pytest.skip("pyarrow is not installed (pip install pyarrow)")
    path, csv_path = tmp_path / "train.parquet", tmp_path / "train.csv"
    report = synth.write_dataset(path, rows=12_000, seed=6)
    synth.write_dataset(csv_path, rows=12_000, seed=6)
    table = pq.read_table(path)
    assert table.column_names == list(schema.RAW_COLUMNS)
    assert report.rows == table.num_rows == 12_000
    got = table.to_pydict()
    want = columns(csv_path)
    for name in schema.RAW_COLUMNS:
        assert [str(v) for v in got[name]] == want[name], name
    again = tmp_path / "again.parquet"
    synth.write_dataset(again, rows=12_000, seed=6)
    assert sha256(path) == sha256(again)

    course, course_csv = tmp_path / "course.parquet", tmp_path / "course.csv"
    options = dict(rows=3_000, seed=6, fmt="course", damage=True, header_typo=True)
    synth.write_dataset(course, **options)
    synth.write_dataset(course_csv, **options)
    got = pq.read_table(course).to_pydict()
    want = columns(course_csv)
    assert list(got) == list(want)
    assert "add_category" in got
    for name, values in got.items():
        if name == "click":
            assert values == [v == "TRUE" for v in want[name]]
        else:
            assert [str(v) for v in values] == want[name], name


def test_parquet_without_pyarrow_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ValueError, match="pip install pyarrow"):
        synth.write_dataset(tmp_path / "x.parquet", rows=10)
    assert list(tmp_path.iterdir()) == []


def test_progress_and_batch_boundary(tmp_path):
    rows = synth.BATCH_ROWS + 1_000
    calls: List[Tuple[int, int]] = []
    path = tmp_path / "two_batches.csv"
    report = synth.write_dataset(
        path, rows=rows, seed=1, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(synth.BATCH_ROWS, rows), (rows, rows)]
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        ids, hours = [], []
        for row in reader:
            ids.append(row[0])
            hours.append(int(row[2]))
    assert len(ids) == report.rows == rows
    assert len(set(ids)) == rows, "ids are unique across batches"
    assert hours == sorted(hours)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="file type"):
        synth.write_dataset(tmp_path / "x.txt", rows=10)
    with pytest.raises(ValueError, match="file type"):
        synth.write_dataset(tmp_path / "x.csv", rows=10, truth_path=tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="fmt"):
        synth.write_dataset(tmp_path / "x.csv", rows=10, fmt="kaggle")
    with pytest.raises(ValueError, match="rows"):
        synth.write_dataset(tmp_path / "x.csv", rows=-1)
    with pytest.raises(ValueError, match="seed"):
        synth.generate_batches(10, seed=-3)
    assert list(tmp_path.iterdir()) == []


def test_report_to_dict(tmp_path):
    report = synth.write_dataset(tmp_path / "x.csv.gz", rows=3_000, seed=0)
    d = report.to_dict()
    assert set(d) == {
        "path",
        "truth_path",
        "fmt",
        "rows",
        "clicks",
        "ctr",
        "mean_p",
        "bayes_logloss",
        "seconds",
        "rows_per_second",
    }
    assert d["truth_path"] is None and d["fmt"] == "raw" and d["rows"] == 3_000
    assert 0 < d["bayes_logloss"] < 0.7


def test_zero_rows(tmp_path):
    assert list(synth.generate_batches(0)) == []
    path = tmp_path / "empty.csv"
    report = synth.write_dataset(path, rows=0)
    assert path.read_text() == ",".join(schema.RAW_COLUMNS) + "\n"
    assert report.rows == 0 and report.clicks == 0
