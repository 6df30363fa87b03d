"""Operating a proxy on a host: ``sfcframe up / list / stats / set / down / size``.

One module per job:

* :mod:`.config`     the ``up`` request from flags and a TOML file
* :mod:`.state`      the state record (``/run/sfcframe/<name>.json``), names, the lock
* :mod:`.validate`   what a state record may contain
* :mod:`.trust`      root-only directories and files (modes, owners, no symlinks)
* :mod:`.undo`       the record's footprint, kept in a pinned map next to the pins
* :mod:`.health`     whether an instance is usable or damaged, and why
* :mod:`.netns`      named network namespaces: netlink sockets, identity, tools inside
* :mod:`.pins`       pinning a loaded module's maps and programs in bpffs, reopening them
* :mod:`.attach`     XDP and TC clsact attachment through pyroute2 (with program ids)
* :mod:`.ownership`  which programs and interfaces an instance can prove are its own
* :mod:`.offloads`   GRO/LRO off on proxied interfaces (and back), via pyroute2's ethtool
* :mod:`.signals`    SIGTERM as Ctrl-C, no interruption of a roll-back
* :mod:`.instance`   up / set with roll-back of every step
* :mod:`.teardown`   down: exactly what the instance made, from the record, the undo
  copy or the pins
* :mod:`.stats`      counters, cache occupancy and map memory from the pinned maps
* :mod:`.prometheus` the stats as Prometheus metrics (`stats --prometheus`, `sfcframe exporter`)
* :mod:`.sizing`     cache size by Little's law
* :mod:`.cli`        the sub-commands' argument parsers and handlers
"""
