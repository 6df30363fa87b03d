"""The ``sfcframe`` command line.

Every SfcError becomes one line on stderr and its exit code (2 for usage,
plugin and parameter errors; 1 for compile and verifier failures). ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import import_module
from pathlib import Path
from typing import Any, Sequence

from sfcframe import __version__
from sfcframe.coreflags import add_core_flags, add_param_flag
from sfcframe.errors import CompileError, SfcError, VerifierError

EPILOG = """\
examples:
  sfcframe plugins
  sfcframe build --encap mpls --key tcpip -o out/
  sfcframe build --encap nsh --key metadata --param max_md_bytes=64 --check
  sfcframe up --name vnf1 --encap mpls --key tcpip --iface eth1 --iface eth2
  sfcframe stats vnf1 --watch 1
  sfcframe down vnf1
  sfcframe size --rate 2.5Mpps --delay 5ms
"""


#: subcommands whose parsers and handlers live in packages of their own, loaded
#: only when the command line names them: name -> (its line in ``sfcframe --help``,
#: module, function that adds its parser, its handler)
PACKAGE_COMMANDS = {
    "demo": ("build a namespace testbed, run real TCP through the proxy, check every packet",
             "sfcframe.demo.cli", "add_demo_parser", "run"),
    "bench": ("benchmarks: per-packet cost, memory (results in bench-results/)",
              "sfcframe.bench.cli", "add_bench_parser", "run_bench"),
}


def command_word(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (the
    top-level options take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The whole parser; of the :data:`PACKAGE_COMMANDS` only the one ``argv``
    names is built (and its package imported), the others are listed by name."""
    parser = argparse.ArgumentParser(
        prog="sfcframe",
        description="Generate, check and load eBPF caching SFC proxies.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sfcframe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = sub.add_parser(
        "plugins",
        help="list encapsulation and key plugins with their parameters",
        description="List the installed encapsulation (sfcframe.encaps) and key "
        "(sfcframe.keys) plugins, their distributions and parameters. Plugins that "
        "fail to import are listed with the reason and make the exit code 2.",
    )
    plugins.add_argument("-j", "--json", action="store_true", help="machine-readable output")

    build = sub.add_parser(
        "build",
        help="render the proxy's C (bcc's dialect); optionally compile and verify",
        description="Render the proxy for one encapsulation and one key strategy. "
        "Without -o the one compilation unit (sfc_proxy.c: header, ingress and egress "
        "programs in one text, in bcc's C dialect) goes to stdout; -o writes it and its "
        "three parts. --check compiles it with bcc and loads every program into the kernel "
        "verifier (needs root).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="parameters: see `sfcframe plugins`; qualify a name declared twice, "
        "e.g. --param mpls.pop=0",
    )
    build.add_argument("--encap", required=True, help="encapsulation plugin, e.g. mpls, nsh")
    build.add_argument("--key", required=True, help="key strategy plugin, e.g. tcpip, metadata")
    build.add_argument("--stage", action="append", default=[], metavar="STAGE",
                       help="metadata stage plugin, e.g. ioam (repeatable; they run in the "
                       "order given; its parameters: --param STAGE.NAME=VALUE)")
    add_param_flag(build, help="plugin or core parameter (repeatable)")
    add_core_flags(build)
    build.add_argument("-o", "--output", type=Path, help="directory to write the C files to")
    build.add_argument(
        "--check", action="store_true", help="compile with bcc and load into the verifier"
    )
    build.add_argument("-j", "--json", action="store_true", help="machine-readable summary")
    _runtime_parsers(sub)
    _package_parsers(sub, command_word(argv))
    _plugin_commands(sub)
    return parser


#: entry-point group of commands other distributions add (``sfcframe pot ...``)
COMMANDS_NAMESPACE = "sfcframe.commands"


