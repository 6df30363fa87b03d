"""Rendering a resolved spec into C with Jinja2.

The core skeletons live in ``sfcframe.bpf_templates``; each plugin ships one
template of macros. A :class:`~jinja2.PrefixLoader` exposes them as
``core/...``, ``encap/...`` and ``key/...`` so the skeletons import the chosen
plugins by a fixed name. Same spec, same bytes: no timestamps, sorted
iteration, StrictUndefined.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Iterable

import jinja2

from sfcframe import __version__
from sfcframe.errors import RenderError
from sfcframe.spec import ResolvedSpec

#: output file name -> core template that renders it
OUTPUTS = {
    "sfc_proxy.h": "sfc_proxy.h.j2",
    "sfc_ingress.c": "sfc_ingress.c.j2",
    "sfc_egress.c": "sfc_egress.c.j2",
    "sfc_proxy.c": "sfc_proxy.c.j2",
}
#: the file bcc compiles; it includes the others
MAIN_FILE = "sfc_proxy.c"

#: Variant switches of the core templates, for the cost benchmark's variant builds
#: (``sfcframe bench cost --breakdown``) only: switch name -> what it changes. The
#: templates see them as ``variant.<name>``; every one is off unless ``render`` is
#: asked for it, and with all off the C is exactly that of a normal build. Most
#: make an incorrect program (a step removed) whose cost is the difference to
#: the unmodified build; bpf_templates/CONTRACT.md ("Variant switches") says
#: where each one acts.
VARIANT_SWITCHES = {
    "no_insert": "ingress: no cache insert",
    "no_strip": "ingress: no strip (bpf_xdp_adjust_head + Ethernet rewrite)",
    "no_alone": "ingress: no concurrent-insert check (cache=assoc)",
    "assoc_locate_only": "ingress: the cache=assoc insert hashes the key and finds its two "
                         "buckets, then stops (reads no bucket, stores nothing)",
    "assoc_first_read": "ingress: the cache=assoc insert finds the two buckets and reads one "
                        "8-byte tag word of each, then stops (stores nothing)",
    "no_delete": "egress: no cache delete",
    "no_revalidate": "egress: no re-validation of the copy (cache=lru: one lookup, copy, "
                     "delete)",
    "no_mtu": "egress: no bpf_check_mtu",
    "no_store": "egress: no header stores (room opened by change_head, MACs + ethertype "
                "written, header not)",
    "no_restore": "egress: no restore (lookup + copy + delete only)",
    "store_bytes": "egress: bpf_skb_store_bytes instead of direct stores of ethertype + "
                   "header (after change_head)",
    "adjust_room": "egress: the old restore, bpf_skb_adjust_room + bpf_skb_store_bytes "
                   "for every skb",
    "no_common_lru": "cache map flag BPF_F_NO_COMMON_LRU (per-CPU LRU lists)",
    "hash_map": "cache map as a preallocated hash map (no LRU eviction)",
    "aa_control": "a/a control: identical code (a comment added)",
}


@dataclass(frozen=True)
class Rendered:
    spec: ResolvedSpec
    files: dict[str, str]

    def write(self, directory: Path) -> list[Path]:
        """Each file into ``directory`` (made if missing), replaced atomically: a
        symlink planted at a file's name is replaced, never written through.
        UsageError (one line) when the directory cannot be made or written."""
        from sfcframe.errors import UsageError
        from sfcframe.files import replace_file

        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            what = "exists and is not a directory" if exc.errno == errno.EEXIST else exc.strerror
            raise UsageError(f"output directory {directory}: {what}") from None
        written = []
        for name, text in sorted(self.files.items()):
            try:
                written.append(replace_file(directory, name, text.encode(), 0o644))
            except OSError as exc:
                raise UsageError(f"cannot write {directory / name}: {exc.strerror}") from None
        return written

    def combined(self) -> str:
        """The one compilation unit (``sfc_proxy.c``: the header and both
        programs in one text), exactly what bcc compiles: ``build`` prints it."""
        return self.files[MAIN_FILE]


def _environment(spec: ResolvedSpec) -> jinja2.Environment:
    core_dir = Path(str(resources.files("sfcframe.bpf_templates")))
    loader = jinja2.PrefixLoader(
        {
            "core": jinja2.FileSystemLoader(core_dir),
            "encap": jinja2.FileSystemLoader(spec.encap.plugin.template_dir()),
            "key": jinja2.FileSystemLoader(spec.key.plugin.template_dir()),
            # one prefix per stage: stage-<name>/<template>
            **{f"stage-{st.name}": jinja2.FileSystemLoader(st.plugin.template_dir())
               for st in spec.stages},
        }
    )
    return jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(spec: ResolvedSpec, variant: Iterable[str] = ()) -> Rendered:
    """The build's C files. ``variant``: names of :data:`VARIANT_SWITCHES` to turn
    on (benchmarks only; RenderError for an unknown name)."""
    chosen = set(variant)
    unknown = sorted(chosen - VARIANT_SWITCHES.keys())
    if unknown:
        raise RenderError(f"unknown variant switch(es): {', '.join(unknown)}")
    env = _environment(spec)
    context = {
        "version": __version__,
        "spec": spec,
        "encap": spec.encap.plugin,
        "key": spec.key.plugin,
        "encap_template": spec.encap.plugin.template,
        "key_template": spec.key.plugin.template,
        # what each plugin's macros get as p (Plugin.template_values)
        "ep": SimpleNamespace(**spec.encap.plugin.template_values(spec.encap_params)),
        "kp": SimpleNamespace(**spec.key.plugin.template_values(spec.key_params)),
        "amalgamated": False,
        # benchmark variant switches (VARIANT_SWITCHES), all off for a normal build
        "variant": SimpleNamespace(**{name: name in chosen for name in VARIANT_SWITCHES}),
        # the ingress hook (core parameter ingress): "xdp" or "tc"; plugin templates
        # are imported with context and may look at it
        "ingress_hook": spec.ingress_hook,
        # the stages in order: what each one's macros get (CONTRACT.md, "Stages")
        "stages": [SimpleNamespace(
            name=st.name, source=f"stage {st.name}", carrier=st.carrier,
            template=f"stage-{st.name}/{st.plugin.template}", offset=st.offset, size=st.size,
            settings=st.settings, kinds=st.plugin.kinds,
            histograms=sorted(st.plugin.histograms(st.values)),
            counters=tuple(st.plugin.counters(st.values)),
            labelled=[SimpleNamespace(name=name, label=lc.label, size=lc.size,
                                      max_labels=lc.max_labels, help=lc.help)
                      for name, lc in sorted(st.plugin.labelled_counters(st.values).items())],
            p=SimpleNamespace(**st.plugin.template_values(st.values)),
        ) for st in spec.stages],
    }
    files = {}
    for name, template in OUTPUTS.items():
        try:
            text = env.get_template(f"core/{template}").render(context)
        except jinja2.TemplateNotFound as exc:
            raise RenderError(f"template not found: {exc.name}") from exc
        except jinja2.UndefinedError as exc:
            raise RenderError(f"rendering {name}: {exc}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"{exc.filename}:{exc.lineno}: {exc.message}") from exc
        files[name] = _tidy(text)
    return Rendered(spec, files)


def _tidy(text: str) -> str:
    """Collapse runs of blank lines left by template control flow."""
    lines: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line and lines and not lines[-1]:
            continue
        lines.append(line)
    return "\n".join(lines).strip("\n") + "\n"
