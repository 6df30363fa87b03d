"""A build loaded into the kernel and driven through BPF_PROG_TEST_RUN."""

from __future__ import annotations

import ctypes
import os
from typing import Any, Mapping

from sfcframe import labelled
from sfcframe.bpfsys import Map
from sfcframe.cachemap import EVENTS, module_view
from sfcframe.composer import render
from sfcframe.entry import static_value
from sfcframe.loader import LoadedModule, compile_and_load
from sfcframe.maps import counters
from sfcframe.spec import ResolvedSpec, resolve_spec
from sfcframe.testrun import RunResult, run_tc, run_xdp


class KernelProxy:
    """Compile once, then run ingress/egress on packets and read the maps."""

    def __init__(self, encap: str, key: str, params: Mapping[str, Any] | None = None,
                 stages: tuple[str, ...] = ()):
        self.spec: ResolvedSpec = resolve_spec(encap, key, params or {}, stages)
        self.module: LoadedModule = compile_and_load(render(self.spec))
        # mode=static has no cache map, but the sfc_static header map
        self._cache = None if self.spec.static else module_view(self.module,
                                                                  self.spec.value_size)
        self._static = self.module.table("sfc_static") if self.spec.static else None
        self._in = self.module.table("sfc_ingress_counters")
        self._eg = self.module.table("sfc_egress_counters")
        self._settings = self.module.table("sfc_settings")
        #: cache=assoc: what happened to entries besides being taken (evicted, reclaimed, moved)
        self._events = (self.module.table("sfc_cache_events")
                        if not self.spec.static and self.spec.cache_kind == "assoc" else None)
        self.ingress_names = [o.name for o in self.spec.ingress_outcomes]
        self.egress_names = [o.name for o in self.spec.egress_outcomes]
        extra = self.spec.key_extra_counters
        self._extra = {name: (self.module.table(name), list(outcomes)) for name, outcomes in extra.items()}
        # each stage's own counters, read like the key's (under the stage's name)
        for st in self.spec.stages:
            names = list(st.plugin.counters(st.values))
            if names:
                self._extra[st.name] = (self.module.table(f"stage_{st.name}_counters"), names)
        # each stage's labelled counters: (stage, name) -> (labels map, overflow map)
        self._labelled = {}
        for st in self.spec.stages:
            for name in st.plugin.labelled_counters(st.values):
                self._labelled[st.name, name] = tuple(
                    Map.from_fd(os.dup(self.module.table(m).map_fd))
                    for m in labelled.map_names(st.name, name))
        for st in self.spec.stages:
            self.set_stage_settings(st.name, st.default_settings())

    # ---- running ------------------------------------------------------
    def ingress(self, frame: bytes, mark: int = 0) -> RunResult:
        """Run the ingress program (XDP, or TC with ingress=tc: then ``mark`` is
        skb->mark going in and the result's ``mark`` what it wrote)."""
        if self.spec.ingress_hook == "tc":
            return run_tc(self.module.fds["sfc_ingress"], frame, mark=mark)
        return run_xdp(self.module.fds["sfc_ingress"], frame)

    def egress(self, frame: bytes, mark: int = 0) -> RunResult:
        return run_tc(self.module.fds["sfc_egress"], frame, mark=mark)

    def run_program(self, function: str, frame: bytes, mark: int = 0) -> RunResult:
        prog = self.module.programs[function]
        if prog.prog_type == "xdp":
            return run_xdp(self.module.fds[function], frame)
        return run_tc(self.module.fds[function], frame, mark=mark)

    # ---- state --------------------------------------------------------
    def counters(self) -> dict[str, dict[str, int]]:
        return {
            "ingress": counters(self._in, self.ingress_names),
            "egress": counters(self._eg, self.egress_names),
            **{name: counters(table, names) for name, (table, names) in self._extra.items()},
        }

    def cache_events(self) -> dict[str, int]:
        """cache=assoc: the table's event counters (sfcframe.cachemap.EVENTS); {} otherwise."""
        if self._events is None:
            return {}
        return counters(self._events, list(EVENTS))

    def labelled(self, stage: str, name: str) -> dict[str, dict[str, int]]:
        """A stage's labelled counter ``name``: {label text: {"packets", "bytes"}},
        ``other`` included, labels written as the stage writes them."""
        st = next(s for s in self.spec.stages if s.name == stage)
        return labelled.read(*self._labelled[stage, name],
                             text=lambda raw: st.plugin.label_text(name, raw, st.values))

    def cache(self) -> dict[bytes, bytes]:
        """Cache contents as {key bytes: value bytes}."""
        if self._cache is None:
            return {}
        return self._cache.entries()

    def set_static_header(self, header: bytes | None) -> None:
        """mode=static: write the header egress pushes into sfc_static (as
        ``sfcframe set --static-header`` does); None: back to the build's."""
        raw = static_value(header, self.spec.ethertypes[0], self.spec.value_layout.size)
        self._static[ctypes.c_int(0)] = self._static.Leaf.from_buffer_copy(raw)

    def clear(self) -> None:
        """Empty the cache and zero the counters (static mode: the build's header again)."""
        if self._cache is not None:
            self._cache.clear()
        if self._static is not None:
            self.set_static_header(None)
        for maps in self._labelled.values():
            labelled.clear(*maps)
        events = (self._events,) if self._events is not None else ()
        for table in (self._in, self._eg, *events, *(t for t, _ in self._extra.values())):
            for index in range(len(table)):
                zero = table.Leaf(*([0] * len(table[table.Key(index)])))
                table[table.Key(index)] = zero

    def set_stage_settings(self, stage: str, settings: Mapping[str, int]) -> None:
        """Write a stage's runtime settings map (as ``sfcframe set NAME stage.x=V``):
        every setting, the missing ones at their defaults."""
        st = next(s for s in self.spec.stages if s.name == stage)
        if not st.settings:
            return
        table = self.module.table(f"stage_{stage}_settings_map")
        table[ctypes.c_int(0)] = table.Leaf.from_buffer_copy(st.pack_settings(settings))

    def set_strict(self, strict: bool) -> None:
        leaf = self._settings.Leaf()
        leaf.set = 1
        leaf.strict = int(strict)
        self._settings[ctypes.c_int(0)] = leaf

    def value_size(self) -> int:
        """sizeof(struct sfc_value)."""
        return self._cache.value_size

    def close(self) -> None:
        for maps in self._labelled.values():
            for table in maps:
                table.close()
        if self._cache is not None:
            self._cache.close()
        self.module.close()

    def __enter__(self) -> "KernelProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
