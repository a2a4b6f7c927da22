"""Synthetic Avazu-like click logs whose true click probability is known.

The generator imitates the Kaggle Avazu ``train`` file (see ``avazu_facts.md``) closely enough
for a student to practise on it, and it records the probability each click was drawn from, so
a model's log loss can be compared with the best achievable (Bayes-optimal) one.

How the data are made
---------------------
*One fixed market, many samples.* A fixed synthetic "market" (publishers, apps, creatives,
campaigns, advertisers, device models, IP addresses, devices) is built once per process from a
constant seed. Vocabularies have the full-data sizes of the facts, with the listed top values
and shares at the head and a power-law tail of pseudo-random 8-hex codes, so the number of
distinct values seen grows with the row count towards the full-data cardinalities. The
``seed`` argument only chooses the sample drawn from that market, and the output depends on
``(rows, seed)`` alone.

*Time.* Rows are spread over the 240 hours 14102100..14103023 with the facts' per-day totals
and hour-of-day profile (one multinomial draw), and the file is sorted by hour like the
original.

*Sessions.* Rows come in sessions: a user on one site or app, with one connection type,
receiving ``L`` impressions in one hour (``L`` is heavy-tailed, at most 40). A user is a
device_id, or, when device_id is the null hash, a person behind an IP (the key the data show
is device_ip + device_model). Users and IPs have an activity level that sets both how often
they appear and how rarely they click, so user, IP and user-hour counts are useful features.
Sampling whole sessions, rather than thinning rows, keeps user-hour counts meaningful at any
row count.

*Truth.* ``p_click = sigmoid(logit)`` with main effects fitted, when the market is built, to
the facts' per-value click rates (C1, banner_pos, device_conn_type, ad size, C18, the listed
C21 values and site/app categories), long-tailed random effects (publisher, campaign,
creative, device model, unlisted advertisers), time of day, interactions (hour-of-day x
category, banner_pos x device_type) and user effects (activity, session length, a small
personal effect). Clicks are Bernoulli draws from ``p_click``.

Structural rules that hold exactly on every row: app-vs-site exclusivity with the null
triples; site_id -> (site_domain, site_category) and app_id -> (app_domain, app_category)
functional; device_id -> device_model functional; C1 -> device_type (1002->0, 1010->4/5,
others->1; device_type 2, 31 rows in the real 40M, is never emitted); (C15, C16) from the ten
real ad sizes; C14 -> C17 -> C21 functional; ids unique. Two deliberate departures from the
facts follow from those rules: making site_domain a function of site_id caps the number of
site domains at the number of sites (the real file has 7,745 domains for 4,737 site ids), and
the per-value CTRs of C18 come from a 10k sample that is inconsistent with the 17% overall
rate, so C18=3 gets 0.10 instead of 0.034.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import gzip
import heapq
import math
import os
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ctr_lab.schema import (
    COURSE_COLUMNS,
    FEATURE_COLUMNS,
    HEX_COLUMNS,
    INT_COLUMNS,
    NULL_APP,
    NULL_DEVICE_ID,
    NULL_SITE,
    RAW_COLUMNS,
    TRUTH_COLUMN,
)

__all__ = [
    "BATCH_ROWS",
    "SynthReport",
    "generate_batches",
    "spreadsheet_damage",
    "write_dataset",
]

#: Rows generated per internal batch. Fixed: the output depends on ``(rows, seed)`` only.
BATCH_ROWS: int = 250_000

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[int, int], None]

# ---------------------------------------------------------------------------------------------
# Facts (counts from avazu_facts.md, 40,428,967-row train file)
# ---------------------------------------------------------------------------------------------

_FULL_ROWS = 40_428_967
_TARGET_CTR = 6_865_066 / _FULL_ROWS  # 0.16980562
_APP_SHARE = 14_596_137 / _FULL_ROWS
_DEVICE_ID_SHARE = 1.0 - 33_358_308 / _FULL_ROWS  # rows with a real device_id
_SITE_ROWS = 25_832_830
_APP_ROWS = 14_596_137
_DEVICE_ROWS = _FULL_ROWS - 33_358_308

# Day totals; the 21/28, 22/29 and 23/30 splits are the facts' unverified or 57/43 estimates.
_DAY_ROWS = {
    21: 4_122_995, 22: 5_226_748, 23: 3_870_936, 24: 3_335_302, 25: 3_363_122,
    26: 3_835_892, 27: 3_225_010, 28: 5_287_222, 29: 3_942_986, 30: 4_218_754,
}  # fmt: skip
# Hour-of-day profile of the 10k course sample.
_HOD_COUNTS = (
    208, 232, 315, 376, 468, 506, 467, 441, 535, 574, 525, 493,
    531, 623, 527, 473, 541, 496, 449, 319, 243, 234, 209, 215,
)  # fmt: skip

# value: (rows, CTR); the first entry of each table is the reference level whose CTR is
# implied by the overall rate.
_C1 = {
    1005: (37_140_632, None), 1002: (2_220_812, 0.2107), 1010: (903_457, 0.0952),
    1012: (113_512, 0.1725), 1007: (35_304, 0.0394), 1001: (9_463, 0.0334),
    1008: (5_787, 0.1217),
}  # fmt: skip
_TYPE4_SHARE_OF_1010 = 774_272 / 903_457
_BANNER_POS = {
    0: (29_109_590, None), 1: (11_247_282, 0.1836), 7: (43_577, 0.3201), 2: (13_001, 0.1192),
    4: (7_704, 0.1854), 5: (5_778, 0.1215), 3: (2_035, 0.1828),
}  # fmt: skip
_CONN_TYPE = {
    0: (34_886_838, None), 2: (3_317_443, 0.1353), 3: (2_181_796, 0.0440), 5: (42_890, 0.0296),
}  # fmt: skip
# (C15, C16): rows from the C15/C16 marginals; CTRs other than 300x250 are our choice.
_AD_SIZES = {
    (320, 50): (37_605_594, None), (300, 250): (1_806_334, 0.37), (300, 50): (530_960, 0.12),
    (216, 36): (298_794, 0.06), (320, 480): (103_365, 0.40), (728, 90): (74_533, 0.09),
    (120, 20): (3_069, 0.05), (1024, 768): (2_560, 0.28), (480, 320): (2_137, 0.25),
    (768, 1024): (1_621, 0.24),
}  # fmt: skip
# C18: (share, CTR) from the 10k sample, except C18=3, whose 0.034 would put the overall rate
# near 0.12; 0.10 keeps it at 0.17.
_C18 = {0: (0.42, None), 1: (0.07, 0.13), 2: (0.17, 0.27), 3: (0.34, 0.10)}
_C21_LISTED = {
    23: (8_896_205, 0.2129), 32: (1_783_343, 0.2303), 33: (1_497_559, 0.3939),
    15: (766_986, 0.2109), 13: (384_314, 0.2126), 16: (347_178, 0.2595),
    17: (166_268, 0.0908), 35: (46_707, 0.2845), 20: (13_365, 0.0901), 1: (3_027, 0.1374),
}  # fmt: skip
_C19_HEAD = {35: 0.30, 39: 0.21, 167: 0.08, 161: 0.04, 47: 0.04}
_C20_NULL_SHARE = 0.467

# Publishers. Rows are counts among site (resp. app) rows; the null value's real-entity part is
# its total minus the null rows. Head entity -> domain/category links are our reading of
# matching counts (e.g. 1fbe01fe and f3845767 both 6,486,150).
_SITE_HEAD = {
    "1fbe01fe": 6_486_150, "e151e245": 2_637_747, "d9750ee7": 963_745, "5b08c53b": 913_325,
    "5b4d2eda": 771_360, "856e6d3f": 765_891, "a7853007": 461_311, "b7e9786d": 369_099,
}  # fmt: skip
_SITE_DOMAIN_HEAD = {
    "f3845767": 6_486_150, "7e091613": 3_325_008, "7687a86e": 1_290_165,
    "98572c79": 996_816, "16a36ef3": 855_686, "58a89a43": 765_891, "9d54950b": 375_891,
    NULL_SITE["site_domain"]: 15_131_739 - 14_596_137,
}  # fmt: skip
_SITE_CATEGORY_HEAD = {
    NULL_SITE["site_category"]: 16_537_234 - 14_596_137, "f028772b": 12_657_073,
    "28905ebd": 7_377_208, "3e814130": 3_050_306, "f66779e6": 252_451, "75fa27f6": 160_985,
    "335d28a8": 136_463, "76b2941d": 104_754, "c0dd3be3": 42_090,
}  # fmt: skip
_SITE_LINKS = {  # site -> (domain, category)
    "1fbe01fe": ("f3845767", "f028772b"), "e151e245": ("7e091613", "f028772b"),
    "d9750ee7": ("98572c79", "28905ebd"), "5b08c53b": ("7687a86e", "3e814130"),
    "5b4d2eda": ("16a36ef3", "f028772b"), "856e6d3f": ("58a89a43", "f028772b"),
    "a7853007": ("7e091613", "28905ebd"), "b7e9786d": ("9d54950b", "f028772b"),
}  # fmt: skip
_APP_HEAD = {
    "92f5800b": 1_555_283, "e2fcccd2": 1_129_016, "febd1138": 759_098, "9c13b419": 757_812,
    "7358e05e": 615_635,
}  # fmt: skip
_APP_DOMAIN_HEAD = {
    NULL_APP["app_domain"]: 27_237_087 - 25_832_830, "2347f47a": 5_240_885,
    "ae637522": 1_881_838, "5c5a694b": 1_129_228, "82e27996": 759_125, "d9b5648e": 713_924,
}  # fmt: skip
_APP_CATEGORY_HEAD = {
    NULL_APP["app_category"]: 26_165_592 - 25_832_830, "0f2161f8": 9_561_058,
    "cef3e649": 1_731_545, "8ded1f7a": 1_467_257, "f95efa07": 1_141_673,
}  # fmt: skip
_APP_LINKS = {
    "92f5800b": ("ae637522", "0f2161f8"), "e2fcccd2": ("5c5a694b", "0f2161f8"),
    "febd1138": ("82e27996", "0f2161f8"), "9c13b419": ("2347f47a", "0f2161f8"),
    "7358e05e": ("2347f47a", "cef3e649"),
}  # fmt: skip
# Category click rates ("app/site categories 0.05-0.27"); values not listed get random ones
# around the reference category (None), whose rate follows from the overall one.
_SITE_CATEGORY_CTR: Dict[str, Optional[float]] = {
    NULL_SITE["site_category"]: 0.13, "f028772b": None, "28905ebd": 0.17, "3e814130": 0.27,
    "f66779e6": 0.06, "75fa27f6": 0.11, "335d28a8": 0.09, "76b2941d": 0.05, "c0dd3be3": 0.12,
}  # fmt: skip
_APP_CATEGORY_CTR: Dict[str, Optional[float]] = {
    NULL_APP["app_category"]: 0.20, "0f2161f8": 0.15, "cef3e649": 0.10, "8ded1f7a": 0.05,
    "f95efa07": 0.25,
}  # fmt: skip
_MODEL_HEAD = {
    "8a4875bd": 2_455_470, "1f0bc64f": 1_424_546, "d787e91b": 1_405_169, "76dc4769": 767_961,
    "be6db1d7": 742_913, "a0f5f879": 652_751,
}  # fmt: skip
_DEVICE_HEAD = {
    "0f7c61dc": 21_356, "c357dbff": 19_667, "936e92fb": 13_712, "afeffc18": 9_654,
    "987552d1": 4_187, "28dc8687": 4_101,
}  # fmt: skip
_IP_HEAD = {
    "6b9769f2": 208_701, "431b3174": 135_322, "2f323f36": 88_499, "af9205f9": 87_844,
    "930ec31d": 86_996, "af62faf4": 85_802, "009a7861": 85_382,
}  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Model constants
# ---------------------------------------------------------------------------------------------

_WORLD_SEED = 20141021
_SESSION_ALPHA = 1.7  # P(L >= l) = l ** -alpha
_SESSION_CAP = 40
_MEAN_SESSION = float(np.sum(np.arange(1, _SESSION_CAP + 1, dtype=float) ** -_SESSION_ALPHA))
_SESSIONS_FULL = _FULL_ROWS / _MEAN_SESSION  # sessions in a full-size data set
_ROAM_SHARE = 0.25  # device_id sessions away from the device's home IP
_PEOPLE_PER_SHARE = 2.0e5  # people behind an IP = 1 + share * this
_SLOT_LOYALTY = 0.9  # rows whose banner_pos / C18 is the publisher's usual one

# Power-law tails (size, exponent a, offset q) fitted offline so that the expected number of
# distinct values in a 40,428,967-row data set matches the facts' cardinality.
_SITE_TAIL = (5_200, 2.9917, 94.6157)
_APP_TAIL = (12_000, 2.2066, 26.2922)
_MODEL_TAIL = (12_000, 2.9245, 137.4689)
_DEVICE_TAIL = (20_000_000, 0.6630, 4.3955)
_IP_TAIL = (30_000_000, 0.9107, 23.1132)
_CREATIVE_TAIL = (3_300, 3.6510, 42.3469)
_SITE_DOMAIN_TAIL = (5_200, 1.05, 8.0)  # only the size matters: see _assign_sparse
_SHARED_DOMAIN_SHARE = 0.05
_APP_DOMAIN_TAIL = (553, 1.3, 3.0)
_CATEGORY_TAIL = (1.5, 1.0)  # exponent and offset of unlisted categories
_N_CAMPAIGNS = 460
_CAMPAIGN_ZIPF = (0.9, 20.0)
_N_C21_OTHER = 50
_N_C19 = 68
_N_C20 = 171

# Effect sizes (logit scale).
_SD_PUBLISHER = 0.40
_SD_CAMPAIGN = 0.30
_SD_CREATIVE = 0.20
_SD_MODEL = 0.20
_SD_ADVERTISER = 0.40
_SD_CATEGORY = 0.35
_SD_C19 = 0.15
_SD_C20 = 0.12
_SD_HOUR_X_CATEGORY = 0.30
_SD_USER = 0.25
_HOD_AMPLITUDE = 0.10
_BETA_ACTIVITY = 0.20  # per decade of a user's expected full-data sessions
_BETA_IP_LOAD = 0.08  # per decade of an IP's expected full-data sessions
_BETA_SESSION = 0.25  # per doubling of the session length
_BANNER_X_TYPE = {(1, 0): -0.35, (1, 4): -0.30, (1, 5): -0.30, (0, 0): 0.20, (7, 1): 0.25}
_CALIBRATION_ROWS = 300_000

_DEVICE_TYPES = (0, 1, 2, 4, 5)
_SIZES = tuple(_AD_SIZES)

_U32 = np.uint32
_U64 = np.uint64


# ---------------------------------------------------------------------------------------------
# Hashing and hex codes
# ---------------------------------------------------------------------------------------------


def _fmix32(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser: a bijection on uint32, so distinct inputs stay distinct."""
    x = x.astype(_U32, copy=True)
    x ^= x >> _U32(16)
    x *= _U32(0x85EBCA6B)
    x ^= x >> _U32(13)
    x *= _U32(0xC2B2AE35)
    x ^= x >> _U32(16)
    return x


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection on uint64."""
    x = x.astype(_U64, copy=True)
    x ^= x >> _U64(30)
    x *= _U64(0xBF58476D1CE4E5B9)
    x ^= x >> _U64(27)
    x *= _U64(0x94D049BB133111EB)
    x ^= x >> _U64(31)
    return x


def _hash_unit(key: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) numbers that are a fixed function of ``key``."""
    h = _mix64(key ^ _U64(salt))
    return (h >> _U64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _hash_normal(key: np.ndarray, salt: int) -> np.ndarray:
    """Standard normal numbers that are a fixed function of ``key`` (Box-Muller)."""
    u1 = _hash_unit(key, salt)
    u2 = _hash_unit(key, salt ^ 0x5BD1E995)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def _hex_code(text: str) -> int:
    if not re.fullmatch(r"[0-9a-f]{8}", text):
        raise ValueError(f"not an 8-character lowercase hex id: {text!r}")
    return int(text, 16)


def _listed_hex_codes() -> np.ndarray:
    """Every hex value named in the facts: generated tail codes must avoid all of them."""
    named = set(NULL_SITE.values()) | set(NULL_APP.values()) | {NULL_DEVICE_ID}
    for table in (
        _SITE_HEAD, _SITE_DOMAIN_HEAD, _SITE_CATEGORY_HEAD, _APP_HEAD, _APP_DOMAIN_HEAD,
        _APP_CATEGORY_HEAD, _MODEL_HEAD, _DEVICE_HEAD, _IP_HEAD,
    ):  # fmt: skip
        named.update(table)
    return np.array(sorted(_hex_code(v) for v in named), dtype=_U32)


_RESERVED = _listed_hex_codes()
_SPARE_RANK = 1 << 31  # ranks at and above this stand in for codes that hit a reserved value


def _tail_codes(ranks: np.ndarray, salt: int) -> np.ndarray:
    """Hex codes (uint32) of tail ranks: distinct per rank, never a reserved value.

    ``fmix32(rank ^ salt)`` is a bijection, so codes never collide; a code that happens to equal
    a reserved value is replaced by the code of a spare rank above every real rank.
    """
    codes = _fmix32(ranks.astype(_U32) ^ _U32(salt))
    pos = np.minimum(np.searchsorted(_RESERVED, codes), _RESERVED.size - 1)
    hit = _RESERVED[pos] == codes
    if hit.any():
        spare = (pos[hit] + _SPARE_RANK).astype(_U32)
        codes[hit] = _fmix32(spare ^ _U32(salt))
    return codes


def _check_spare_codes(salt: int) -> None:
    spare = _fmix32((np.arange(_RESERVED.size) + _SPARE_RANK).astype(_U32) ^ _U32(salt))
    if np.isin(spare, _RESERVED).any():  # pragma: no cover - fixed salts are checked here
        raise AssertionError(f"salt {salt:#x} maps a spare rank onto a reserved hex value")


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE_SHIFTS = np.arange(28, -1, -4, dtype=_U32)


def _hex_bytes(codes: np.ndarray) -> np.ndarray:
    """uint32 codes -> (n, 8) uint8 ASCII of their 8-character lowercase hex form."""
    return _HEX_DIGITS[(codes.astype(_U32)[:, None] >> _NIBBLE_SHIFTS) & _U32(15)]


def _hex_strings(codes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(_hex_bytes(codes)).view("S8").ravel().astype("U8")


# ---------------------------------------------------------------------------------------------
# Distributions
# ---------------------------------------------------------------------------------------------


def _libm(fn: Callable[[float], float], x: np.ndarray) -> np.ndarray:
    """``fn`` (a :mod:`math` function) of each value of ``x``: the C library's result.

    numpy's ufuncs (``np.log1p``, ``**`` and others) take AVX-512 code paths on CPUs that have
    them, whose last bits differ from the C library's, which numpy calls on other CPUs. The
    market's tables feed discrete choices (``_assign_parents`` gives each site its category by
    comparing masses), where one last bit can move a site to another category. Computed here,
    the market and the samples in data_samples/ are the same on every x86-64 CPU.
    """
    return np.fromiter(map(fn, x.tolist()), dtype=np.float64, count=x.size)


def _zipf_cdf(x: np.ndarray, size: int, a: float, q: float) -> np.ndarray:
    """CDF at ``x`` of the continuous law with density proportional to ``(x + q) ** -a`` on
    ``[0, size)``; rank ``r`` gets the mass between ``r`` and ``r + 1``. By the C library
    (:func:`_libm`): the market's tables are made from it."""
    if abs(a - 1.0) < 1e-9:
        return _libm(math.log1p, x / q) / math.log1p(size / q)
    top = q ** (1.0 - a)
    powers = _libm(lambda v: v ** (1.0 - a), x + q)
    return (top - powers) / (top - (size + q) ** (1.0 - a))


def _zipf_probs(size: int, a: float, q: float) -> np.ndarray:
    """The mass of each rank of a table (the market's vocabularies), the same on any CPU."""
    return np.diff(_zipf_cdf(np.arange(size + 1, dtype=np.float64), size, a, q))


def _cdf(weights: np.ndarray) -> np.ndarray:
    """Cumulative distribution for ``np.searchsorted(cdf, u, "right")`` with ``u`` in [0, 1)."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cdf /= cdf[-1]
    cdf[-1] = np.inf
    return cdf


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.searchsorted(cdf, u, side="right")


class _PowerLaw:
    """Listed head values with their shares, then a power-law tail too large to tabulate.

    Ranks ``0..len(head)-1`` are the head; rank ``len(head) + r`` is tail rank ``r``.
    """

    def __init__(
        self, head: Dict[str, int], total: int, tail: Tuple[int, float, float], salt: int
    ) -> None:
        self.head_codes = np.array([_hex_code(h) for h in head], dtype=_U32)
        self.head_share = np.array(list(head.values()), dtype=np.float64) / total
        self.head_cdf = np.cumsum(self.head_share)
        self.head_mass = float(self.head_cdf[-1])
        self.size, self.a, self.q = tail
        self.salt = salt
        if abs(self.a - 1.0) < 1e-9:
            raise ValueError("power-law tails need an exponent other than 1")
        self._top = self.q ** (1.0 - self.a)
        self._span = self._top - (self.size + self.q) ** (1.0 - self.a)

    def sample(self, u: np.ndarray) -> np.ndarray:
        n_head = self.head_codes.size
        head_rank = np.searchsorted(self.head_cdf, u, side="right")
        v = np.clip((u - self.head_mass) / (1.0 - self.head_mass), 0.0, 1.0)
        x = (self._top - v * self._span) ** (1.0 / (1.0 - self.a)) - self.q
        tail_rank = np.clip(np.floor(x), 0, self.size - 1).astype(np.int64)
        return np.where(head_rank < n_head, head_rank, n_head + tail_rank)

    def share(self, rank: np.ndarray) -> np.ndarray:
        """The share of rows of each rank. A tail rank's mass, ``cdf(r + 1) - cdf(r)``, is
        computed without that difference: for ranks in the millions the two values agree to
        seven digits, and the difference would keep only the rest."""
        n_head = self.head_codes.size
        x = np.maximum(rank - n_head, 0).astype(np.float64) + self.q
        b = 1.0 - self.a
        tail = (1.0 - self.head_mass) * (x**b * -np.expm1(b * np.log1p(1.0 / x)) / self._span)
        head = self.head_share[np.minimum(rank, n_head - 1)]
        return np.where(rank < n_head, head, tail)

    def codes(self, rank: np.ndarray) -> np.ndarray:
        n_head = self.head_codes.size
        tail = _tail_codes(np.maximum(rank - n_head, 0), self.salt)
        return np.where(rank < n_head, self.head_codes[np.minimum(rank, n_head - 1)], tail)


def _assign_parents(
    child_mass: np.ndarray,
    parent_mass: np.ndarray,
    fixed: Optional[Dict[int, int]] = None,
) -> np.ndarray:
    """Give each child one parent so parents' summed child mass tracks their target mass.

    Used to make hierarchies (site -> domain, creative -> campaign -> advertiser, ...) that are
    functional and still reproduce the facts' value shares. First every parent, smallest target
    first, gets the largest free child that fits in its target (so rare values still exist);
    then the other children, largest first, go to the parent with the largest remaining
    deficit.
    """
    child_mass = np.asarray(child_mass, dtype=np.float64)
    deficit = np.asarray(parent_mass, dtype=np.float64)
    deficit = deficit * (child_mass.sum() / deficit.sum())
    parent = np.full(child_mass.size, -1, dtype=np.int64)
    for child, par in (fixed or {}).items():
        parent[child] = par
        deficit[par] -= child_mass[child]
    free = [int(c) for c in np.argsort(child_mass, kind="stable") if parent[c] < 0]
    free_mass = [float(child_mass[c]) for c in free]
    for par in np.argsort(deficit, kind="stable"):
        if not free or deficit[par] <= 0:
            continue
        best = bisect.bisect_right(free_mass, deficit[par]) - 1  # the largest child that fits
        if best < 0:
            continue
        child = free.pop(best)
        free_mass.pop(best)
        parent[child] = par
        deficit[par] -= child_mass[child]
    heap = [(-float(d), i) for i, d in enumerate(deficit)]
    heapq.heapify(heap)
    for child in reversed(free):
        _, par = heapq.heappop(heap)
        parent[child] = par
        deficit[par] -= child_mass[child]
        heapq.heappush(heap, (-float(deficit[par]), par))
    return parent


def _assign_sparse(
    rng: np.random.Generator,
    child_mass: np.ndarray,
    head_mass: np.ndarray,
    fixed: Dict[int, int],
    n_parents: int,
) -> np.ndarray:
    """Parents for children when most children should have a parent of their own.

    Listed (head) parents get their fixed children, then the largest other children that fit
    in their remaining target mass; every other child takes a new tail parent, except that
    one in ``_SHARED_DOMAIN_SHARE`` shares an earlier child's tail parent. Used for
    site -> site_domain, where the facts have more domains than sites.
    """
    child_mass = np.asarray(child_mass, dtype=np.float64)
    n_head = head_mass.size
    deficit = np.asarray(head_mass, dtype=np.float64).copy()
    parent = np.full(child_mass.size, -1, dtype=np.int64)
    for child, par in fixed.items():
        parent[child] = par
        deficit[par] -= child_mass[child]
    for child in np.argsort(-child_mass, kind="stable"):
        if parent[child] >= 0:
            continue
        par = int(np.argmax(deficit))
        if deficit[par] >= child_mass[child]:
            parent[child] = par
            deficit[par] -= child_mass[child]
    rest = np.flatnonzero(parent < 0)
    rest = rest[np.argsort(-child_mass[rest], kind="stable")]
    shared = rng.random(rest.size) < _SHARED_DOMAIN_SHARE
    next_parent = n_head
    for i, child in enumerate(rest):
        if shared[i] and next_parent > n_head:
            parent[child] = rng.integers(n_head, next_parent)
        else:
            parent[child] = min(next_parent, n_parents - 1)
            next_parent += 1
    return parent


def _heavy(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Long-tailed random effects: Student t with 3 degrees of freedom, clipped at 4 sd."""
    t = rng.standard_t(3, size) / math.sqrt(3.0)
    return scale * np.clip(t, -4.0, 4.0)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1.0 - p))


