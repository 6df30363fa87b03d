"""sfcframe-pot: proof of transit for SFC-unaware functions, as an sfcframe stage.

- :mod:`.stage`: the ``pot`` stage (entry point ``sfcframe.stages``), its C in
  ``pot.c.j2``;
- :mod:`.arith`: arithmetic modulo 2^61 - 1, the Python reference of the C;
- :mod:`.option`: the IOAM POT option (RFC 9197);
- :mod:`.profile`: Shamir profiles (secret, shares, public values, LPCs);
- :mod:`.verify`: verification of captured packets;
- :mod:`.cli`: ``sfcframe pot profile`` and ``sfcframe pot verify``.
"""
