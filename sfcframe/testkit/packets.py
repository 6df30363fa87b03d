"""The test kit's inner packets, frames and simulated VNF steps.

They live in the core (:mod:`sfcframe.packets`), where the plugin contracts'
default example packets come from; this module keeps the kit's name for them.
"""

from sfcframe.packets import *  # noqa: F401,F403 - the kit's name for the core's packets