def _distinct_ints(
    rng: np.random.Generator, lo: int, hi: int, count: int, keep: Sequence[int] = ()
) -> np.ndarray:
    """``count`` distinct integers in ``[lo, hi]`` including ``keep``, ``lo`` and ``hi``."""
    fixed = list(dict.fromkeys([*keep, lo, hi]))
    pool = np.setdiff1d(np.arange(lo, hi + 1), fixed)
    extra = rng.choice(pool, size=count - len(fixed), replace=False)
    return np.concatenate([np.array(fixed, dtype=np.int64), extra.astype(np.int64)])


# ---------------------------------------------------------------------------------------------
# The market
# ---------------------------------------------------------------------------------------------

_SALT_COLUMNS: Tuple[str, ...] = ("site", "site_domain", "site_category", "app", "app_domain")
_SALT_COLUMNS += ("app_category", "model", "device", "ip")
_SALT = {name: (0x1F3D5B79 * (i + 1)) & 0xFFFFFFFF for i, name in enumerate(_SALT_COLUMNS)}
_KEY_SALT = {"home": 11, "model": 12, "c1": 13, "type": 14, "c20": 15, "user": 16}
_DEVICE_KEY_FLAG = _U64(1 << 62)


class _Market:
    """Every fixed table of the synthetic market (built once per process, see ``_market``)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(_WORLD_SEED)
        for salt in _SALT.values():
            _check_spare_codes(salt)
        self._build_time(rng)
        self._build_publishers(rng)
        self._build_users(rng)
        self._build_ads(rng)
        self._build_effects(rng)
        self._fit_effects()

    # -- time ----------------------------------------------------------------------------------
    def _build_time(self, rng: np.random.Generator) -> None:
        days = np.arange(21, 31)
        hods = np.arange(24)
        self.hour_day = np.repeat(days, 24)
        self.hour_hod = np.tile(hods, 10)
        self.hour_dow = (self.hour_day - 21 + 1) % 7  # 2014-10-21 was a Tuesday (Monday=0)
        self.hour_value = 14_100_000 + self.hour_day * 100 + self.hour_hod
        hod_share = np.array(_HOD_COUNTS, dtype=np.float64) / sum(_HOD_COUNTS)
        day_rows = np.array([_DAY_ROWS[d] for d in days], dtype=np.float64)
        self.hour_weight = (day_rows[:, None] * hod_share[None, :]).ravel() / _FULL_ROWS
        self.hour_weight /= self.hour_weight.sum()

    # -- publishers ----------------------------------------------------------------------------
    def _build_publishers(self, rng: np.random.Generator) -> None:
        site = self._entities(_SITE_HEAD, _SITE_ROWS, _SITE_TAIL, _SALT["site"])
        app = self._entities(_APP_HEAD, _APP_ROWS, _APP_TAIL, _SALT["app"])
        # Parent vocabularies (domains, categories) with their target row shares.
        site_dom = self._entities(
            _SITE_DOMAIN_HEAD, _SITE_ROWS, _SITE_DOMAIN_TAIL, _SALT["site_domain"]
        )
        app_dom = self._entities(_APP_DOMAIN_HEAD, _APP_ROWS, _APP_DOMAIN_TAIL, _SALT["app_domain"])
        site_cat = self._entities(
            _SITE_CATEGORY_HEAD, _SITE_ROWS, (26 - 9, *_CATEGORY_TAIL), _SALT["site_category"]
        )
        app_cat = self._entities(
            _APP_CATEGORY_HEAD, _APP_ROWS, (36 - 5, *_CATEGORY_TAIL), _SALT["app_category"]
        )

        def link(ents, doms, cats, links, sparse_domains):
            """Domain and category index of every entity (functional by construction)."""
            codes = list(ents[0])
            dom_idx = {c: i for i, c in enumerate(doms[0])}
            cat_idx = {c: i for i, c in enumerate(cats[0])}
            fixed_dom, fixed_cat = {}, {}
            for name, (dom, cat) in links.items():
                child = codes.index(_hex_code(name))
                fixed_dom[child] = dom_idx[_hex_code(dom)]
                fixed_cat[child] = cat_idx[_hex_code(cat)]
            if sparse_domains:
                n_head = len(_SITE_DOMAIN_HEAD)
                dom_of = _assign_sparse(rng, ents[1], doms[1][:n_head], fixed_dom, doms[0].size)
            else:
                dom_of = _assign_parents(ents[1], doms[1], fixed_dom)
            return dom_of, _assign_parents(ents[1], cats[1], fixed_cat)

        site_dom_of, site_cat_of = link(site, site_dom, site_cat, _SITE_LINKS, True)
        app_dom_of, app_cat_of = link(app, app_dom, app_cat, _APP_LINKS, False)

        n_site, n_app = site[0].size, app[0].size
        self.n_sites = n_site
        self.site_cdf = _cdf(site[1])
        self.app_cdf = _cdf(app[1])

        def column(own: np.ndarray, null: str, real_first: bool) -> np.ndarray:
            pad = np.full(n_app if real_first else n_site, _hex_code(null), dtype=_U32)
            return np.concatenate([own, pad] if real_first else [pad, own])

        # Per-publisher hex codes: sites first, then apps; each row takes all six from here.
        self.pub_hex = {
            "site_id": column(site[0], NULL_SITE["site_id"], True),
            "site_domain": column(site_dom[0][site_dom_of], NULL_SITE["site_domain"], True),
            "site_category": column(site_cat[0][site_cat_of], NULL_SITE["site_category"], True),
            "app_id": column(app[0], NULL_APP["app_id"], False),
            "app_domain": column(app_dom[0][app_dom_of], NULL_APP["app_domain"], False),
            "app_category": column(app_cat[0][app_cat_of], NULL_APP["app_category"], False),
        }
        # Publisher category in one index space: site categories, then app categories.
        self.category_codes = np.concatenate([site_cat[0], app_cat[0]])
        self.n_site_categories = site_cat[0].size
        self.pub_category = np.concatenate([site_cat_of, site_cat[0].size + app_cat_of])
        self.pub_mass = np.concatenate([(1 - _APP_SHARE) * site[1], _APP_SHARE * app[1]])
        self.pub_effect = _heavy(rng, n_site + n_app, _SD_PUBLISHER)

        bp_values = np.array(list(_BANNER_POS))
        bp_rows = np.array([v[0] for v in _BANNER_POS.values()], dtype=np.float64)
        self.bp_values = bp_values
        self.bp_cdf = _cdf(bp_rows)
        self.pub_bp = _assign_parents(self.pub_mass, bp_rows)
        c18_share = np.array([v[0] for v in _C18.values()])
        self.c18_cdf = _cdf(c18_share)
        self.pub_c18 = _assign_parents(self.pub_mass, c18_share)

    @staticmethod
    def _entities(head: Dict[str, int], total: int, tail: Tuple[int, float, float], salt: int):
        """(codes, probabilities) of a tabulated vocabulary: listed head, then power-law tail."""
        size, a, q = tail
        head_p = np.array(list(head.values()), dtype=np.float64) / total
        probs = np.concatenate([head_p, (1.0 - head_p.sum()) * _zipf_probs(size, a, q)])
        codes = np.concatenate([
            np.array([_hex_code(h) for h in head], dtype=_U32),
            _tail_codes(np.arange(size), salt),
        ])  # fmt: skip
        return codes, probs

    # -- users ---------------------------------------------------------------------------------
    def _build_users(self, rng: np.random.Generator) -> None:
        model_codes, model_p = self._entities(_MODEL_HEAD, _FULL_ROWS, _MODEL_TAIL, _SALT["model"])
        self.model_codes = model_codes
        self.model_cdf = _cdf(model_p)
        self.model_effect = _heavy(rng, model_codes.size, _SD_MODEL)
        self.device = _PowerLaw(_DEVICE_HEAD, _DEVICE_ROWS, _DEVICE_TAIL, _SALT["device"])
        self.ip = _PowerLaw(_IP_HEAD, _FULL_ROWS, _IP_TAIL, _SALT["ip"])

        c1_rows = np.array([v[0] for v in _C1.values()], dtype=np.float64)
        self.c1_values = np.array(list(_C1))
        self.c1_cdf = _cdf(c1_rows)
        dtype_of = {1002: 0, 1010: 4}
        self.c1_type = np.array(
            [_DEVICE_TYPES.index(dtype_of.get(v, 1)) for v in self.c1_values], dtype=np.int64
        )
        self.c1_is_1010 = self.c1_values == 1010
        self.type_values = np.array(_DEVICE_TYPES)

        conn_rows = np.array([v[0] for v in _CONN_TYPE.values()], dtype=np.float64)
        self.conn_values = np.array(list(_CONN_TYPE))
        self.conn_cdf = _cdf(conn_rows)

        c20_values = _distinct_ints(rng, 100_000, 100_248, _N_C20)
        rng.shuffle(c20_values)
        self.c20_values = np.concatenate([[-1], c20_values])
        c20_p = (1 - _C20_NULL_SHARE) * _zipf_probs(_N_C20, 1.2, 3.0)
        self.c20_cdf = _cdf(np.concatenate([[_C20_NULL_SHARE], c20_p]))

    # -- ads -----------------------------------------------------------------------------------
    def _build_ads(self, rng: np.random.Generator) -> None:
        size, a, q = _CREATIVE_TAIL
        creative_p = _zipf_probs(size, a, q)
        self.c14_values = _distinct_ints(rng, 375, 24_052, size)
        rng.shuffle(self.c14_values)
        # Channel affinity: some creatives run on sites only, some on apps only, some on both.
        kind = rng.random(size)
        app_affinity = np.where(
            kind < 0.4, 0.03, np.where(kind < 0.65, 0.97, rng.uniform(0.2, 0.8, size))
        )
        site_w = creative_p * (1.0 - app_affinity)
        app_w = creative_p * app_affinity
        self.c14_cdf_site = _cdf(site_w)
        self.c14_cdf_app = _cdf(app_w)
        creative_mass = (1 - _APP_SHARE) * site_w / site_w.sum() + _APP_SHARE * app_w / app_w.sum()

        # Advertisers: the ten listed C21 values, then others up to 253 (the course sample's max).
        pool = np.setdiff1d(np.arange(2, 253), list(_C21_LISTED))
        c21_other = np.append(rng.choice(pool, _N_C21_OTHER - 1, replace=False), 253)
        rng.shuffle(c21_other)
        listed_rows = np.array([v[0] for v in _C21_LISTED.values()], dtype=np.float64)
        other_mass = _FULL_ROWS - listed_rows.sum()
        c21_mass = np.concatenate([listed_rows, other_mass * _zipf_probs(_N_C21_OTHER, 1.4, 2.0)])
        self.c21_values = np.concatenate([np.array(list(_C21_LISTED)), c21_other])

        self.c17_values = _distinct_ints(rng, 112, 2758, _N_CAMPAIGNS)
        rng.shuffle(self.c17_values)
        # Creatives join campaigns at random (big campaigns are likelier), so the campaigns seen
        # grow with the data like the creatives do.
        campaign_cdf = _cdf(_zipf_probs(_N_CAMPAIGNS, *_CAMPAIGN_ZIPF))
        self.c14_c17 = _draw(campaign_cdf, rng.random(size))
        # Campaigns go to advertisers by the mass their creatives actually carry.
        c17_mass = np.bincount(self.c14_c17, weights=creative_mass, minlength=_N_CAMPAIGNS)
        self.c14_c21 = _assign_parents(c17_mass, c21_mass)[self.c14_c17]

        size_rows = np.array([v[0] for v in _AD_SIZES.values()], dtype=np.float64)
        self.c14_size = _assign_parents(creative_mass, size_rows)
        self.size_c15 = np.array([s[0] for s in _SIZES])
        self.size_c16 = np.array([s[1] for s in _SIZES])

        c19_values = _distinct_ints(rng, 33, 1959, _N_C19, keep=list(_C19_HEAD))
        head = np.array(list(_C19_HEAD.values()))
        tail_n = _N_C19 - head.size
        c19_mass = np.concatenate([head, (1 - head.sum()) * _zipf_probs(tail_n, 1.2, 2.0)])
        self.c19_values = c19_values
        self.c14_c19 = _assign_parents(creative_mass, c19_mass)

    # -- effects -------------------------------------------------------------------------------
    def _build_effects(self, rng: np.random.Generator) -> None:
        self.campaign_effect = _heavy(rng, self.c17_values.size, _SD_CAMPAIGN)
        self.creative_effect = _SD_CREATIVE * rng.standard_normal(self.c14_values.size)
        self.c19_effect = _SD_C19 * rng.standard_normal(self.c19_values.size)
        self.c20_effect = _SD_C20 * rng.standard_normal(self.c20_values.size)
        n_cat = self.category_codes.size
        phase = rng.uniform(0, 24, n_cat)
        amp = _SD_HOUR_X_CATEGORY * rng.standard_normal(n_cat)
        hods = np.arange(24)
        self.hour_x_category = amp[:, None] * np.cos(
            2 * np.pi * (hods[None, :] - phase[:, None]) / 24
        )
        self.hod_effect = _HOD_AMPLITUDE * np.sin(2 * np.pi * (hods - 3) / 24)
        self.dow_effect = 0.04 * rng.standard_normal(7)
        self.banner_x_type = np.zeros((self.bp_values.size, len(_DEVICE_TYPES)))
        for (bp, dt), eff in _BANNER_X_TYPE.items():
            self.banner_x_type[list(self.bp_values).index(bp), _DEVICE_TYPES.index(dt)] = eff

        # Fitted main effects: start from the facts' log-odds ratios (or random effects for
        # values without a listed rate); ``_fit_effects`` then matches the listed rates.
        base = math.log(_TARGET_CTR / (1.0 - _TARGET_CTR))

        def table(rates: Sequence[Optional[float]], sd: float) -> Tuple[np.ndarray, np.ndarray]:
            target = np.array([np.nan if r is None else r for r in rates], dtype=np.float64)
            log_odds = _logit(np.nan_to_num(target, nan=0.5)) - base
            start = np.where(np.isnan(target), sd * rng.standard_normal(target.size), log_odds)
            return start, target

        cat_rates: List[Optional[float]] = []
        for code in self.category_codes[: self.n_site_categories]:
            cat_rates.append(_SITE_CATEGORY_CTR.get(f"{code:08x}"))
        for code in self.category_codes[self.n_site_categories :]:
            cat_rates.append(_APP_CATEGORY_CTR.get(f"{code:08x}"))
        c21_rates = [v[1] for v in _C21_LISTED.values()] + [None] * (self.c21_values.size - 10)
        specs = {
            "C1": ([v[1] for v in _C1.values()], 0.0),
            "banner_pos": ([v[1] for v in _BANNER_POS.values()], 0.0),
            "device_conn_type": ([v[1] for v in _CONN_TYPE.values()], 0.0),
            "size": ([v[1] for v in _AD_SIZES.values()], 0.0),
            "C18": ([v[1] for v in _C18.values()], 0.0),
            "C21": (c21_rates, _SD_ADVERTISER),
            "category": (cat_rates, _SD_CATEGORY),
        }
        self.effects: Dict[str, np.ndarray] = {}
        self.effect_targets: Dict[str, np.ndarray] = {}
        for name, (rates, sd) in specs.items():
            self.effects[name], self.effect_targets[name] = table(rates, sd)
        self.intercept = 0.0

    def _fit_effects(self) -> None:
        """Fit the listed main effects and the intercept on a fixed calibration sample.

        Solves, by Newton's method, for effects such that the sample's mean true probability
        per listed value equals the facts' rate and the overall mean equals 0.1698 (a logistic
        regression of the target rates on indicator columns). The reference level of each
        fully listed factor stays at zero; its rate follows from the overall one.
        """
        rng = np.random.default_rng([_WORLD_SEED, 1])
        counts = rng.multinomial(_CALIBRATION_ROWS, self.hour_weight)
        rows = _simulate(self, rng, np.repeat(np.arange(240), counts))
        n = rows["fixed"].size
        eta = rows["fixed"] + self.intercept
        # One parameter per fitted level (column of ``params``), parameter 0 the intercept.
        names: List[Tuple[str, int]] = [("intercept", 0)]
        columns = [np.zeros(n, dtype=np.int64)]
        targets = [_TARGET_CTR * n]
        for name, idx in rows["factors"].items():
            eta += self.effects[name][idx]
            rate = self.effect_targets[name]
            count = np.bincount(idx, minlength=rate.size)
            param = np.full(rate.size, -1, dtype=np.int64)
            for level in np.flatnonzero(~np.isnan(rate) & (count > 0)):
                param[level] = len(names)
                names.append((name, int(level)))
                targets.append(rate[level] * count[level])
            columns.append(param[idx])
        k = len(names)
        target = np.array(targets)
        # Rows with the same fitted levels share one Hessian pattern: aggregate them first.
        # Index k stands for "no fitted level in this column"; its row/column is dropped.
        levels = np.where(np.stack(columns, axis=1) < 0, k, np.stack(columns, axis=1))
        radix = (k + 1) ** np.arange(levels.shape[1], dtype=np.int64)  # < 2**63 for k < 200
        keys, group = np.unique(levels @ radix, return_inverse=True)
        combos = (keys[:, None] // radix) % (k + 1)
        group = group.ravel()
        pairs = [(a, b) for a in range(levels.shape[1]) for b in range(a, levels.shape[1])]
        for _ in range(5):
            p = 1.0 / (1.0 + np.exp(-eta))
            p_sum = np.bincount(group, weights=p, minlength=combos.shape[0])
            w_sum = np.bincount(group, weights=p * (1.0 - p), minlength=combos.shape[0])
            grad = np.zeros(k + 1)
            for a in range(levels.shape[1]):
                grad += np.bincount(combos[:, a], weights=p_sum, minlength=k + 1)
            hess = np.zeros((k + 1, k + 1))
            for a, b in pairs:
                cell = combos[:, a] * (k + 1) + combos[:, b]
                block = np.bincount(cell, weights=w_sum, minlength=(k + 1) ** 2)
                block = block.reshape(k + 1, k + 1)
                hess += block if a == b else block + block.T
            step = np.append(np.linalg.solve(hess[:k, :k], target - grad[:k]), 0.0)
            eta += step[levels].sum(axis=1)
            for (name, level), delta in zip(names, step[:k]):
                if name == "intercept":
                    self.intercept += float(delta)
                else:
                    self.effects[name][level] += delta


@functools.lru_cache(maxsize=1)
def _market() -> _Market:
    return _Market()


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


def _session_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Heavy-tailed session lengths (impressions per user-visit) covering at least ``n`` rows."""
    parts: List[np.ndarray] = []
    total = 0
    while total < n:
        m = int((n - total) / _MEAN_SESSION * 1.1) + 64
        u = 1.0 - rng.random(m)  # (0, 1]
        lengths = np.minimum(np.floor(u ** (-1.0 / _SESSION_ALPHA)), _SESSION_CAP)
        parts.append(lengths.astype(np.int64))
        total += int(parts[-1].sum())
    lengths = np.concatenate(parts)
    return lengths[: int(np.searchsorted(np.cumsum(lengths), n)) + 1]


