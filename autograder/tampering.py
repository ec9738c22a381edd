"""Find and neutralise code in a submission that tampers with the tests instead of solving the exercise.

Test cells run in the student's kernel, after the student's code. ``dlcourse.testing`` already keeps its own
references to the NumPy functions it needs (taken in the locked import cell, before any student code), so a
patched ``np.allclose`` does not fool it. What it cannot defend against is code that changes the test cells'
world itself: rebinding ``assert_close``, patching a module the tests use (``np.testing.assert_allclose = ...``,
``setattr(torch, ...)``, ``sys.modules[...] = ...``), reaching into the interpreter (``get_ipython()`` hooks,
frames, ``gc.get_referrers``, ``ctypes``), reading the tests' source from IPython's history (``In``), or
hiding any of that in ``exec``/``eval``.

:func:`scan` reads the student-editable code cells statically (nothing is executed) and reports each such
statement; :func:`neutralize` replaces each one with ``pass`` and a comment before the notebook runs. A
submission that does nothing of the kind is left exactly as it was. A tampering submission keeps the points its
honest code earns and cannot gain any; the grader flags it for the instructor.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache

from nbformat import NotebookNode

from autograder.notebooks import nbgrader_meta

# Modules the tests rely on: assigning to their attributes (or their submodules') is tampering.
PROTECTED_MODULES = {"numpy", "torch", "dlcourse", "builtins", "sys", "math", "IPython", "ipykernel", "random",
                     "unittest", "operator", "functools", "importlib", "inspect", "types", "os"}
# Calls that run code the scanner cannot read, reach other frames or objects, or re-import a patched module,
# by their full name (``model.eval()`` is not ``eval()``).
FORBIDDEN_CALLS = {"exec", "eval", "compile", "__import__", "breakpoint", "importlib.reload", "importlib.import_module",
                   "sys.settrace", "sys.setprofile", "sys._getframe", "threading.settrace", "threading.setprofile",
                   "inspect.currentframe", "inspect.stack", "inspect.getouterframes", "gc.get_referrers",
                   "gc.get_referents", "gc.get_objects"}
SETATTR_CALLS = {"setattr", "delattr", "__setattr__", "__delattr__"}
MUTATING_METHODS = {"update", "pop", "popitem", "setdefault", "clear", "__setitem__", "__delitem__"}
# Attributes that lead to frames and namespaces of other code (the test cells').
FORBIDDEN_ATTRIBUTES = {"f_back", "f_globals", "f_locals", "f_builtins", "tb_frame", "gi_frame", "cr_frame",
                        "ag_frame", "__globals__", "__builtins__", "__subclasses__"}
FORBIDDEN_MODULES = {"ctypes", "cffi", "_ctypes", "_thread", "faulthandler", "linecache"}
# IPython's input and output history in the kernel's namespace: the source of the cells that ran, tests included.
HISTORY_NAMES = {"In", "Out", "_ih", "_oh", "_dh"}
# What student code may call on get_ipython(): line and cell magics (%timeit, %%time) and shell escapes (!ls).
SHELL_METHODS = {"run_line_magic", "run_cell_magic", "system", "getoutput"}
# Chains starting with these calls are as good as a protected module.
MODULE_GETTERS = {"get_ipython", "__import__", "import_module", "globals", "vars", "getmodule"}


@dataclass
class Finding:
    """One tampering statement: where it is and what it does."""

    cell: int          # index of the cell in the notebook
    grade_id: str      # the cell's grade_id ("" for a cell the student added)
    line: int          # first and last line of the statement (1-based) ...
    end_line: int
    outer_line: int    # ... and of the top-level statement holding it (replaced if the first is not enough)
    outer_end_line: int
    what: str

    def describe(self) -> str:
        where = f"cell {self.cell}" + (f" ({self.grade_id})" if self.grade_id else "")
        return f"{where}, line {self.line}: {self.what}"


@lru_cache(maxsize=4096)
def _python(source: str) -> str:
    """Plain Python for a cell's source: IPython magics and shell escapes become ``get_ipython()`` calls."""
    return _transformer().transform_cell(source)


@lru_cache(maxsize=1)
def _transformer():
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def _imports_course_helper(statement: str | None, name: str) -> bool:
    """``from dlcourse.<module> import <name>``: the course's helper of that very name bound again, e.g. a student
    of 01 importing ``finite_difference_gradient`` from ``dlcourse.gradcheck`` to check their own gradient. Not
    tampering: ``dlcourse`` is bound read-only in the sandbox and its modules are protected, so the name is
    the course's helper (a re-export of the same object where several modules offer it)."""
    return statement is not None and \
        re.fullmatch(rf"from dlcourse(\.[A-Za-z_][A-Za-z0-9_]*)* import {re.escape(name)}", statement) is not None


