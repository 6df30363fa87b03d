"""sfcframe-ioam: the ``ioam`` stage (IOAM trace options, RFC 9197) for sfcframe,
in SRv6's outer IPv6 Hop-by-Hop header (RFC 9486) and after NSH (RFC 9452).

- :class:`sfcframe_ioam.stage.IoamStage`: the stage (entry point ``sfcframe.stages: ioam``);
- :mod:`sfcframe_ioam.trace`: the Python reference of the node data it writes;
- :mod:`sfcframe_ioam.scapy_layers`: scapy layers for the IOAM option, its trace option
  headers and node data, and the NSH IOAM header (import it to bind them).
"""

__version__ = "0.1.0"