def _simulate(market: _Market, rng: np.random.Generator, hour_idx: np.ndarray) -> dict:
    """Draw the rows of one batch (``hour_idx`` sorted): columns, factor indices, fixed logit."""
    m = market
    n = hour_idx.size
    lengths = _session_lengths(rng, n)
    n_sess = lengths.size
    sess_at = np.repeat(np.arange(n_sess), lengths)[:n]
    # Rows are laid out session by session, then shuffled within each hour.
    order_key = (hour_idx.astype(_U64) << _U64(32)) | rng.integers(0, 1 << 32, n, dtype=_U64)
    sess = sess_at[np.argsort(order_key, kind="stable")]

    # -- per session ---------------------------------------------------------------------------
    is_app = rng.random(n_sess) < _APP_SHARE
    u_pub = rng.random(n_sess)
    pub = np.where(is_app, m.n_sites + _draw(m.app_cdf, u_pub), _draw(m.site_cdf, u_pub))
    has_device = rng.random(n_sess) < _DEVICE_ID_SHARE
    dev_rank = m.device.sample(rng.random(n_sess))
    ip_drawn = m.ip.sample(rng.random(n_sess))
    u_person = rng.random(n_sess)
    roaming = rng.random(n_sess) < _ROAM_SHARE
    conn = _draw(m.conn_cdf, rng.random(n_sess))

    dev_key = dev_rank.astype(_U64) | _DEVICE_KEY_FLAG
    home_ip = m.ip.sample(_hash_unit(dev_key, _KEY_SALT["home"]))
    ip_share = m.ip.share(ip_drawn)
    people = 1.0 + np.floor(ip_share * _PEOPLE_PER_SHARE)
    person = np.floor(u_person * people).astype(_U64)
    key = np.where(has_device, dev_key, (ip_drawn.astype(_U64) << _U64(20)) | person)
    ip = np.where(has_device & ~roaming, home_ip, ip_drawn)

    model = _draw(m.model_cdf, _hash_unit(key, _KEY_SALT["model"]))
    c1 = _draw(m.c1_cdf, _hash_unit(key, _KEY_SALT["c1"]))
    dtype = m.c1_type[c1]
    type5 = m.c1_is_1010[c1] & (_hash_unit(key, _KEY_SALT["type"]) >= _TYPE4_SHARE_OF_1010)
    dtype = np.where(type5, _DEVICE_TYPES.index(5), dtype)
    c20 = _draw(m.c20_cdf, _hash_unit(key, _KEY_SALT["c20"]))

    # Expected sessions of this user (and IP) in a full-size data set: busy users and busy,
    # shared IPs click less. A known latent, so the truth stays exact per row.
    full_sessions = np.where(
        has_device,
        m.device.share(dev_rank) * _DEVICE_ID_SHARE * _SESSIONS_FULL,
        ip_share * (1.0 - _DEVICE_ID_SHARE) * _SESSIONS_FULL / people,
    )
    ip_load = np.log10(1.0 + m.ip.share(ip) * _SESSIONS_FULL)
    user_effect = (
        -_BETA_ACTIVITY * np.log10(1.0 + full_sessions)
        - _BETA_IP_LOAD * ip_load
        - _BETA_SESSION * np.log2(lengths)
        + _SD_USER * _hash_normal(key, _KEY_SALT["user"])
    )
    device_codes = np.where(has_device, m.device.codes(dev_rank), _U32(_hex_code(NULL_DEVICE_ID)))
    ip_codes = m.ip.codes(ip)

    # -- per row -------------------------------------------------------------------------------
    row_pub = pub[sess]
    row_app = is_app[sess]
    u = rng.random(n)
    creative = np.where(row_app, _draw(m.c14_cdf_app, u), _draw(m.c14_cdf_site, u))
    u = rng.random(n)
    bp_other = _draw(m.bp_cdf, np.clip((u - _SLOT_LOYALTY) / (1 - _SLOT_LOYALTY), 0, 1))
    bp = np.where(u < _SLOT_LOYALTY, m.pub_bp[row_pub], bp_other)
    u = rng.random(n)
    c18_other = _draw(m.c18_cdf, np.clip((u - _SLOT_LOYALTY) / (1 - _SLOT_LOYALTY), 0, 1))
    c18 = np.where(u < _SLOT_LOYALTY, m.pub_c18[row_pub], c18_other)

    row_type = dtype[sess]
    campaign = m.c14_c17[creative]
    category = m.pub_category[row_pub]
    hod = m.hour_hod[hour_idx]
    fixed = (
        m.pub_effect[row_pub]
        + m.campaign_effect[campaign]
        + m.creative_effect[creative]
        + m.model_effect[model[sess]]
        + m.c19_effect[m.c14_c19[creative]]
        + m.c20_effect[c20[sess]]
        + m.hod_effect[hod]
        + m.dow_effect[m.hour_dow[hour_idx]]
        + m.hour_x_category[category, hod]
        + m.banner_x_type[bp, row_type]
        + user_effect[sess]
    )
    factors = {
        "C1": c1[sess],
        "banner_pos": bp,
        "device_conn_type": conn[sess],
        "size": m.c14_size[creative],
        "C18": c18,
        "C21": m.c14_c21[creative],
        "category": category,
    }
    size = factors["size"]
    ints = {
        "C1": m.c1_values[factors["C1"]],
        "banner_pos": m.bp_values[bp],
        "device_type": m.type_values[row_type],
        "device_conn_type": m.conn_values[factors["device_conn_type"]],
        "C14": m.c14_values[creative],
        "C15": m.size_c15[size],
        "C16": m.size_c16[size],
        "C17": m.c17_values[campaign],
        "C18": c18.astype(np.int64),
        "C19": m.c19_values[m.c14_c19[creative]],
        "C20": m.c20_values[c20[sess]],
        "C21": m.c21_values[factors["C21"]],
    }
    hexes = {name: codes[row_pub] for name, codes in m.pub_hex.items()}
    hexes["device_id"] = device_codes[sess]
    hexes["device_ip"] = ip_codes[sess]
    hexes["device_model"] = m.model_codes[model[sess]]
    return {"fixed": fixed, "factors": factors, "ints": ints, "hex": hexes}


