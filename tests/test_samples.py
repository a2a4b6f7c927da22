"""The committed samples: documented, reproducible from their recipe, and loadable."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest

from ctr_lab import samples
from ctr_lab.data import load, read_truth
from ctr_lab.errors import CtrLabError
from ctr_lab.evaluate import log_loss_of
from ctr_lab.tools import synth
from ctr_lab.tools.make_samples import build


def test_every_sample_file_is_committed_and_documented():
    recorded = samples.recorded_checksums()
    folder = samples.samples_dir()
    for sample in samples.SAMPLES.values():
        for name in sample.files():
            assert name in recorded, f"{name} missing from data_samples/README.md"
            assert samples.sha256_of(folder / name) == recorded[name], name
        assert sample.command() in (folder / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_samples_regenerate_byte_for_byte(name, tmp_path):
    made = build(samples.SAMPLES[name], tmp_path)
    recorded = samples.recorded_checksums()
    assert made == {file: recorded[file] for file in made}


def _off_by_one_ulp(ufunc, rng):
    """``ufunc`` with each non-zero float64 result moved one ulp up or down, or kept."""

    def moved(*args, **kwargs):
        result = ufunc(*args, **kwargs)
        if isinstance(result, np.ndarray) and result.dtype == np.float64:
            step = (rng.integers(0, 3, result.shape) - 1) * (result != 0)
            result = np.where(step > 0, np.nextafter(result, np.inf), result)
            result = np.where(step < 0, np.nextafter(result, -np.inf), result)
        return result

    return moved


def test_samples_do_not_depend_on_the_last_bit_of_numpys_functions(tmp_path, monkeypatch):
    """numpy's exp, log, power, cos... take AVX-512 code paths where the CPU has them, and their
    last bits differ from the C library's, which numpy calls elsewhere. A sample made with every
    such result moved by one ulp must still be the committed file, byte for byte: the market's
    discrete choices read only exact values, and the truth is not the difference of two nearly
    equal numbers. (Before, a site's category and every truth digit moved on CPUs without
    AVX-512.)"""
    assert hasattr(np, "set_numeric_ops"), "this test moves `**` through np.set_numeric_ops"
    rng = np.random.default_rng(0)
    names = ("exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "power")
    shaky = types.SimpleNamespace(**{n: getattr(np, n) for n in dir(np) if not n.startswith("__")})
    for name in names:
        setattr(shaky, name, _off_by_one_ulp(getattr(np, name), rng))
    monkeypatch.setattr(synth, "np", shaky)
    synth._market.cache_clear()  # the market is built again, with the shaky functions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        exact = np.set_numeric_ops(power=shaky.power)  # `**` on arrays
    try:
        made = build(samples.SAMPLES["course_10k"], tmp_path)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            np.set_numeric_ops(**exact)
        synth._market.cache_clear()
    assert made == {"course_10k.csv": samples.recorded_checksums()["course_10k.csv"]}


def test_sample_path_checks_the_checksum(tmp_path, monkeypatch):
    assert samples.sample_path("course_10k").endswith("course_10k.csv")
    with pytest.raises(CtrLabError, match="no sample named"):
        samples.sample_path("nope")
    copy = tmp_path / "data_samples"
    copy.mkdir()
    (copy / "README.md").write_text((samples.samples_dir() / "README.md").read_text())
    (copy / "course_10k.csv").write_text("changed\n")
    monkeypatch.setenv("CTR_LAB_DATA_SAMPLES", str(copy))
    with pytest.raises(CtrLabError, match="sha256 differs"):
        samples.sample_path("course_10k")


def test_raw_sample_loads_with_its_truth(spark):
    sample = samples.SAMPLES["avazu_raw_50k"]
    loaded = load(samples.sample_path("avazu_raw_50k"), spark)
    report = loaded.report
    assert (report.format, report.rows_read, report.rows_rejected) == ("raw", sample.rows, 0)
    assert abs(report.click_rate - 0.17) < 0.01
    truth_df = read_truth(str(samples.samples_dir() / sample.truth_file), spark)
    joined = loaded.df.join(truth_df, on="id", how="inner").select("label", "p_click")
    assert joined.count() == sample.rows
    bayes = log_loss_of(joined, "label", "p_click")
    constant = log_loss_of(joined.selectExpr("label", f"{report.click_rate} AS p"), "label", "p")
    assert bayes < constant


def test_course_sample_loads_with_damage_accounted_for(spark):
    report = load(samples.sample_path("course_10k"), spark).report
    assert (report.format, report.rows_read, report.rows_accepted) == ("course", 10_000, 10_000)
    assert sum(report.ids_repaired.values()) > 0
    assert sum(report.ids_unrepairable.values()) > 0
