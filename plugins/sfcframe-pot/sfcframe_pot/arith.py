"""Arithmetic of proof of transit modulo the Mersenne prime 2^61 - 1, in Python.

The stage's C (``pot.c.j2``) multiplies two 61-bit residues without a 128-bit
type (clang's BPF target has none): from 32-bit partial products, folded with
2^61 = 1 (mod p). :func:`mulmod_parts` mirrors the C step by step, so a test
can compare it with plain ``a * b % P`` over the whole input range and the
kernel against both.
"""

from __future__ import annotations

P = (1 << 61) - 1
M32 = (1 << 32) - 1
M64 = (1 << 64) - 1


def fold(x: int) -> int:
    """x (< 2^64) reduced modulo P: 2^61 = 1, so x = (x mod 2^61) + (x >> 61)."""
    x = (x & P) + (x >> 61)
    x = (x & P) + (x >> 61)
    return x - P if x >= P else x


def mulmod_parts(a: int, b: int) -> int:
    """a * b mod P for a, b < 2^61, as the C computes it (64-bit words only)."""
    a1, a0 = a >> 32, a & M32
    b1, b0 = b >> 32, b & M32
    lo = a0 * b0  # < 2^64
    mid = a1 * b0 + a0 * b1  # < 2^62
    hi = a1 * b1  # < 2^58: its weight 2^64 = 8 (mod P)
    # mid * 2^32: mid = m1 * 2^29 + m0, so mid * 2^32 = m1 * 2^61 + m0 * 2^32 = m1 + m0 * 2^32
    m1, m0 = mid >> 29, mid & ((1 << 29) - 1)
    total = (hi << 3) + m1 + (m0 << 32) + (lo & P) + (lo >> 61)
    assert total <= M64
    return fold(total)


def addmod(a: int, b: int) -> int:
    """a + b mod P for a, b < P."""
    s = a + b
    return s - P if s >= P else s


def update(cml: int, rnd: int, share: int, lpc: int) -> int:
    """One node's turn: CML + LPC * (share + RND) mod P (RND and CML reduced first)."""
    return addmod(fold(cml), mulmod_parts(lpc % P, addmod(share % P, fold(rnd))))