def _plugin_commands(sub) -> None:
    """Subcommands of installed distributions: each entry point of group
    ``sfcframe.commands`` is a function ``add_parser(subparsers)`` that adds its
    parser and sets its handler with ``set_defaults(handler=f)``; ``f(args)``
    returns the exit code and raises :class:`SfcError` for one-line errors. A
    distribution that fails to import is left out (``sfcframe plugins`` shows why
    for its stages)."""
    from stevedore import ExtensionManager

    # a distribution that fails to import must not break the command line
    commands = ExtensionManager(COMMANDS_NAMESPACE, invoke_on_load=False,
                                on_load_failure_callback=lambda *_: None)
    for ext in sorted(commands, key=lambda e: e.name):
        if ext.name not in sub.choices:  # a built-in command keeps its name
            ext.plugin(sub)


def _runtime_parsers(sub) -> None:
    from sfcframe.runtime.cli import add_parsers

    add_parsers(sub)


def _package_parsers(sub, command: str | None) -> None:
    for name, (help_text, module, add_parser, _handler) in PACKAGE_COMMANDS.items():
        if name == command:
            getattr(import_module(module), add_parser)(sub, help=help_text)
        else:  # listed with its help line; nothing of its package is loaded
            sub.add_parser(name, help=help_text)


def _package_handler(command: str):
    _help, module, _add_parser, handler = PACKAGE_COMMANDS[command]
    return getattr(import_module(module), handler)


def _plugins(args: argparse.Namespace) -> int:
    from sfcframe import discovery
    from sfcframe.spec import CORE_PARAMS

    report: dict[str, Any] = {"core": {"params": [p.as_dict() for p in CORE_PARAMS]}}
    failures = []
    for kind in ("encap", "key", "stage"):
        loaded, errors = discovery.load_all(kind)
        failures += errors
        report[kind + "s"] = [
            {
                "name": lp.name,
                "distribution": f"{lp.distribution} {lp.version}",
                "description": lp.plugin.description,
                "params": [p.as_dict() for p in lp.plugin.params],
                **(_stage_report(lp.plugin) if kind == "stage" else {}),
            }
            for lp in loaded
        ]
    report["failures"] = [str(e) for e in failures]
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print_plugins(report)
    for failure in failures:
        print(f"sfcframe: {failure}", file=sys.stderr)
    return 2 if failures else 0


def _stage_report(plugin) -> dict[str, Any]:
    """A stage's carriers and runtime settings (with its parameters at their defaults)."""
    defaults = {p.name: p.default for p in plugin.params}
    return {"carriers": list(plugin.carriers),
            "settings": [p.as_dict() for p in plugin.settings(defaults)]}


def _print_plugins(report: dict[str, Any]) -> None:
    def params(items: list[dict]) -> None:
        if not items:
            print("      (no parameters)")
        for p in items:
            print(f"      {p['name']:<14} {p['type']:<6} default {str(p['default']):<6} "
                  f"range {p['range']:<12} {p['help']}")

    print("core parameters (every build):")
    params(report["core"]["params"])
    for kind, title in (("encaps", "encapsulations"), ("keys", "key strategies"),
                        ("stages", "metadata stages")):
        print(f"\n{title}:")
        for plugin in report[kind]:
            print(f"  {plugin['name']}  ({plugin['distribution']})  {plugin['description']}")
            params(plugin["params"])
            if "settings" in plugin:
                print(f"      rides: {', '.join(plugin['carriers'])}; runtime settings "
                      f"(sfcframe set NAME {plugin['name']}.SETTING=VALUE):")
                params(plugin["settings"])


def _build(args: argparse.Namespace) -> int:
    from sfcframe.composer import render
    from sfcframe.spec import resolve_spec

    from sfcframe.coreflags import merge

    raw = merge(dict(args.param), args, "build")
    spec = resolve_spec(args.encap, args.key, raw, tuple(args.stage))
    rendered = render(spec)
    summary: dict[str, Any] = {"spec": spec.as_dict(), "describe": spec.describe()}
    if args.output:
        written = rendered.write(args.output)
        summary["files"] = [str(p) for p in written]
    if args.check:
        summary["check"] = _check(rendered)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    elif not args.output and not args.check:
        sys.stdout.write(rendered.combined())
    else:
        _print_build(summary)
    return 0


