"""Architecture contracts (DESIGN.md "Layout", "Layer rules", "Keep the core pure").

An AST walk over every module of the project (cofid/, tui/, protos/) resolves each import
the way Python executes it, so `from package import module` counts as importing
`package.module`:

- `import a.b.c`                 -> a.b.c
- `from a import b`              -> a.b when a/b.py or a/b/__init__.py exists, else a (b is a name)
- `from a.b import x`            -> a.b.x when it is a module, else a.b
- `from . import x`, `from ..a import x`  (level > 0) -> resolved against the importing module
- `importlib.import_module("a.b")` and `__import__("a.b")` with a literal name -> a.b

Imports anywhere count: at module top, inside functions, under `if TYPE_CHECKING:`. For the
purity contract the walk is transitive through project modules, and importing a.b.c also
runs a/__init__.py and a/b/__init__.py, so those are followed too.

Production code is cofid/ (less cofid/testing/) and tui/. The checker is tested on scratch
trees at the bottom of this file, and on the real tree with a scratch line appended.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# The map, as data. Keep it in step with DESIGN.md's "Layout" and "Layer rules".
# ---------------------------------------------------------------------------------------------

PROJECT_PACKAGES = ("cofid", "tui", "protos")
PRODUCTION_PACKAGES = ("cofid", "tui")
NOT_PRODUCTION = ("cofid.testing",)  # what tests and benchmarks share; production never imports it
TESTING = "cofid.testing"
NEUTRAL = frozenset({"cofid"})  # cofid/__init__.py: any module may import it; it imports nothing

# Module-name prefix -> layer (the longest matching prefix wins).
LAYER_OF: dict[str, str] = {
    "cofid.cli": "entry",  # cofid's command line
    "cofid.commands": "entry",
    "cofid.daemon": "daemon",  # `cofid serve`: the daemon's composition root
    "cofid.demo": "demo",  # `make demo`
    "cofid.inputs": "inputs",  # watcher, sdnotify
    "cofid.api": "api",
    "cofid.service": "service",
    "cofid.plans": "plans",
    "cofid.engine": "engine",
    "cofid.stages": "stages",
    "cofid.backends": "backends",
    "cofid.store": "store",
    "cofid.domain": "domain",
    "cofid.config": "config",
    "cofid.ctl": "ctl",  # cofictl
    "cofid.simworker": "simworker",  # the shipped simulated GPU host
    "tui": "tui",
    "protos": "protos",
}

# The stack, top to bottom: imports point down it, never up, and never sideways between the
# two rooms that share a tier (inputs/api, backends/store).
STACK: tuple[tuple[str, ...], ...] = (
    ("inputs", "api"),
    ("service",),
    ("plans",),
    ("engine",),
    ("stages",),
    ("backends", "store"),
    ("domain",),
)


def _below(layer: str) -> set[str]:
    tier = next(i for i, rooms in enumerate(STACK) if layer in rooms)
    return {room for rooms in STACK[tier + 1 :] for room in rooms}


_STACK_ROOMS = {room for rooms in STACK for room in rooms}

# Layer -> the other layers it may import. config is a leaf over domain that every layer but
# domain may use. The composition roots may import anything of the stack.
MAY_IMPORT: dict[str, set[str]] = {
    **{room: _below(room) | {"config"} for rooms in STACK for room in rooms},
    "domain": set(),
    "config": {"domain"},
    "api": _below("api") | {"config", "protos"},
    "daemon": _STACK_ROOMS | {"config", "protos"},
    "entry": _STACK_ROOMS | {"config", "daemon"},
    # `make demo` runs the whole system: a simulated GPU host, the daemon, a batch, cofictl.
    "demo": _STACK_ROOMS | {"config", "daemon", "entry", "simworker", "ctl"},
    "simworker": {"backends", "domain", "config"},
    "ctl": {"config", "protos"},  # reaches the daemon only through gRPC
    "tui": {"config", "protos"},
    "protos": set(),
}
# Single modules a layer may import although their layer is closed to it.
# cofid.ctl.escape: the one rule for CSV cells and terminal text, shared with cofictl.
MAY_IMPORT_MODULES: dict[str, set[str]] = {"tui": {"cofid.ctl.connect", "cofid.ctl.escape"}}

IO_FRAMEWORKS = (
    "trio",
    "anyio",
    "grpc",
    "grpc_health",
    "grpc_reflection",
    "google.protobuf",
    "httpx",
    "httpcore",
    "h11",
    "sqlalchemy",
    "pymysql",
    "textual",
    "watchfiles",
)
# Must not reach an I/O framework, even through other project modules.
PURE = ("cofid.domain", "cofid.plans", "cofid.stages", "tui.model")

SQL_LIBRARIES = ("sqlalchemy", "pymysql")
SQL_ROOMS = ("cofid.store",)
GRPC_LIBRARIES = ("grpc", "grpc_health", "grpc_reflection", "google.protobuf", "protos")
GRPC_ROOMS = ("cofid.api", "cofid.ctl", "tui", "cofid.daemon")

MAX_LINES = 400


# ---------------------------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------------------------


def within(name: str, prefixes: Iterable[str]) -> bool:
    """`name` is one of `prefixes` or a submodule of one."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@dataclass(frozen=True)
