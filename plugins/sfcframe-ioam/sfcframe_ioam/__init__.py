"""sfcframe-ioam: the ``ioam`` stage (IOAM trace options, RFC 9197) for sfcframe.

The stage class is :class:`sfcframe_ioam.stage.IoamStage` (entry point
``sfcframe.stages: ioam``); :mod:`sfcframe_ioam.trace` is the Python reference
of the node data it writes.
"""

__version__ = "0.1.0"
