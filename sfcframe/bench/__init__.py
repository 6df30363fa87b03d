"""``sfcframe bench``: reproducible measurements of the generated proxies.

Each benchmark writes ``bench-results/<name>.json`` (machine, versions,
parameters, method, raw samples, medians with min–max) and a PNG plot:

- :mod:`sfcframe.bench.cost`: per-packet cost through BPF_PROG_TEST_RUN, net
  of a no-op floor run through the same harness;
- :mod:`sfcframe.bench.memory`: cache map memory as the kernel charges it.
"""