class Import:
    name: str  # the dotted module name the statement makes Python import
    line: int
    project: bool  # one of the project's own modules (PROJECT_PACKAGES)


def _literal_import_call(node: ast.Call) -> str | None:
    func = node.func
    is_import_module = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in ("import_module", "__import__")
    )
    if not is_import_module or not node.args:
        return None
    arg = node.args[0]
    if (
        isinstance(arg, ast.Constant)
        and isinstance(arg.value, str)
        and not arg.value.startswith(".")
    ):
        return arg.value
    return None


@cache
def _raw_imports(source: str) -> tuple[tuple[int, int, str | None, tuple[str, ...]], ...]:
    """(line, level, module, names) per import; `names` is () for `import a.b`."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, 0, a.name, ()) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append((node.lineno, node.level, node.module, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Call) and (name := _literal_import_call(node)) is not None:
            out.append((node.lineno, 0, name, ()))
    return tuple(out)


class Project:
    """The project's modules under `root`; `overrides` replaces (or adds) sources by path."""

    def __init__(self, root: Path, overrides: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.overrides = dict(overrides or {})
        self.paths: dict[str, str] = {}  # module name -> path relative to root
        rels = {
            str(p.relative_to(root))
            for pkg in PROJECT_PACKAGES
            if (root / pkg).is_dir()
            for p in (root / pkg).rglob("*.py")
            if "__pycache__" not in p.parts
        }
        rels.update(self.overrides)
        for rel in sorted(rels):
            parts = rel[: -len(".py")].split("/")
            if parts[-1] == "__init__":
                parts.pop()
            self.paths[".".join(parts)] = rel
        self._imports: dict[str, list[Import]] = {}

    # -- modules

    def modules(self, prefixes: Iterable[str] = PROJECT_PACKAGES) -> list[str]:
        prefixes = tuple(prefixes)
        return sorted(m for m in self.paths if within(m, prefixes))

    def production(self) -> list[str]:
        return [m for m in self.modules(PRODUCTION_PACKAGES) if not within(m, NOT_PRODUCTION)]

    def source(self, module: str) -> str:
        rel = self.paths[module]
        if rel in self.overrides:
            return self.overrides[rel]
        return (self.root / rel).read_text(encoding="utf-8")

    def is_package(self, module: str) -> bool:
        return self.paths[module].endswith("__init__.py")

    def existing(self, name: str) -> str | None:
        """The longest prefix of `name` that is a project module (Python ran all of them)."""
        parts = name.split(".")
        while parts:
            candidate = ".".join(parts)
            if candidate in self.paths:
                return candidate
            parts.pop()
        return None

    # -- imports

    def imports(self, module: str) -> list[Import]:
        if module not in self._imports:
            self._imports[module] = list(self._resolve(module))
        return self._imports[module]

    def _resolve(self, module: str) -> Iterable[Import]:
        for line, level, name, names in _raw_imports(self.source(module)):
            if level:
                package = module if self.is_package(module) else module.rpartition(".")[0]
                parts = package.split(".") if package else []
                if level - 1 > len(parts):
                    continue  # beyond the top package: Python refuses it too
                base = ".".join(parts[: len(parts) - (level - 1)])
                name = f"{base}.{name}" if name and base else (name or base)
            assert name, f"{module}:{line}: an import with no module"
            project = within(name, PROJECT_PACKAGES)
            if not names:
                yield Import(name, line, project)
                continue
            # `from a import b`: b is a submodule when its file exists, else a name in a.
            subs = [f"{name}.{alias}" for alias in names if alias != "*"]
            if project:
                modules = [sub for sub in subs if sub in self.paths]
                if len(modules) < len(names):
                    yield Import(name, line, True)
                yield from (Import(sub, line, True) for sub in modules)
            else:
                yield Import(name, line, False)
                # b could be a module (`from google import protobuf`): the name checks see it.
                yield from (Import(sub, line, False) for sub in subs)

    def external(self, module: str) -> list[Import]:
        return [i for i in self.imports(module) if not i.project]

    def internal(self, module: str) -> list[Import]:
        return [i for i in self.imports(module) if i.project]

    def runs(self, name: str) -> list[str]:
        """The project modules Python executes to import `name`: its packages, then it."""
        target = self.existing(name)
        if target is None:
            return []
        parts = target.split(".")
        return [m for i in range(1, len(parts) + 1) if (m := ".".join(parts[:i])) in self.paths]


def layer_of(module: str) -> str | None:
    if module in NEUTRAL:
        return "neutral"
    best = max((p for p in LAYER_OF if within(module, [p])), key=len, default=None)
    return LAYER_OF[best] if best else None


def _rel(project: Project, module: str) -> str:
    return project.paths.get(module, module)


# ---- (a) purity


def purity_offenders(project: Project, starts: Iterable[str]) -> list[str]:
    """For each start module, each I/O framework it reaches, with the shortest chain."""
    offenders = []
    for start in starts:
        # BFS over executed project modules; `via[m]` = (importer, line) for the chain.
        via: dict[str, tuple[str, int] | None] = {m: None for m in project.runs(start)}
        queue = deque(via)
        reached: dict[str, tuple[str, Import]] = {}
        while queue:
            mod = queue.popleft()
            for imp in project.external(mod):
                for fw in IO_FRAMEWORKS:
                    if within(imp.name, [fw]) and fw not in reached:
                        reached[fw] = (mod, imp)
            for imp in project.internal(mod):
                for nxt in project.runs(imp.name):
                    if nxt not in via:
                        via[nxt] = (mod, imp.line)
                        queue.append(nxt)
        for fw, (mod, imp) in sorted(reached.items()):
            chain = [f"{fw} ({_rel(project, mod)}:{imp.line})"]
            cur = mod
            while (step := via[cur]) is not None:
                chain.append(f"{cur} ({_rel(project, step[0])}:{step[1]})")
                cur = step[0]
            chain.append(cur)
            offenders.append(f"{_rel(project, start)} reaches {fw}: " + " <- ".join(chain))
    return offenders


def pure_modules(project: Project) -> list[str]:
    return project.modules(PURE)


# ---- (b) layers


def unmapped_modules(project: Project) -> list[str]:
    return [
        f"{_rel(project, m)} ({m}) is in no room of DESIGN.md's Layout"
        for m in project.production()
        if layer_of(m) is None
    ]


def layer_offenders(project: Project) -> list[str]:
    offenders = []
    for mod in project.production():
        layer = layer_of(mod)
        if layer is None:
            continue  # unmapped_modules reports it
        if layer == "neutral":
            offenders += [
                f"{_rel(project, mod)}:{i.line}: the package root imports {i.name}"
                for i in project.internal(mod)
            ]
            continue
        for imp in project.internal(mod):
            if within(imp.name, [TESTING]):
                continue  # contract (d)
            target = layer_of(imp.name)
            if target in (layer, "neutral"):
                continue
            if target in MAY_IMPORT[layer] or imp.name in MAY_IMPORT_MODULES.get(layer, ()):
                continue
            where = f"{_rel(project, mod)}:{imp.line}"
            if target is None:
                offenders.append(f"{where}: {layer} imports {imp.name}, which is in no room")
            else:
                offenders.append(f"{where}: {layer} imports {imp.name} ({target})")
    return offenders


# ---- (c) who may import SQL and gRPC


def direct_import_offenders(
    project: Project, libraries: Iterable[str], rooms: Iterable[str]
) -> list[str]:
    libraries, rooms = tuple(libraries), tuple(rooms)
    offenders = []
    for mod in project.production():
        if within(mod, rooms):
            continue
        lines = set()  # one report per statement (`from a import b` also records a.b)
        for imp in project.imports(mod):
            if within(imp.name, libraries) and imp.line not in lines:
                lines.add(imp.line)
                offenders.append(f"{_rel(project, mod)}:{imp.line}: imports {imp.name}")
    return offenders


# ---- (d) testing


def imports_of_testing(project: Project) -> list[str]:
    return [
        f"{_rel(project, mod)}:{imp.line}: imports {imp.name}"
        for mod in project.production()
        for imp in project.internal(mod)
        if within(imp.name, [TESTING])
    ]


# ---- (e) size


def long_modules(project: Project) -> list[str]:
    return [
        f"{_rel(project, mod)}: {n} lines"
        for mod in project.production()
        if (n := len(project.source(mod).splitlines())) > MAX_LINES
    ]


# ---- (f) cycles


def import_cycles(project: Project) -> list[list[str]]:
    """Strongly connected components (size > 1) of the production import graph, each as a
    cycle through its members."""
    nodes = project.production()
    node_set = set(nodes)
    graph = {
        m: sorted(
            {t for i in project.internal(m) if (t := project.existing(i.name)) in node_set} - {m}
        )
        for m in nodes
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in nodes:  # Tarjan's algorithm, iterative (no recursion limit)
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(_cycle_in(graph, set(component)))
    return components


def _cycle_in(graph: dict[str, list[str]], members: set[str]) -> list[str]:
    """One closed path through a strongly connected component, from its first member."""
    start = min(members)
    prev: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in graph[node]:
            if nxt == start:
                path = [node]
                while (p := prev[path[-1]]) is not None:
                    path.append(p)
                return [*reversed(path), start]
            if nxt in members and nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {sorted(members)}")


# ---------------------------------------------------------------------------------------------
# The contracts, on the real tree
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> Project:
    return Project(ROOT)


def _report(title: str, offenders: list[str]) -> str:
    return f"{title} ({len(offenders)}):\n  " + "\n  ".join(offenders)


def test_pure_core_reaches_no_io_framework(project: Project) -> None:
    offenders = purity_offenders(project, pure_modules(project))
    assert not offenders, _report(
        "domain/, plans/, stages/ and tui/model.py must import no I/O framework, "
        "not even through other project modules",
        offenders,
    )


def test_every_production_module_has_a_room(project: Project) -> None:
    offenders = unmapped_modules(project)
    assert not offenders, _report(
        "modules outside DESIGN.md's Layout (move them, or add the room to LAYER_OF and DESIGN.md)",
        offenders,
    )


def test_imports_point_down_the_layers(project: Project) -> None:
    offenders = layer_offenders(project)
    assert not offenders, _report(
        "imports against the layer rules (inputs/api -> service -> plans -> engine -> stages "
        "-> backends/store -> domain; ctl/ and tui/ only through gRPC)",
        offenders,
    )


def test_only_the_store_imports_sql_libraries(project: Project) -> None:
    offenders = direct_import_offenders(project, SQL_LIBRARIES, SQL_ROOMS)
    assert not offenders, _report("SQL libraries imported outside cofid/store/", offenders)


def test_only_the_grpc_rooms_import_grpc_and_protos(project: Project) -> None:
    offenders = direct_import_offenders(project, GRPC_LIBRARIES, GRPC_ROOMS)
    assert not offenders, _report(
        "gRPC/protobuf imported outside cofid/api/, cofid/ctl/, tui/ and cofid/daemon.py",
        offenders,
    )


def test_production_never_imports_testing(project: Project) -> None:
    offenders = imports_of_testing(project)
    assert not offenders, _report("production modules importing cofid.testing", offenders)


def test_no_production_module_over_400_lines(project: Project) -> None:
    offenders = long_modules(project)
    assert not offenders, _report(f"production modules over {MAX_LINES} lines", offenders)


def test_no_import_cycles(project: Project) -> None:
    cycles = import_cycles(project)
    assert not cycles, _report(
        "import cycles among production modules", [" -> ".join(c) for c in cycles]
    )


def test_layer_map_covers_every_room_it_names() -> None:
    named = set(LAYER_OF.values())
    assert named == set(MAY_IMPORT), (named ^ set(MAY_IMPORT), "LAYER_OF and MAY_IMPORT disagree")
    for layer, allowed in MAY_IMPORT.items():
        assert allowed <= named, (layer, allowed - named)
    assert "config" not in MAY_IMPORT["domain"]


# ---------------------------------------------------------------------------------------------
# The checker, tested: scratch edits to the real tree, then scratch trees
# ---------------------------------------------------------------------------------------------

_REAL = Project(ROOT)
DOMAIN_AND_PLANS = _REAL.modules(["cofid.domain", "cofid.plans"])


def _appended(module: str, line: str) -> Project:
    rel = _REAL.paths[module]
    return Project(ROOT, {rel: _REAL.source(module) + f"\n{line}\n"})


@pytest.mark.parametrize("module", DOMAIN_AND_PLANS)
def test_scratch_store_import_in_domain_or_plans_is_caught(module: str) -> None:
    # plans sit above the store in the stack, so for them purity is the contract that bites.
    scratch = _appended(module, "from cofid.store import repo")
    rel = scratch.paths[module]
    if within(module, ["cofid.domain"]):
        layers = [o for o in layer_offenders(scratch) if o.startswith(rel + ":")]
        assert any("domain imports cofid.store.repo (store)" in o for o in layers), layers
    assert any(
        o.startswith(f"{rel} reaches sqlalchemy") for o in purity_offenders(scratch, [module])
    )


@pytest.mark.parametrize("module", _REAL.modules(["cofid.domain"]))
def test_scratch_trio_import_in_domain_is_caught(module: str) -> None:
    scratch = _appended(module, "import trio")
    rel = scratch.paths[module]
    found = purity_offenders(scratch, [module])
    assert any(o.startswith(f"{rel} reaches trio: trio ({rel}:") for o in found), found


def scratch_tree(tmp_path: Path, files: Mapping[str, str]) -> Project:
    """Writes `files` under tmp_path, with an __init__.py in every package on the way."""
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        for parent in path.relative_to(tmp_path).parents:
            if str(parent) != "." and not (tmp_path / parent / "__init__.py").exists():
                (tmp_path / parent / "__init__.py").write_text("", encoding="utf-8")
    return Project(tmp_path)


CLEAN = {
    "cofid/domain/model.py": "import dataclasses\n",
    "cofid/domain/ops.py": "from cofid.domain import model\nfrom .model import x\n",
    "cofid/store/repo.py": "import sqlalchemy as sa\nfrom cofid.domain.model import y\n",
    "cofid/store/__init__.py": "from cofid.store import repo\n",
    "cofid/plans/batch.py": "from cofid.domain import ops\nfrom cofid.config import Config\n",
    "cofid/config/__init__.py": "from cofid.domain.model import z\n",
    "cofid/api/servicer.py": "import grpc\nfrom protos.cofi.v1 import cofi_pb2\nimport cofid.service\n",
    "cofid/service/__init__.py": "from ..plans import batch\nfrom ..store import repo\n",
    "cofid/ctl/connect.py": "import grpc\n",
    "tui/model.py": "import dataclasses\nfrom cofid import __version__\n",
    "tui/config.py": "import textual\nfrom cofid.ctl.connect import resolve_target\n",
    "protos/cofi/v1/cofi_pb2.py": "from google.protobuf import message\n",
    "cofid/testing/batches.py": "import sqlalchemy\nfrom cofid.store import repo\n",
}


def _all_offenders(project: Project) -> list[str]:
    return [
        *purity_offenders(project, pure_modules(project)),
        *unmapped_modules(project),
        *layer_offenders(project),
        *direct_import_offenders(project, SQL_LIBRARIES, SQL_ROOMS),
        *direct_import_offenders(project, GRPC_LIBRARIES, GRPC_ROOMS),
        *imports_of_testing(project),
        *long_modules(project),
        *(" -> ".join(c) for c in import_cycles(project)),
    ]


def test_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    assert _all_offenders(scratch_tree(tmp_path, CLEAN)) == []


STORE_IMPORTS = [
    "from cofid.store import repo",
    "import cofid.store.repo",
    "import cofid.store.repo as r",
    "from cofid.store.repo import y",
    "from cofid import store",
    "from ..store import repo",
    "from ..store.repo import y",
    "from .. import store",
    "def later():\n    from cofid.store import repo",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cofid.store import repo",
    "import importlib\nimportlib.import_module('cofid.store.repo')",
]


@pytest.mark.parametrize("package", ["domain", "plans"])
@pytest.mark.parametrize("line", STORE_IMPORTS)
def test_checker_catches_a_store_import_in_the_pure_core(
    tmp_path: Path, package: str, line: str
) -> None:
    files = dict(CLEAN)
    files[f"cofid/{package}/scratch.py"] = line + "\n"
    project = scratch_tree(tmp_path, files)
    module = f"cofid.{package}.scratch"
    if package == "domain":  # plans may import the store's layer, never what it reaches
        layers = layer_offenders(project)
        assert any(o.startswith("cofid/domain/scratch.py:") and "(store)" in o for o in layers), (
            layers
        )
    pure = purity_offenders(project, [module])
    assert any(o.startswith(f"cofid/{package}/scratch.py reaches sqlalchemy") for o in pure), pure


@pytest.mark.parametrize(
    "line",
    [
        "import trio",
        "import trio.lowlevel",
        "from trio import sleep",
        "def later():\n    import trio",
        "from . import sibling",  # sibling imports trio: caught transitively
        "from cofid.domain.sibling import x",
        "from google import protobuf",
        "import textual.app",
    ],
)
def test_checker_catches_an_io_framework_in_domain(tmp_path: Path, line: str) -> None:
    files = dict(CLEAN)
    files["cofid/domain/scratch.py"] = line + "\n"
    files["cofid/domain/sibling.py"] = "import trio\nx = 1\n"
    project = scratch_tree(tmp_path, files)
    found = purity_offenders(project, ["cofid.domain.scratch"])
    assert any(o.startswith("cofid/domain/scratch.py reaches ") for o in found), found


def test_checker_follows_package_inits(tmp_path: Path) -> None:
    # Importing cofid.domain.model runs cofid/domain/__init__.py: its imports count.
    files = dict(CLEAN)
    files["cofid/domain/__init__.py"] = "import httpx\n"
    found = purity_offenders(scratch_tree(tmp_path, files), ["cofid.domain.model"])
    assert found == [
        "cofid/domain/model.py reaches httpx: httpx (cofid/domain/__init__.py:1) <- cofid.domain"
    ], found


def test_checker_reports_the_chain(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["cofid/plans/scratch.py"] = "x = 1\nfrom cofid.store import repo\n"
    found = purity_offenders(scratch_tree(tmp_path, files), ["cofid.plans.scratch"])
    assert found == [
        "cofid/plans/scratch.py reaches sqlalchemy: sqlalchemy (cofid/store/repo.py:1) "
        "<- cofid.store.repo (cofid/plans/scratch.py:2) <- cofid.plans.scratch"
    ], found


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "cofid/engine/run.py",
            "from cofid.service import x\n",
            "engine imports cofid.service (service)",
        ),
        (
            "cofid/store/repo2.py",
            "from cofid.backends.base import x\n",
            "store imports cofid.backends.base",
        ),
        (
            "cofid/domain/x.py",
            "from cofid.config import Config\n",
            "domain imports cofid.config (config)",
        ),
        (
            "cofid/inputs/watcher.py",
            "from cofid.api import servicer\n",
            "inputs imports cofid.api.servicer",
        ),
        (
            "cofid/ctl/main.py",
            "from cofid.service import x\n",
            "ctl imports cofid.service (service)",
        ),
        ("tui/app.py", "import cofid.ctl.main\n", "tui imports cofid.ctl.main (ctl)"),
        (
            "cofid/store/repo2.py",
            "from cofid.app import x\n",
            "imports cofid.app, which is in no room",
        ),
    ],
)
def test_checker_catches_an_upward_or_sideways_import(
    tmp_path: Path, path: str, text: str, expected: str
) -> None:
    files = {**CLEAN, path: text}
    found = layer_offenders(scratch_tree(tmp_path, files))
    assert any(o.startswith(path + ":1: ") and expected in o for o in found), found


