"""sfcframe's IOAM stage (RFC 9197 trace options in SRv6's outer IPv6 Hop-by-Hop
header per RFC 9486, and after NSH per RFC 9452).

``sfcframe_ioam.scapy_layers``: scapy layers for the IOAM option, its trace
option headers and node data, and the NSH IOAM header (import it to bind them).
"""
