"""The kernel fixtures (kernel_ready, proxy_factory, harness_factory) come from
sfcframe's pytest plugin, sfcframe/testkit/pytest_plugin.py, which third-party
plugin packages get the same way."""