@dataclass
class _Batch:
    start: int  # global index of the first row
    hour_idx: np.ndarray  # 0..239
    ids: np.ndarray  # uint64
    click: np.ndarray  # int8
    p: np.ndarray  # float64
    ints: Dict[str, np.ndarray]
    hexes: Dict[str, np.ndarray]  # uint32 codes

    @property
    def size(self) -> int:
        return int(self.hour_idx.size)


def _check_args(rows: int, seed: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 0:
        raise ValueError(f"rows must be a non-negative integer, got {rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")


def _batches(rows: int, seed: int) -> Iterator[_Batch]:
    _check_args(rows, seed)
    rows, seed = int(rows), int(seed)
    m = _market()
    hour_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,))))
    hour_end = np.cumsum(hour_rng.multinomial(rows, m.hour_weight))
    id_salt = _mix64(np.array([seed ^ 0x0A7A2D5EED], dtype=_U64))[0]
    for b, start in enumerate(range(0, rows, BATCH_ROWS)):
        stop = min(start + BATCH_ROWS, rows)
        seq = np.random.SeedSequence(seed, spawn_key=(1, b))
        rng = np.random.Generator(np.random.PCG64(seq))
        positions = np.arange(start, stop, dtype=np.int64)
        hour_idx = np.searchsorted(hour_end, positions, side="right")
        sim = _simulate(m, rng, hour_idx)
        eta = sim["fixed"] + m.intercept
        for name, idx in sim["factors"].items():
            eta += m.effects[name][idx]
        p = np.clip(1.0 / (1.0 + np.exp(-eta)), 1e-6, 1.0 - 1e-6)
        click = (rng.random(p.size) < p).astype(np.int8)
        ids = _mix64(positions.astype(_U64) + id_salt)  # a bijection of the row index: unique
        yield _Batch(start, hour_idx, ids, click, p, sim["ints"], sim["hex"])


