"""sfcframe-apn: the ``apn`` stage (application-aware networking) for sfcframe, with the
APN header in SRv6's outer headers (Hop-by-Hop / Destination option, SRH TLV).

- :class:`sfcframe_apn.stage.ApnStage`: the stage (entry point ``sfcframe.stages: apn``);
- :mod:`sfcframe_apn.header`: the APN header as bytes (builders, parser, strategy);
- :mod:`sfcframe_apn.qos`: the Python reference of the DSCP / mark mapping and its undo;
- :mod:`sfcframe_apn.scapy_layers`: a scapy layer for the APN header.
"""

__version__ = "0.1.0"