def _check(rendered) -> dict[str, Any]:
    from sfcframe.cachemap import assoc_layout, table_key_size
    from sfcframe.loader import compile_and_load
    from sfcframe.maps import map_memory

    module = compile_and_load(rendered)
    try:
        memory = None
        cache_doc = None
        if not rendered.spec.static:  # mode=static has no cache map
            cache = module.table("sfc_cache")
            memory = map_memory(cache.get_fd() if hasattr(cache, "get_fd") else cache.map_fd)
            cache_doc = {**memory.as_dict(), "kind": rendered.spec.cache_kind}
            if rendered.spec.cache_kind == "assoc":
                cache_doc.update(assoc_layout(memory, table_key_size(cache),
                                              rendered.spec.value_size))
        return {
            "result": "OK",
            "license": module.license,
            "compile_seconds": round(module.compile_seconds, 3),
            "load_seconds": round(module.load_seconds, 3),
            "programs": {
                name: {
                    "type": prog.prog_type,
                    "hook": prog.hook,
                    "instructions": module.instructions[name],
                }
                for name, prog in module.programs.items()
            },
            "cache": cache_doc,
        }
    finally:
        module.close()


def _print_build(summary: dict[str, Any]) -> None:
    print(f"spec: {summary['describe']}")
    for path in summary.get("files", []):
        print(f"wrote {path}")
    check = summary.get("check")
    if check:
        for name, prog in check["programs"].items():
            print(f"verifier OK: {name} ({prog['type']}, {prog['hook']}) "
                  f"{prog['instructions']} instructions")
        cache = check["cache"] or {}
        if cache and cache.get("kind") == "assoc":
            print(
                f"cache=assoc: {cache['buckets']} buckets x {cache['ways']} slots = "
                f"{cache['capacity']} entries; slot: key {cache['key_size']} B + value "
                f"{cache['value_size']} B, 4 B of lanes; kernel charges {cache['memlock_bytes']} B "
                f"({cache['bytes_per_entry']} B/entry)"
            )
        elif cache and cache.get("kind") == "ring":
            print(
                f"cache=ring slot: 8 B tag + {cache['value_size'] - 8} B value (array index "
                f"{cache['key_size']} B); kernel charges {cache['memlock_bytes']} B for "
                f"{cache['max_entries']} slots ({cache['bytes_per_entry']} B/entry)"
            )
        elif cache:
            print(
                f"cache entry: key {cache['key_size']} B + value {cache['value_size']} B; "
                f"kernel charges {cache['memlock_bytes']} B for {cache['max_entries']} entries "
                f"({cache['bytes_per_entry']} B/entry)"
            )
        print(f"compile {check['compile_seconds']} s, load {check['load_seconds']} s: OK")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from sfcframe.runtime.cli import HANDLERS as runtime_handlers

    handlers = {"plugins": _plugins, "build": _build, **runtime_handlers}
    if args.command in PACKAGE_COMMANDS:
        handler = _package_handler(args.command)
    else:
        handler = handlers.get(args.command) or getattr(args, "handler", None)
    try:
        return handler(args)
    except VerifierError as exc:
        if args.debug:
            raise
        print(exc.log, file=sys.stderr)
        print(f"sfcframe: {exc}", file=sys.stderr)
        return exc.exit_code
    except CompileError as exc:
        if args.debug:
            raise
        if exc.log:
            print(exc.log, file=sys.stderr)
        print(f"sfcframe: {exc}", file=sys.stderr)
        return exc.exit_code
    except SfcError as exc:
        if args.debug:
            raise
        print(f"sfcframe: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
