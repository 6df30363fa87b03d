"""The import layers of the package, read from the source with ``ast``.

Top down: the command line (``sfcframe.cli``, ``sfcframe.__main__``); the demo
and the benchmarks (``sfcframe.demo``, ``sfcframe.bench``); the runtime and the
test kit (``sfcframe.runtime``, ``sfcframe.testkit``); the core (every other
module of ``sfcframe``: spec, the plugin contracts, composer, loader, params,
...). A module imports only from layers below its own, or from its own layer
when that makes no cycle. The built-in plugins (``sfcframe.encaps``, which is
the ``encaps/`` directory, and ``sfcframe.keys``) implement the core's contracts:
they import the core and each other, and nothing else imports them; the
framework reaches them through their entry points. Imports inside functions
count as much as the module's own.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: where each package's modules are (sfcframe.encaps is the encaps/ directory)
SOURCES = {"sfcframe": ROOT / "sfcframe", "sfcframe.encaps": ROOT / "encaps"}

#: the layers, top down, each with the module prefixes that belong to it
LAYERS = (
    ("cli", ("sfcframe.cli", "sfcframe.__main__")),
    ("demo+bench", ("sfcframe.demo", "sfcframe.bench")),
    ("runtime+testkit", ("sfcframe.runtime", "sfcframe.testkit")),
    ("core", ("sfcframe",)),
)
RANK = {name: len(LAYERS) - index for index, (name, _) in enumerate(LAYERS)}
#: the built-in plugins: they import the core and other plugins only, and only
#: plugins import them
PLUGINS = ("sfcframe.encaps", "sfcframe.keys")
PLUGIN_IMPORTS = {"plugins", "core"}

# Known violations, each (importer, imported). The benchmark modules are being
# reworked on a branch of their own; delete these entries once it is merged:
KNOWN_UPWARD = {
    # the cost benchmark builds packets with the built-in plugins' own code
    ("sfcframe.bench.cost", "sfcframe.encaps.nsh.scapy_layers"),
    ("sfcframe.bench.cost", "sfcframe.encaps.srv6.headers"),
    ("sfcframe.bench.cost", "sfcframe.keys.esp"),
    ("sfcframe.bench.cost", "sfcframe.keys.icmp"),
    ("sfcframe.bench.cost", "sfcframe.keys.rtp"),
    ("sfcframe.bench.cost", "sfcframe.keys.udp"),
}
KNOWN_CYCLES = {
    # cost and breakdown import each other
    frozenset({"sfcframe.bench.cost", "sfcframe.bench.breakdown"}),
}


def modules() -> dict[str, Path]:
    """Every module's dotted name and its file."""
    found = {}
    for package, base in SOURCES.items():
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _imported_names(name: str, path: Path, tree: ast.AST):
    """(line, dotted name) of every import in the module, anywhere in it. A
    package's ``__init__`` that Python runs on the way to a submodule is not
    counted: the import is of the module it names."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:  # pkg.name: the submodule if it is one, else pkg
                yield node.lineno, f"{source}.{alias.name}"


def import_graph() -> dict[str, dict[str, int]]:
    """importer -> {imported module of the package: first line that imports it}."""
    known = modules()

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        edges = graph.setdefault(name, {})
        for line, dotted in _imported_names(name, path, ast.parse(path.read_text(), str(path))):
            target = owner(dotted)
            if target and target != name:
                edges.setdefault(target, line)
    return graph


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer(module: str) -> str:
    """The layer of a module: ``plugins``, or the first of :data:`LAYERS`, top
    down, whose prefixes it falls under."""
    if _under(module, PLUGINS):
        return "plugins"
    return next(name for name, prefixes in LAYERS if _under(module, prefixes))


def allowed(importer: str, imported: str) -> bool:
    """Whether the layers allow ``importer`` to import ``imported`` (cycles aside)."""
    mine, theirs = layer(importer), layer(imported)
    if mine == "plugins" or theirs == "plugins":
        return mine == "plugins" and theirs in PLUGIN_IMPORTS
    return RANK[mine] >= RANK[theirs]


def upward_imports(graph: dict[str, dict[str, int]]) -> set[tuple[str, str]]:
    return {(a, b) for a, edges in graph.items() for b in edges if not allowed(a, b)}


def cycles(graph: dict[str, dict[str, int]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, {}):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _describe(graph, pairs) -> str:
    return "\n".join(f"  {a} ({layer(a)}) imports {b} ({layer(b)}) at line {graph[a][b]}"
                     for a, b in sorted(pairs))


def test_no_import_goes_up_a_layer():
    graph = import_graph()
    found = upward_imports(graph)
    new = found - KNOWN_UPWARD
    assert not new, "imports against the layers:\n" + _describe(graph, new)
    gone = KNOWN_UPWARD - found
    assert not gone, f"no longer found, delete from KNOWN_UPWARD: {sorted(gone)}"


def test_no_import_cycle():
    graph = import_graph()
    found = cycles(graph)
    new = found - KNOWN_CYCLES
    assert not new, "import cycles:\n" + "\n".join(
        "  " + " <-> ".join(sorted(c)) for c in sorted(new, key=sorted))
    gone = KNOWN_CYCLES - found
    assert not gone, f"no longer found, delete from KNOWN_CYCLES: {sorted(map(sorted, gone))}"


def test_the_checks_catch_what_they_look_for():
    """The rules themselves, on a made-up graph: an upward import, a plugin
    imported by the framework, and a cycle of three."""
    graph = {
        "sfcframe.spec": {"sfcframe.runtime.state": 1},
        "sfcframe.runtime.state": {"sfcframe.encaps.mpls": 2},
        "sfcframe.encaps.mpls": {"sfcframe.plugin": 3},
        "sfcframe.demo.a": {"sfcframe.demo.b": 1},
        "sfcframe.demo.b": {"sfcframe.demo.c": 1},
        "sfcframe.demo.c": {"sfcframe.demo.a": 1},
    }
    assert upward_imports(graph) == {("sfcframe.spec", "sfcframe.runtime.state"),
                                     ("sfcframe.runtime.state", "sfcframe.encaps.mpls")}
    assert cycles(graph) == {frozenset({"sfcframe.demo.a", "sfcframe.demo.b", "sfcframe.demo.c"})}