def _root(node: ast.AST) -> ast.AST:
    """The innermost object of ``a.b[c].d``: ``a`` (or the call that starts the chain)."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a chain of names and attributes, "" otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(node.id)
    return ".".join(reversed(parts))


class _Scanner(ast.NodeVisitor):
    """Visits one cell; ``found`` lists (innermost statement, top-level statement, what it does)."""

    def __init__(self, aliases: dict[str, str], protected_names: dict[str, str]):
        self.aliases = aliases                  # local name -> module (or module.attribute) it refers to
        self.protected_names = protected_names  # name the tests use -> the import that binds it
        self.found: list[tuple[ast.stmt, ast.stmt, str]] = []
        self.statements: list[ast.stmt] = []    # enclosing statements, outermost first
        self.depth = 0                          # function/class nesting: 0 is the cell's module level
        self.shell_calls: set[int] = set()      # ids of get_ipython() calls used only for magics

    def flag(self, what: str) -> None:
        inner, outer = self.statements[-1], self.statements[0]
        if all(s is not inner for s, _, _ in self.found):
            self.found.append((inner, outer, what))

    def protected(self, node: ast.AST) -> str:
        """The protected module a chain like ``np.testing.x`` starts from ("" if none)."""
        root = _root(node)
        if isinstance(root, ast.Name):
            module = self.aliases.get(root.id, "")
            if module.split(".")[0] in PROTECTED_MODULES:
                return module
            if root.id == "__builtins__":
                return root.id
        if isinstance(root, ast.Call) and _dotted(root.func).split(".")[-1] in MODULE_GETTERS:
            return f"{_dotted(root.func)}()"
        return ""

    def check_target(self, target: ast.AST | None) -> None:
        if target is None:
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.check_target(element)
        elif isinstance(target, ast.Starred):
            self.check_target(target.value)
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            module = self.protected(target)
            if module:
                self.flag(f"changes {ast.unparse(target)}, part of {module}, which the tests use")
        elif isinstance(target, ast.Name) and self.depth == 0:
            self.check_binding(target.id)

    def check_binding(self, name: str, import_statement: str | None = None) -> None:
        """A module-level (re)binding of a name the test cells use, other than an import of the same helper."""
        if name in self.protected_names and import_statement != self.protected_names[name] \
                and not _imports_course_helper(import_statement, name):
            self.flag(f"redefines {name!r}, which the test cells use")

    # -- statements ------------------------------------------------------------------------------------------
    def visit(self, node: ast.AST):
        if not isinstance(node, ast.stmt):
            return super().visit(node)
        self.statements.append(node)
        try:
            if isinstance(node, (ast.Assign, ast.Delete)):
                for target in node.targets:
                    self.check_target(target)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
                self.check_target(node.target)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    self.check_target(item.optional_vars)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.imported(alias.name.split(".")[0], alias.asname or alias.name.split(".")[0],
                                  alias.name if alias.asname else alias.name.split(".")[0],
                                  f"import {alias.name if alias.asname else alias.name.split('.')[0]}")
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self.imported((node.module or "").split(".")[0], alias.asname or alias.name,
                                  f"{node.module}.{alias.name}", f"from {node.module} import {alias.name}")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if self.depth == 0:
                    self.check_binding(node.name)
                for child in [*node.decorator_list, *getattr(node, "bases", []), *getattr(node, "keywords", [])]:
                    self.visit(child)
                if not isinstance(node, ast.ClassDef):
                    self.visit(node.args)
                self.depth += 1
                for child in node.body:
                    self.visit(child)
                self.depth -= 1
                return None
            elif isinstance(node, ast.Global):
                for name in node.names:
                    if name in self.protected_names:
                        self.flag(f"declares {name!r} global to rebind it; the test cells use it")
            self.generic_visit(node)
        finally:
            self.statements.pop()
        return None

    def imported(self, top_module: str, local: str, target: str, statement: str) -> None:
        if top_module in FORBIDDEN_MODULES:
            self.flag(f"imports {top_module}, which can rewrite the interpreter's memory")
        if self.depth == 0:
            self.check_binding(local, statement)
        self.aliases[local] = target

    # -- expressions -----------------------------------------------------------------------------------------
    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        if self.depth == 0:
            self.check_binding(node.target.id)
        self.generic_visit(node)

    def full_name(self, node: ast.AST) -> str:
        """``sys._getframe`` for ``sys._getframe`` or for ``_getframe`` imported from sys ("" if unknown)."""
        dotted = _dotted(node)
        if not dotted:
            return ""
        first, _, rest = dotted.partition(".")
        module = self.aliases.get(first, first)
        return f"{module}.{rest}" if rest else module

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func).split(".")[-1] or getattr(node.func, "attr", "")
        if name == "get_ipython" and id(node) not in self.shell_calls:
            self.flag("uses get_ipython() for something else than a magic or a shell command")
        elif self.full_name(node.func) in FORBIDDEN_CALLS:
            self.flag(f"calls {ast.unparse(node.func)}(...), which can change the tests or run unreadable code")
        elif name in SETATTR_CALLS and node.args and self.protected(node.args[0]):
            self.flag(f"calls {ast.unparse(node.func)} on {ast.unparse(node.args[0])}, which the tests use")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in MUTATING_METHODS \
                and self.protected(node.func.value):
            self.flag(f"changes {ast.unparse(node.func.value)}, which the tests use")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Call) and _dotted(node.value.func).endswith("get_ipython") \
                and node.attr in SHELL_METHODS:
            self.shell_calls.add(id(node.value))
        if node.attr in FORBIDDEN_ATTRIBUTES:
            self.flag(f"uses .{node.attr}, which reaches into other code's frames or namespaces")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__":
            self.flag("uses __builtins__")
        elif node.id in HISTORY_NAMES and isinstance(node.ctx, ast.Load):
            self.flag(f"reads {node.id}, IPython's history of the cells that ran (the tests' source)")


@lru_cache(maxsize=64)
def _protected_names(locked_sources: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    return protected_names(list(locked_sources))


def protected_names(locked_sources: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Names bound by imports in the locked cells, which the tests use, and the module aliases among them.

    Returns ``({name: the import that binds it}, {name: module or module.attribute})``.
    """
    names, aliases = {}, {}
    for source in locked_sources:
        try:
            tree = ast.parse(_python(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    module = alias.name if alias.asname else alias.name.split(".")[0]
                    names[local], aliases[local] = f"import {module}", module
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    local = alias.asname or alias.name
                    names[local] = f"from {node.module} import {alias.name}"
                    aliases[local] = f"{node.module}.{alias.name}"
    return names, aliases


def protected_helpers() -> frozenset[str]:
    """Every name of the test-cell API (``dlcourse.testing.__all__``): protected in every notebook, whether or not
    its locked cells import it, since a hidden test may import and use any of them."""
    from dlcourse import testing

    return frozenset(testing.__all__)


def _scan_source(source: str, aliases: dict[str, str], names: dict[str, str]) -> list[tuple[int, int, int, int, str]]:
    offset = 0
    if source.lstrip().startswith("%%"):   # a cell magic (%%time, %%capture) runs the rest of the cell as Python
        source = source.split("\n", 1)[1] if "\n" in source else ""
        offset = 1
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return []   # it fails when it runs, like any syntax error
    scanner = _Scanner(aliases, names)
    for statement in tree.body:
        scanner.visit(statement)
    return [(inner.lineno + offset, (inner.end_lineno or inner.lineno) + offset, outer.lineno + offset,
             (outer.end_lineno or outer.lineno) + offset, what) for inner, outer, what in scanner.found]


def scan(nb: NotebookNode) -> list[Finding]:
    """Every tampering statement in the student-editable code cells of ``nb``.

    Locked cells are not scanned (nbgrader restores them from the gradebook). Aliases carry over from cell to
    cell in notebook order, as names do in the kernel.
    """
    locked = tuple(c.source for c in nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("locked"))
    names, aliases = (dict(d) for d in _protected_names(locked))   # the same locked cells in every submission
    for name in protected_helpers():
        names.setdefault(name, f"from dlcourse.testing import {name}")
    findings = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or nbgrader_meta(cell).get("locked"):
            continue
        grade_id = nbgrader_meta(cell).get("grade_id", "")
        for line, end, outer, outer_end, what in _scan_source(cell.source, aliases, names):
            findings.append(Finding(index, grade_id, line, end, outer, outer_end, what))
    return findings


def _replace(source: str, start: int, end: int, what: str) -> str:
    lines = source.split("\n")
    first = lines[start - 1]
    indent = first[:len(first) - len(first.lstrip())]
    lines[start - 1:end] = [f"{indent}pass  # removed by the autograder: {what}"] + [""] * (end - start)
    return "\n".join(lines)


def _parses(source: str) -> bool:
    try:
        ast.parse(_python(source.split("\n", 1)[1] if source.lstrip().startswith("%%") else source))
        return True
    except SyntaxError:
        return False


def neutralize(nb: NotebookNode, findings: list[Finding]) -> None:
    """Replace each finding's statement with ``pass`` and a comment, keeping the cell's line numbers.

    The innermost statement is replaced; if the cell no longer parses (``if x: np.y = 1`` followed by ``else:``),
    the whole top-level statement is.
    """
    for finding in sorted(findings, key=lambda f: (f.cell, -f.line)):
        cell = nb.cells[finding.cell]
        replaced = _replace(cell.source, finding.line, finding.end_line, finding.what)
        if not _parses(replaced):
            replaced = _replace(cell.source, finding.outer_line, finding.outer_end_line, finding.what)
        cell.source = replaced
