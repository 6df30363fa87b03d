"""Operating a proxy on a host: ``sfcframe up / list / stats / set / down / size``.

One module per job:

* :mod:`.config`     the ``up`` request from flags and a TOML file
* :mod:`.state`      the state record (``/run/sfcframe/<name>.json``), names, the lock
* :mod:`.netns`      named network namespaces: netlink sockets, running a tool inside
* :mod:`.pins`       pinning a loaded module's maps and programs in bpffs, reopening them
* :mod:`.attach`     XDP and TC clsact attachment through pyroute2
* :mod:`.offloads`   GRO/LRO off on proxied interfaces (and back), via ethtool
* :mod:`.instance`   up / down / set with roll-back of every step
* :mod:`.stats`      counters, cache occupancy and map memory from the pinned maps
* :mod:`.prometheus` the stats in Prometheus text exposition format
* :mod:`.sizing`     cache size by Little's law
* :mod:`.cli`        the sub-commands' argument parsers and handlers
"""
