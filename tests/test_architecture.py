"""The code's shape: one-way imports, no reach into another module's private names, and
modules small enough to read (or saying why not).  Import-time side effects on faiss are
tested in tests/memory/store/test_faiss.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hierarchy", "memory", "router")
SELF_NAMES = {"self", "cls", "mcs"}


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def package_of(path: Path) -> str:
    """The dotted package holding ``path`` (``memory.store`` for memory/store/_x.py)."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def own_private_names(tree: ast.Module) -> set[str]:
    """Private names the module itself defines: its functions, classes, and their attributes."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in SELF_NAMES:
                names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def private_reaches(path: Path) -> list[str]:
    """Every place ``path`` uses a private name that another module owns.

    * ``from x import _name`` / ``x._name`` for a name the module does not define itself;
    * ``import pkg._module`` or ``from pkg._module import`` where ``pkg`` is another package
      (a package's private modules are its own business; other packages use its ``__init__``).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    own = own_private_names(tree)
    here = package_of(path)
    rel = path.relative_to(ROOT)
    hits: list[str] = []

    def other_package_private(module: str) -> bool:
        parts = module.split(".")
        if parts[0] not in PACKAGES:
            return False
        for i, part in enumerate(parts):
            if part.startswith("_") and not part.startswith("__"):
                owner = ".".join(parts[:i])
                return owner != here and not here.startswith(owner + ".") and not owner.startswith(here + ".")
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against this package
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            if other_package_private(module):
                hits.append(f"{rel}:{node.lineno}: imports another package's private module {module}")
            ours = node.level > 0 or module.split(".")[0] in PACKAGES  # another library's privates are its risk
            for alias in node.names:
                if ours and alias.name.startswith("_") and not alias.name.startswith("__"):
                    hits.append(f"{rel}:{node.lineno}: imports private name {alias.name} from {module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if other_package_private(alias.name):
                    hits.append(f"{rel}:{node.lineno}: imports another package's private module {alias.name}")
        elif isinstance(node, ast.Attribute):
            name = node.attr
            if not name.startswith("_") or name.startswith("__") or name in own:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in SELF_NAMES:
                continue
            hits.append(f"{rel}:{node.lineno}: reaches private attribute .{name}")
    return hits


def test_the_scanner_finds_each_kind_of_reach(tmp_path):
    """The check can fail: a module with each kind of reach is caught, a clean one is not."""
    pkg = tmp_path / "router"
    pkg.mkdir()
    bad = pkg / "_bad.py"
    bad.write_text(
        "from memory._validation import as_ids\n"
        "from ._classifier import _helper\n"
        "from numpy import _private_ok\n"
        "import hierarchy._tree\n"
        "def f(clf):\n    return clf._cut\n"
    )
    good = pkg / "_good.py"
    good.write_text(
        "from memory import as_ids\nfrom ._errors import CLIError\n"
        "class A:\n    def __init__(self):\n        self._x = 1\n"
        "    def copy(self, other):\n        return other._x + self._x\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = private_reaches(bad)
        assert not private_reaches(good)
    finally:
        ROOT = saved
    assert len(found) == 4, found
    assert any("memory._validation" in h for h in found)
    assert any("_helper" in h for h in found)
    assert any("hierarchy._tree" in h for h in found)
    assert any("._cut" in h for h in found)


def test_no_module_reaches_another_modules_private_names():
    hits = [h for path in modules() for h in private_reaches(path)]
    assert not hits, "\n".join(hits)


def test_imports_flow_one_way():
    """hierarchy <- memory <- router: no module imports a package to its right."""
    rank = {p: i for i, p in enumerate(PACKAGES)}
    bad = []
    for path in modules():
        top = path.relative_to(ROOT).parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                root = name.split(".")[0]
                if root in rank and rank[root] > rank[top]:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not bad, "\n".join(bad)


def test_long_modules_say_why():
    """A module over 400 lines says in its docstring, after "Why one module:", why it is not split."""
    silent = []
    for path in modules():
        lines = path.read_text().count("\n")
        if lines > 400:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            if "Why one module:" not in doc:
                silent.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    assert not silent, "these modules are long and do not say why: " + ", ".join(silent)


def test_every_exported_name_resolves():
    """Each package's ``__all__`` names something real (router's names load on first use)."""
    import importlib

    for name in (*PACKAGES, "memory.embedding", "memory.store", "memory.milvus"):
        module = importlib.import_module(name)
        missing = [n for n in module.__all__ if getattr(module, n, None) is None]
        assert not missing, f"{name}: {missing}"


@pytest.mark.subprocess
def test_the_command_line_starts_without_heavy_imports():
    """``supersub --help`` imports neither torch nor scikit-learn."""
    import subprocess
    import sys

    code = ("import sys; from router.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'sklearn', 'faiss') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


#: Test modules that must reach inside a module, and why.  Everything else in tests/ uses public names only.
WHITE_BOX = {
    "tests/memory/store/test_lowprec.py": "forces the low-precision index below its measured thresholds and "
                                          "checks its top-k selection kernel against torch.topk",
    "tests/memory/store/test_persist.py": "injects a crash into the snapshot writer between data files and manifest",
    "tests/memory/store/test_visual_memory.py": "shrinks the query chunk to watch searches stay bounded",
}


def private_imports(path: Path) -> list[str]:
    """Each import in ``path`` of a private module or name of our packages."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for module in modules:
            parts = module.split(".")
            if parts[0] in PACKAGES and any(p.startswith("_") and not p.startswith("__") for p in parts[1:]):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {module}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            bad += [f"{path.relative_to(ROOT)}:{node.lineno} imports {a.name}" for a in node.names
                    if a.name.startswith("_")]
    return bad


def test_benchmarks_use_only_public_names():
    """A benchmark measures what users get: it imports the packages' public names, never private modules."""
    bad = [h for path in sorted((ROOT / "benchmarks").glob("*.py")) for h in private_imports(path)]
    assert not bad, "\n".join(bad)


def test_tests_use_only_public_names():
    """Tests use what users use, so modules can move freely; the few white-box tests are listed with a reason."""
    bad, stale = [], []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        hits = private_imports(path)
        if rel in WHITE_BOX:
            stale += [] if hits else [rel]
        else:
            bad += hits
    assert not bad, "\n".join(bad)
    assert not stale, f"these no longer reach private names; drop them from WHITE_BOX: {stale}"


#: router's sub-packages, lowest first; a module imports only from its own sub-package or lower ones.
#: The shared modules at router's root are level 0; twostage and network are siblings and independent.
ROUTER_LEVELS = {"": 0, "twostage": 1, "network": 1, "pipeline": 2, "report": 3, "explore": 4, "cli": 5}


def router_imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for each import of a router module in ``path``."""
    here = package_of(path).split(".")
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names = [module] if node.module or not node.level else [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out += [(node.lineno, n) for n in names if n == "router" or n.startswith("router.")]
    return out


def router_part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROUTER_LEVELS else ""


def layering_violations(root: Path) -> list[str]:
    bad = []
    for path in sorted((root / "router").rglob("*.py")):
        rel = path.relative_to(root)
        if rel == Path("router/__init__.py"):
            continue  # the package root re-exports every layer, lazily
        own = router_part(".".join(rel.with_suffix("").parts))
        for line, module in router_imports(path):
            if module == "router":
                bad.append(f"{rel}:{line} imports the router package itself (it re-exports every layer)")
                continue
            other = router_part(module)
            if other != own and ROUTER_LEVELS[other] >= ROUTER_LEVELS[own]:
                bad.append(f"{rel}:{line} imports {module}: {own or 'root'} may not import {other or 'root'}")
    return bad


def test_router_sub_packages_import_in_one_direction():
    """cli → explore → report → pipeline → twostage, network → the shared root modules, never back."""
    bad = layering_violations(ROOT)
    assert not bad, "\n".join(bad)


def test_the_layering_check_can_fail(tmp_path):
    for rel, text in {"router/__init__.py": "", "router/_errors.py": "from .twostage import X\n",
                      "router/twostage/__init__.py": "from ..network import Y\n",
                      "router/network/_a.py": "from .. import _errors\nfrom ..cli import main\n",
                      "router/cli/_b.py": "from ..report import Z\nimport router\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = layering_violations(tmp_path)
    finally:
        ROOT = saved
    assert len(found) == 4, found
    assert any("_errors.py" in h and "root may not import twostage" in h for h in found)
    assert any("twostage may not import network" in h for h in found)
    assert any("network may not import cli" in h for h in found)
    assert any("router package itself" in h for h in found)
