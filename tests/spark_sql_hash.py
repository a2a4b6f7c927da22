"""Spark SQL's ``hash`` and :class:`ctr_lab.hashing.SqlFeatureHasher`'s index of a level, written
out here from their definitions: the tests' independent reference.
"""

from __future__ import annotations

# Spark SQL's ``hash``: MurmurHash3 x86 32-bit with seed 42, each argument hashed with the
# previous one's result as its seed (``Murmur3Hash`` in Spark's ``hash.scala``). A string's bytes
# go through ``Murmur3_x86_32.hashUnsafeBytes``, which mixes each of the last ``len % 4`` bytes
# (as a signed byte) as a block of its own, where MurmurHash3 itself packs them into one.
_M = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M


def _mix_k1(k: int) -> int:
    k = (k * 0xCC9E2D51) & _M
    return (_rotl(k, 15) * 0x1B873593) & _M


def _mix_h1(h: int, k: int) -> int:
    h = _rotl(h ^ k, 13)
    return (h * 5 + 0xE6546B64) & _M


def _fmix(h: int, length: int) -> int:
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M
    return h ^ (h >> 16)


def _signed(h: int) -> int:
    return h - (1 << 32) if h & 0x80000000 else h


def hash_bytes(data: bytes, seed: int) -> int:
    h = seed & _M
    aligned = len(data) - len(data) % 4
    for i in range(0, aligned, 4):
        h = _mix_h1(h, _mix_k1(int.from_bytes(data[i : i + 4], "little")))
    for byte in data[aligned:]:
        h = _mix_h1(h, _mix_k1((byte - 256 if byte > 127 else byte) & _M))
    return _signed(_fmix(h, len(data)))


def hash_int(value: int, seed: int) -> int:
    return _signed(_fmix(_mix_h1(seed & _M, _mix_k1(value & _M)), 4))


def level_index(column: str, text: str, num_features: int) -> int:
    """Where a level goes: pmod(hash(column, text), numFeatures)."""
    return hash_bytes(text.encode("utf-8"), hash_bytes(column.encode("utf-8"), 42)) % num_features