def generate_batches(rows: int, seed: int = 0) -> Iterator[Dict[str, np.ndarray]]:
    """Yield the synthetic data set in batches of canonical raw columns.

    Parameters
    ----------
    rows : int
        Total number of rows (any size: batches of :data:`BATCH_ROWS` rows are made one at a
        time, so memory does not grow with ``rows``).
    seed : int, default 0
        Seed in ``[0, 2**63)``. The rows depend on ``(rows, seed)`` only.

    Returns
    -------
    iterator of dict
        One dict per batch (see below); ``ValueError`` for a bad ``rows`` or ``seed`` is
        raised at once.

    Yields
    ------
    dict of str to numpy.ndarray
        Every name in ``schema.RAW_COLUMNS`` plus ``schema.TRUTH_COLUMN`` (``"p_click"``, the
        float64 probability the click was drawn from). ``id`` holds decimal strings of unique
        unsigned 64-bit integers, ``click`` 0/1 and ``hour`` ``YYMMDDHH`` integers (rows are
        sorted by hour), the other integer columns int64 and the hex columns unicode arrays
        of 8 lowercase hex characters.

    Examples
    --------
    >>> batch = next(generate_batches(1_000, seed=7))
    >>> len(batch["id"]), batch["site_id"].dtype.str[1:], int(batch["hour"].min()) >= 14102100
    (1000, 'U8', True)
    >>> set(batch["click"].tolist()) <= {0, 1}
    True
    """
    _check_args(rows, seed)  # now, not at the first next()
    return _public_batches(rows, seed)


