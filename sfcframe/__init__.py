"""sfcframe: generate, load and operate eBPF caching SFC proxies."""

__version__ = "0.1.0"
