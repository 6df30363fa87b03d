"""The IOAM Proof of Transit option (RFC 9197, section 4.5), POT type 0.

Its data, as a carrier hands it to the stage (after the IOAM Option-Type)::

    0                   1                   2                   3
    +-------------------------------+---------------+---------------+
    |         Namespace-ID          | POT type = 0  |   POT flags   |
    +-------------------------------+---------------+---------------+
    |                  PktID (the random number RND, 64 bits)       |
    +---------------------------------------------------------------+
    |              Cumulative (CML, 64 bits)                        |
    +---------------------------------------------------------------+

RFC 9197 registers no POT flag. This distribution reads the most significant
flag bit as the profile selector of draft-ietf-sfc-proof-of-transit (two
profiles, so that an operator can roll keys over: packets sent with the new
profile verify while the old one is still in flight). A sender that leaves the
flags at 0 uses profile 0.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: IOAM Option-Type of proof of transit (RFC 9197, section 8.1)
IOAM_POT = 2
#: the only POT type defined: 64-bit PktID and 64-bit Cumulative
POT_TYPE_0 = 0
#: the flag bit that selects profile 1
FLAG_PROFILE = 0x80
#: bytes of the option data from the Namespace-ID to the end of Cumulative
LENGTH = 20

_FORMAT = struct.Struct("!HBBQQ")


@dataclass(frozen=True)
class PotOption:
    namespace: int
    rnd: int
    cml: int
    flags: int = 0
    pot_type: int = POT_TYPE_0

    @property
    def profile(self) -> int:
        return 1 if self.flags & FLAG_PROFILE else 0

    def pack(self) -> bytes:
        return _FORMAT.pack(self.namespace, self.pot_type, self.flags, self.rnd, self.cml)

    @classmethod
    def parse(cls, data: bytes) -> "PotOption":
        """The option in ``data`` (at least :data:`LENGTH` bytes; ValueError if shorter)."""
        if len(data) < LENGTH:
            raise ValueError(f"POT option data of {len(data)} bytes, {LENGTH} needed")
        namespace, pot_type, flags, rnd, cml = _FORMAT.unpack_from(data)
        return cls(namespace, rnd, cml, flags, pot_type)

    def with_cml(self, cml: int) -> "PotOption":
        return PotOption(self.namespace, self.rnd, cml, self.flags, self.pot_type)