def test_checker_catches_the_other_contracts(tmp_path: Path) -> None:
    files = {
        **CLEAN,
        "cofid/app.py": "x = 1\n",
        "cofid/engine/run.py": "import sqlalchemy\nfrom cofid.testing import batches\n",
        "cofid/service/x.py": "from grpc import StatusCode\nimport protos.cofi.v1.cofi_pb2\n",
        "cofid/backends/a.py": "from cofid.backends import b\n",
        "cofid/backends/b.py": "from . import c\n",
        "cofid/backends/c.py": "import cofid.backends.a\n",
        "cofid/domain/long.py": "x = 1\n" * (MAX_LINES + 1),
    }
    project = scratch_tree(tmp_path, files)
    assert unmapped_modules(project) == [
        "cofid/app.py (cofid.app) is in no room of DESIGN.md's Layout"
    ]
    assert direct_import_offenders(project, SQL_LIBRARIES, SQL_ROOMS) == [
        "cofid/engine/run.py:1: imports sqlalchemy"
    ]
    assert direct_import_offenders(project, GRPC_LIBRARIES, GRPC_ROOMS) == [
        "cofid/service/x.py:1: imports grpc",
        "cofid/service/x.py:2: imports protos.cofi.v1.cofi_pb2",
    ]
    assert imports_of_testing(project) == ["cofid/engine/run.py:2: imports cofid.testing.batches"]
    assert long_modules(project) == [f"cofid/domain/long.py: {MAX_LINES + 1} lines"]
    assert import_cycles(project) == [
        ["cofid.backends.a", "cofid.backends.b", "cofid.backends.c", "cofid.backends.a"]
    ]


def imports_of(path: Path) -> set[str]:
    """The absolute module names one file imports (a quick view for single-file checks,
    such as tests/tui/test_model.py's)."""
    out: set[str] = set()
    for _, level, module, _names in _raw_imports(path.read_text(encoding="utf-8")):
        if level == 0 and module is not None:
            out.add(module)
    return out