def _public_batches(rows: int, seed: int) -> Iterator[Dict[str, np.ndarray]]:
    for batch in _batches(rows, seed):
        out: Dict[str, np.ndarray] = {
            "id": batch.ids.astype("U20"),
            "click": batch.click.astype(np.int64),
            "hour": _market().hour_value[batch.hour_idx].astype(np.int64),
        }
        for name in FEATURE_COLUMNS:
            if name in HEX_COLUMNS:
                out[name] = _hex_strings(batch.hexes[name])
            else:
                out[name] = batch.ints[name].astype(np.int64)
        out[TRUTH_COLUMN] = batch.p
        yield out


# ---------------------------------------------------------------------------------------------
# Spreadsheet damage
# ---------------------------------------------------------------------------------------------

_ALL_DIGITS = re.compile(r"[0-9]+")
_SCIENTIFIC = re.compile(r"[0-9]+e[0-9]+")


def _damage_text(value: str) -> str:
    if _ALL_DIGITS.fullmatch(value):
        return str(int(value))
    if _SCIENTIFIC.fullmatch(value):
        number = float(value)
        return value if math.isinf(number) else format(number, ".2E")
    return value


def spreadsheet_damage(values: np.ndarray) -> np.ndarray:
    """Return ``values`` as a spreadsheet leaves them after opening and saving a CSV file.

    A value made only of digits is read as a number, which drops leading zeros
    (``'05490809'`` -> ``'5490809'``, ``'00000000'`` -> ``'0'``). A value of the form
    digits ``e`` digits is read as scientific notation and written back as ``'%.2E'`` text
    (``'25301e75'`` -> ``'2.53E+79'``), unless the number overflows a double, in which case
    the text is kept. Everything else is unchanged.

    Parameters
    ----------
    values : array_like of str
        Cell texts, e.g. a hex id column.

    Returns
    -------
    numpy.ndarray
        Unicode array of the same shape.

    Examples
    --------
    >>> spreadsheet_damage(np.array(["05490809", "25301e75", "1e10abcd", "9e999999"])).tolist()
    ['5490809', '2.53E+79', '1e10abcd', '9e999999']
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "ascii")
    arr = arr.astype(str)
    if arr.size == 0:
        return arr.copy()
    uniq, inverse = np.unique(arr.ravel(), return_inverse=True)
    fixed = np.array([_damage_text(v) for v in uniq.tolist()], dtype=str)
    return fixed[inverse].reshape(arr.shape)


def _damage_hex_bytes(hex_bytes: np.ndarray) -> np.ndarray:
    """Vectorised :func:`spreadsheet_damage` on (n, 8) hex ASCII; NUL bytes mark dropped chars.

    Returns (n, 9) uint8: ``'%.2E'`` text can reach 9 characters (``1.00E+300``).
    """
    n = hex_bytes.shape[0]
    out = np.zeros((n, 9), dtype=np.uint8)
    out[:, :8] = hex_bytes
    digit = (hex_bytes >= 48) & (hex_bytes <= 57)
    is_e = hex_bytes == ord("e")
    numeric = digit.all(axis=1)
    if numeric.any():
        sub = out[numeric, :8]
        leading = np.cumprod(sub[:, :7] == ord("0"), axis=1).astype(bool)
        sub[:, :7][leading] = 0
        out[numeric, :8] = sub
    scientific = (is_e.sum(axis=1) == 1) & (digit | is_e).all(axis=1) & ~is_e[:, 0] & ~is_e[:, 7]
    if scientific.any():
        texts = np.ascontiguousarray(hex_bytes[scientific]).view("S8").ravel()
        uniq, inverse = np.unique(texts, return_inverse=True)
        fixed = np.array([_damage_text(t.decode()).encode() for t in uniq.tolist()], dtype="S9")
        out[scientific] = fixed.view(np.uint8).reshape(-1, 9)[inverse]
    return out


# ---------------------------------------------------------------------------------------------
# CSV rendering: every field is a fixed-width block of ASCII padded with NUL bytes; rows are
# assembled side by side and the NULs dropped in one pass.
# ---------------------------------------------------------------------------------------------


@functools.cache
def _int_lut(lo: int, hi: int) -> np.ndarray:
    width = max(len(str(lo)), len(str(hi)))
    text = np.arange(lo, hi + 1, dtype=np.int64).astype(f"S{width}")
    return text.view(np.uint8).reshape(-1, width)


_INT_RANGE = {
    "C1": (1001, 1012), "banner_pos": (0, 7), "device_type": (0, 5),
    "device_conn_type": (0, 5), "C14": (375, 24_052), "C15": (120, 1024), "C16": (20, 1024),
    "C17": (112, 2758), "C18": (0, 3), "C19": (33, 1959), "C20": (-1, 100_248), "C21": (1, 253),
}  # fmt: skip


def _int_block(values: np.ndarray, name: str) -> np.ndarray:
    lo, hi = _INT_RANGE[name]
    return _int_lut(lo, hi)[values - lo]


def _u64_block(values: np.ndarray) -> np.ndarray:
    """Decimal ASCII of uint64 values, (n, 20), leading zeros as NUL."""
    out = np.empty((values.size, 20), dtype=np.uint8)
    x = values.astype(_U64, copy=True)
    for k in range(19, -1, -1):
        out[:, k] = (x % _U64(10)).astype(np.uint8)
        x //= _U64(10)
    leading = np.cumprod(out[:, :19] == 0, axis=1).astype(bool)
    out += 48
    out[:, :19][leading] = 0
    return out


def _prob_block(p: np.ndarray) -> np.ndarray:
    """'%.6f'-style ASCII of probabilities in [0, 1] (rounded to 1e-6), (n, 8)."""
    micro = np.rint(p * 1e6).astype(np.int64)
    out = np.empty((p.size, 8), dtype=np.uint8)
    out[:, 0] = 48 + micro // 1_000_000
    out[:, 1] = ord(".")
    rest = micro % 1_000_000
    for k in range(7, 1, -1):
        out[:, k] = 48 + rest % 10
        rest //= 10
    return out


def _assemble(blocks: Sequence[np.ndarray]) -> bytes:
    n = blocks[0].shape[0]
    width = sum(b.shape[1] for b in blocks) + len(blocks)
    buf = np.empty((n, width), dtype=np.uint8)
    pos = 0
    for block in blocks:
        w = block.shape[1]
        buf[:, pos : pos + w] = block
        buf[:, pos + w] = ord(",")
        pos += w + 1
    buf[:, -1] = ord("\n")
    flat = buf.ravel()
    return flat[flat != 0].tobytes()


def _course_time_luts() -> Dict[str, np.ndarray]:
    m = _market()
    return {
        "month": np.tile(np.frombuffer(b"10", dtype=np.uint8), (240, 1)),
        "dayofweek": _int_lut(0, 6)[m.hour_dow],
        "day": _int_lut(21, 30)[m.hour_day - 21],
        "hour": _int_lut(0, 23)[m.hour_hod],
    }


_CLICK_TEXT = np.array([b"FALSE", b"TRUE"], dtype="S5").view(np.uint8).reshape(2, 5)


def _render_csv(batch: _Batch, fmt: str, damage: bool) -> bytes:
    m = _market()
    blocks: List[np.ndarray] = []
    if fmt == "raw":
        blocks.append(_u64_block(batch.ids))
        blocks.append((batch.click.astype(np.uint8) + 48)[:, None])
        blocks.append(_int_lut(14_102_100, 14_103_023)[m.hour_value[batch.hour_idx] - 14_102_100])
    else:
        blocks.append(_CLICK_TEXT[batch.click])
    for name in FEATURE_COLUMNS:
        if name in HEX_COLUMNS:
            block = _hex_bytes(batch.hexes[name])
            blocks.append(_damage_hex_bytes(block) if damage else block)
        else:
            blocks.append(_int_block(batch.ints[name], name))
    if fmt == "course":
        luts = _course_time_luts()
        for name in ("month", "dayofweek", "day", "hour"):
            blocks.append(luts[name][batch.hour_idx].astype(np.uint8))
    return _assemble(blocks)


def _render_truth(batch: _Batch, fmt: str) -> bytes:
    if fmt == "raw":
        key = _u64_block(batch.ids)
    else:
        key = _u64_block(np.arange(batch.start, batch.start + batch.size, dtype=_U64))
    return _assemble([key, _prob_block(batch.p)])


# ---------------------------------------------------------------------------------------------
# Writing files
# ---------------------------------------------------------------------------------------------

_GZIP_LEVEL = 3  # level 6 makes files 13% smaller but compresses at half the speed


def _file_kind(path: PathLike, allowed: Tuple[str, ...]) -> str:
    name = os.fspath(path).lower()
    for kind in (".csv.gz", ".csv", ".parquet"):
        if name.endswith(kind) and kind in allowed:
            return kind
    raise ValueError(
        f"cannot tell the file type of {os.fspath(path)!r}: use a name ending in "
        + ", ".join(repr(k) for k in allowed)
    )


class _TextSink:
    """Writes CSV bytes to a plain or gzip file; gzip with mtime 0 and no name (reproducible).

    Compression runs in a helper thread (zlib releases the GIL), so it overlaps with
    generating the next batch; the byte stream, and so the file, is the same either way.
    """

    def __init__(self, path: Path, kind: str) -> None:
        self._raw: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._gz: Optional[gzip.GzipFile] = None
        self._thread: Optional[threading.Thread] = None
        self._queue: queue.Queue[Optional[bytes]] = queue.Queue(maxsize=2)
        self._error: Optional[BaseException] = None
        if kind == ".csv.gz":
            self._gz = gzip.GzipFile(
                filename="", mode="wb", fileobj=self._raw, compresslevel=_GZIP_LEVEL, mtime=0
            )
            self._thread = threading.Thread(target=self._drain, name="ctr-lab-gzip", daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            if self._error is None:
                try:
                    self._gz.write(data)  # type: ignore[union-attr]
                except BaseException as err:  # re-raised in the caller's thread
                    self._error = err

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._raw.write(data)
        else:
            self._queue.put(data)

    def close(self) -> None:
        try:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None
            if self._gz is not None:
                self._gz.close()
                self._gz = None
        finally:
            self._raw.close()
        if self._error is not None:
            raise self._error


def _require_pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ValueError(
            "writing .parquet needs pyarrow, which is not installed: pip install pyarrow "
            "(or write .csv / .csv.gz instead)"
        ) from err
    return pa, pq


class _ParquetSink:
    def __init__(self, path: Path, fmt: str, damage: bool, names: Sequence[str]) -> None:
        self._pa, pq = _require_pyarrow()
        self._fmt, self._damage, self._names = fmt, damage, list(names)
        pa = self._pa
        fields = []
        for name, canonical in zip(self._names, self._canonical_names()):
            if canonical == "id" or canonical in HEX_COLUMNS:
                kind = pa.string()
            elif canonical == "click" and fmt == "course":
                kind = pa.bool_()
            else:
                kind = pa.int64()
            fields.append(pa.field(name, kind, nullable=False))
        self._schema = pa.schema(fields)
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="snappy")

    def _canonical_names(self) -> List[str]:
        return list(RAW_COLUMNS if self._fmt == "raw" else COURSE_COLUMNS)

    def write_batch(self, batch: _Batch) -> None:
        m = _market()
        cols: Dict[str, np.ndarray] = {}
        if self._fmt == "raw":
            cols["id"] = batch.ids.astype("U20")
            cols["click"] = batch.click.astype(np.int64)
            cols["hour"] = m.hour_value[batch.hour_idx].astype(np.int64)
        else:
            cols["click"] = batch.click.astype(bool)
            cols["month"] = np.full(batch.size, 10, dtype=np.int64)
            cols["dayofweek"] = m.hour_dow[batch.hour_idx].astype(np.int64)
            cols["day"] = m.hour_day[batch.hour_idx].astype(np.int64)
            cols["hour"] = m.hour_hod[batch.hour_idx].astype(np.int64)
        for name in HEX_COLUMNS:
            text = _hex_bytes(batch.hexes[name])
            if self._damage:
                text = _damage_hex_bytes(text)
            # Move the NUL bytes (dropped characters) to the end, where numpy's S type drops them.
            packed = np.take_along_axis(text, np.argsort(text == 0, axis=1, kind="stable"), 1)
            cols[name] = np.ascontiguousarray(packed).view(f"S{text.shape[1]}").ravel().astype(str)
        for name in INT_COLUMNS:
            cols[name] = batch.ints[name].astype(np.int64)
        arrays = [
            self._pa.array(cols[c], type=f.type)
            for c, f in zip(self._canonical_names(), self._schema)
        ]
        self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


@dataclass(frozen=True)
class SynthReport:
    """What :func:`write_dataset` wrote, with the truth's summary statistics.

    Attributes
    ----------
    path, truth_path : str, str or None
        The data file and the optional true-probability file.
    fmt : str
        ``'raw'`` or ``'course'``.
    rows, clicks : int
        Rows written and clicks among them.
    ctr, mean_p : float
        Observed click rate and mean true probability.
    bayes_logloss : float
        Mean log loss of the true probabilities on the drawn labels: the best log loss any
        model can expect.
    seconds, rows_per_second : float
        Wall time of the call and throughput.
    """

    path: str
    truth_path: Optional[str]
    fmt: str
    rows: int
    clicks: int
    ctr: float
    mean_p: float
    bayes_logloss: float
    seconds: float
    rows_per_second: float

    def to_dict(self) -> dict:
        """Return the report as a plain dict (JSON-serialisable).

        Examples
        --------
        >>> r = SynthReport("a.csv", None, "raw", 10, 2, 0.2, 0.19, 0.5, 0.1, 100.0)
        >>> r.to_dict()["ctr"]
        0.2
        """
        return dataclasses.asdict(self)


def write_dataset(
    path: PathLike,
    rows: int,
    seed: int = 0,
    fmt: str = "raw",
    truth_path: Optional[PathLike] = None,
    damage: bool = False,
    header_typo: bool = False,
    progress: Optional[Progress] = None,
) -> SynthReport:
    """Write ``rows`` synthetic Avazu-like rows to ``path`` and return a :class:`SynthReport`.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its suffix picks the kind: ``.csv``, ``.csv.gz`` (gzip, written with
        mtime 0 and no file name so the bytes are reproducible) or ``.parquet`` (needs
        pyarrow). Parent directories are created. The file appears only when complete.
    rows : int
        Number of data rows.
    seed : int, default 0
        Sample seed; identical arguments give byte-identical files.
    fmt : {'raw', 'course'}, default 'raw'
        ``'raw'``: the Kaggle header (``schema.RAW_COLUMNS``). ``'course'``: the course header
        (``schema.COURSE_COLUMNS``): no ``id``, ``click`` as ``TRUE``/``FALSE``, ``month``
        (10), ``dayofweek`` (Monday=0), ``day`` (21..30) and ``hour`` (0..23).
    truth_path : str or os.PathLike, optional
        Also write the true click probabilities (``.csv`` or ``.csv.gz``): ``id,p_click`` for
        raw data, ``row,p_click`` for course data (``row`` = 0-based data row number), with
        six decimals, one line per data row in file order.
    damage : bool, default False
        Course format only: apply :func:`spreadsheet_damage` to the hex id columns, as a
        spreadsheet does when the file is opened and saved.
    header_typo : bool, default False
        Course format only: spell ``app_category`` as ``add_category`` in the header, as a
        real course file does.
    progress : callable, optional
        Called as ``progress(rows_done, rows_total)`` after each batch.

    Returns
    -------
    SynthReport

    Raises
    ------
    ValueError
        For an unknown suffix or format, ``damage``/``header_typo`` with raw data, or a
        ``.parquet`` path without pyarrow installed.

    Examples
    --------
    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "train.csv")
    >>> report = write_dataset(out, rows=2_000, seed=1, truth_path=out + ".truth.csv")
    >>> report.rows, open(out).readline().split(",")[:3]
    (2000, ['id', 'click', 'hour'])
    >>> 0.1 < report.ctr < 0.25
    True
    """
    _check_args(rows, seed)
    if fmt not in ("raw", "course"):
        raise ValueError(f"fmt must be 'raw' or 'course', got {fmt!r}")
    if fmt == "raw" and (damage or header_typo):
        raise ValueError("damage and header_typo only apply to fmt='course'")
    out_path = Path(path)
    kind = _file_kind(out_path, (".csv.gz", ".csv", ".parquet"))
    truth = Path(truth_path) if truth_path is not None else None
    truth_kind = _file_kind(truth, (".csv.gz", ".csv")) if truth is not None else None
    header = list(RAW_COLUMNS if fmt == "raw" else COURSE_COLUMNS)
    if header_typo:
        header[header.index("app_category")] = "add_category"
    if kind == ".parquet":
        _require_pyarrow()

    t0 = time.perf_counter()
    temps: List[Path] = []
    sinks: List[object] = []
    clicks, sum_p, sum_loss = 0, 0.0, 0.0
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(out_path.name + ".partial")
        temps.append(tmp)
        data_sink: Union[_TextSink, _ParquetSink]
        if kind == ".parquet":
            data_sink = _ParquetSink(tmp, fmt, damage, header)
        else:
            data_sink = _TextSink(tmp, kind)
            data_sink.write((",".join(header) + "\n").encode())
        sinks.append(data_sink)
        truth_sink: Optional[_TextSink] = None
        if truth is not None:
            truth.parent.mkdir(parents=True, exist_ok=True)
            ttmp = truth.with_name(truth.name + ".partial")
            temps.append(ttmp)
            truth_sink = _TextSink(ttmp, truth_kind or ".csv")
            sinks.append(truth_sink)
            truth_sink.write(("id" if fmt == "raw" else "row").encode() + b"," +
                             TRUTH_COLUMN.encode() + b"\n")  # fmt: skip
        done = 0
        for batch in _batches(rows, seed):
            if isinstance(data_sink, _ParquetSink):
                data_sink.write_batch(batch)
            else:
                data_sink.write(_render_csv(batch, fmt, damage))
            if truth_sink is not None:
                truth_sink.write(_render_truth(batch, fmt))
            y = batch.click.astype(bool)
            clicks += int(y.sum())
            sum_p += float(batch.p.sum())
            sum_loss -= float(np.log(np.where(y, batch.p, 1.0 - batch.p)).sum())
            done += batch.size
            if progress is not None:
                progress(done, int(rows))
        while sinks:
            sinks.pop().close()  # type: ignore[attr-defined]
        os.replace(temps[0], out_path)
        if truth is not None:
            os.replace(temps[1], truth)
    finally:
        for sink in sinks:
            sink.close()  # type: ignore[attr-defined]
        for tmp in temps:
            if tmp.exists():
                tmp.unlink()
    seconds = time.perf_counter() - t0
    n = int(rows)
    return SynthReport(
        path=str(out_path),
        truth_path=None if truth is None else str(truth),
        fmt=fmt,
        rows=n,
        clicks=clicks,
        ctr=clicks / n if n else float("nan"),
        mean_p=sum_p / n if n else float("nan"),
        bayes_logloss=sum_loss / n if n else float("nan"),
        seconds=seconds,
        rows_per_second=n / seconds if seconds > 0 else float("inf"),
    )
