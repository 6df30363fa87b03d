"""``sfcframe demo``: an SFC testbed in network namespaces that proves the proxy.

sender ─ SFF (stamps the encapsulation per packet) ─ VNF host (the proxy, through
sfcframe's runtime, around a legacy VNF) ─ receiver (checks every packet's
header, strips it). See :mod:`sfcframe.demo.run`.
"""
