"""``stats`` documents in the Prometheus text exposition format (version 0.0.4).

Counters are named ``sfcframe_<direction>_packets_total`` with the labels
``instance`` and ``outcome``; the key's own counter maps become
``sfcframe_key_packets_total{map=...}``; a stage's labelled counters become
``sfcframe_stage_labelled_packets_total`` / ``..._bytes_total`` with ``map`` and
the stage's label (e.g. ``apn_id="0x300a0c08"``, ``"other"`` for the overflow). Gauges: cache entries and capacity,
bytes per entry, map memory, strict mode, one ``sfcframe_interface_info``
per proxied interface (value 1 while attached as recorded, else 0), and
``sfcframe_instance_damaged`` per instance (1: its record or pins cannot be
read; it has no other samples then).
"""

from __future__ import annotations

from typing import Any, Iterable


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: Any) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items() if v is not None)
    return "{" + inner + "}"


class _Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind, self.help = name, kind, help_text
        self.samples: list[tuple[str, float]] = []

    def add(self, value: float, **labels: Any) -> None:
        self.samples.append((_labels(**labels), value))

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in self.samples:
            number = int(value) if float(value).is_integer() else value
            out.append(f"{self.name}{labels} {number}")
        return out


def render(docs: Iterable[dict[str, Any]]) -> str:
    families = {
        "ingress": _Family(
            "sfcframe_ingress_packets_total", "counter",
            "Packets seen by the XDP ingress program, by outcome.",
        ),
        "egress": _Family(
            "sfcframe_egress_packets_total", "counter",
            "Packets seen by the TC egress program, by outcome.",
        ),
        "key": _Family(
            "sfcframe_key_packets_total", "counter",
            "Packets seen by the key strategy's own programs, by counter map and outcome.",
        ),
        "labelled_packets": _Family(
            "sfcframe_stage_labelled_packets_total", "counter",
            "Packets a stage counted per label (e.g. per APN ID; label \"other\": the "
            "map was full), by counter map.",
        ),
        "labelled_bytes": _Family(
            "sfcframe_stage_labelled_bytes_total", "counter",
            "Bytes a stage counted per label, by counter map.",
        ),
        "entries": _Family(
            "sfcframe_cache_entries", "gauge",
            "Entries in the cache map now (in-flight packets and stale entries).",
        ),
        "capacity": _Family(
            "sfcframe_cache_capacity", "gauge", "Cache map max_entries.",
        ),
        "per_entry": _Family(
            "sfcframe_cache_bytes_per_entry", "gauge",
            "Kernel-charged memory of the cache map divided by its capacity.",
        ),
        "memory": _Family(
            "sfcframe_map_memory_bytes", "gauge",
            "Memory the kernel charges for each map (memlock).",
        ),
        "strict": _Family(
            "sfcframe_strict", "gauge", "1 if the programs run in strict mode.",
        ),
        "iface": _Family(
            "sfcframe_interface_info", "gauge",
            "One per proxied interface: 1 while XDP and TC are attached as recorded, else 0.",
        ),
        "damaged": _Family(
            "sfcframe_instance_damaged", "gauge",
            "1 if the instance's state record or pins cannot be read (see sfcframe list).",
        ),
    }
    for doc in docs:
        name = doc["name"]
        families["damaged"].add(int(doc.get("status") == "damaged"), instance=name)
        if doc.get("status") == "damaged":
            continue
        for direction in ("ingress", "egress"):
            for outcome, value in doc["counters"][direction].items():
                families[direction].add(value, instance=name, outcome=outcome)
        for map_name, counts in doc["extra_counters"].items():
            for outcome, value in counts.items():
                families["key"].add(value, instance=name, map=map_name, outcome=outcome)
        for map_name, lc in doc.get("labelled_counters", {}).items():
            for label, count in lc["counts"].items():
                labels = {"instance": name, "map": map_name, lc["label"]: label}
                families["labelled_packets"].add(count["packets"], **labels)
                families["labelled_bytes"].add(count["bytes"], **labels)
        if doc["cache"] is not None:  # mode=static has no cache
            families["entries"].add(doc["cache"]["entries"], instance=name)
            families["capacity"].add(doc["cache"]["capacity"], instance=name)
            families["per_entry"].add(doc["cache"]["bytes_per_entry"], instance=name)
        for map_name, info in doc["maps"].items():
            families["memory"].add(info["memlock_bytes"], instance=name, map=map_name)
        families["strict"].add(int(bool(doc["settings"]["strict"])), instance=name)
        for iface in doc["interfaces"]:
            families["iface"].add(
                int(iface["ok"]), instance=name, interface=iface["name"],
                netns=iface["netns"] or "", xdp_mode=iface["xdp_mode"] or "",
                encap=doc["encap"], key=doc["key"],
            )
    lines: list[str] = []
    for family in families.values():
        if family.samples:
            lines += family.lines()
    return "\n".join(lines) + "\n"
