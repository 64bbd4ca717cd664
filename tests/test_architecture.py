"""The core stays pure: domain rules and stages import no I/O framework (DESIGN.md).

Checked transitively over the project's own modules by reading their imports, like an
import-linter "forbidden" contract.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PURE_PACKAGES = ("cofid/domain", "cofid/stages")
FORBIDDEN = ("trio", "grpc", "textual", "httpx", "sqlalchemy", "anyio", "pymysql")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def module_path(name: str) -> Path | None:
    p = ROOT / (name.replace(".", "/") + ".py")
    if p.exists():
        return p
    p = ROOT / name.replace(".", "/") / "__init__.py"
    return p if p.exists() else None


def closure(start: Path) -> dict[str, set[str]]:
    """Every external import reachable from `start` through cofid modules, by module."""
    seen: dict[str, set[str]] = {}
    todo = [start]
    while todo:
        path = todo.pop()
        key = str(path.relative_to(ROOT))
        if key in seen:
            continue
        imps = imports_of(path)
        seen[key] = {i for i in imps if not i.startswith("cofid")}
        for i in imps:
            if i.startswith("cofid"):
                p = module_path(i)
                if p is not None:
                    todo.append(p)
    return seen


def test_pure_core_imports_no_io_framework():
    offenders = []
    for pkg in PURE_PACKAGES:
        for path in sorted((ROOT / pkg).glob("*.py")):
            for mod, externals in closure(path).items():
                bad = sorted(e for e in externals if e.split(".")[0] in FORBIDDEN)
                if bad:
                    offenders.append(f"{path.relative_to(ROOT)} → {mod} imports {bad}")
    assert not offenders, "\n".join(offenders)
