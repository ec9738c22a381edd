"""The course's notebook model: cell roles, nbgrader's region markers, secret lines, the hint rule and the
released notebook; and, for the tests and benchmarks, submissions built from the sources.

Every module that reads a notebook's structure takes it from here, so that each concept is defined once:

- **cell roles**: :func:`is_answer` (the student writes code there), :func:`is_test` (locked, carries points);
- **markers**: the solution and hidden-test regions, delimited by nbgrader's configured delimiters
  (``ClearSolutions.begin_solution_delimeter``..., read from ``autograder/nbgrader_config.py``): :data:`MARKERS`;
- **secret lines**: the lines of those regions long enough to be specific (:data:`MIN_SECRET_LINE`), which feedback
  redacts, publish and the pages must not show: :func:`specific_lines`, :func:`secret_lines`;
- **the hint**: a test cell's first comment line says what it checks (CONTRIBUTING); repair re-identifies test
  cells by it, the pages and the feedback show it: :func:`hint`. ``dlcourse/submission.py``, which must stay
  standard-library only, keeps a copy that a test compares with this one on every notebook;
- **the released notebook**: :class:`ReleasedNotebook`, what a submission should contain (repair), what the
  feedback shows, the test columns of the export, the tasks of the website's pages and the cells the
  pre-submission check knows.

The fixtures at the end (:func:`build_submission`, :func:`load_solution`) serve the tests and benchmarks; nothing
here executes a student's code.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterable, Mapping

import nbformat
from nbformat import NotebookNode

from autograder.nbgrader_api import ROOT, load_config


# -- cell roles --------------------------------------------------------------------------------------------------
def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_answer(cell) -> bool:
    """An autograded-answer cell: the student writes code here."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("solution")) and not meta.get("grade")


def is_test(cell) -> bool:
    """An autograder-tests cell: locked, carries points."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


# A test cell that trains a network (minutes, the bulk of grading time) carries this tag in the source notebook
# (the release keeps it): ``grade --skip-training`` leaves such cells out, and the mutant tests skip them for a
# wrong submission that cannot reach them (:func:`reachable_names`; CONTRIBUTING, "Tests").
TRAINING_TAG = "dlcourse-training"


def is_training_test(cell) -> bool:
    """A test cell tagged :data:`TRAINING_TAG`."""
    return is_test(cell) and TRAINING_TAG in (cell.get("metadata", {}).get("tags") or [])


# -- markers -----------------------------------------------------------------------------------------------------
SOLUTION, HIDDEN = "solution", "hidden tests"   # the two kinds of region

# nbgrader's defaults (nbgrader.preprocessors.ClearSolutions / ClearHiddenTests; a test checks they still are).
DELIMITERS = {
    ("ClearSolutions", "begin_solution_delimeter"): "BEGIN SOLUTION",
    ("ClearSolutions", "end_solution_delimeter"): "END SOLUTION",
    ("ClearHiddenTests", "begin_test_delimeter"): "BEGIN HIDDEN TESTS",
    ("ClearHiddenTests", "end_test_delimeter"): "END HIDDEN TESTS",
}


@dataclass(frozen=True)
class Region:
    """A solution or hidden-test region of a cell: its kind and its lines (markers excluded)."""

    kind: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Markers:
    """nbgrader's region delimiters, and the course's rule for a marker line: the line holds only the delimiter,
    after ``### `` (the comment mark the course writes; a configured delimiter that starts with ``#`` carries its
    own)."""

    begin_solution: str = "BEGIN SOLUTION"
    end_solution: str = "END SOLUTION"
    begin_hidden: str = "BEGIN HIDDEN TESTS"
    end_hidden: str = "END HIDDEN TESTS"

    @classmethod
    def from_config(cls, config=None) -> "Markers":
        """The delimiters of nbgrader's configuration (the course's ``nbgrader_config.py`` by default)."""
        config = config if config is not None else load_config()
        values = []
        for (section, key), default in DELIMITERS.items():
            values.append(config[section][key] if key in config[section] else default)
        return cls(*values)

    @staticmethod
    def _line(delimiter: str) -> str:
        prefix = "" if delimiter.lstrip().startswith("#") else "### "
        return r"^[ \t]*" + re.escape(prefix + delimiter.strip()) + r"[ \t]*$"

    @cached_property
    def _patterns(self) -> dict[tuple[str, str], re.Pattern]:
        return {("begin", SOLUTION): re.compile(self._line(self.begin_solution)),
                ("end", SOLUTION): re.compile(self._line(self.end_solution)),
                ("begin", HIDDEN): re.compile(self._line(self.begin_hidden)),
                ("end", HIDDEN): re.compile(self._line(self.end_hidden))}

    def match(self, line: str) -> tuple[str, str] | None:
        """``("begin" | "end", SOLUTION | HIDDEN)`` when ``line`` is a marker line, else None."""
        for what, pattern in self._patterns.items():
            if pattern.match(line):
                return what
        return None

    def strip(self, source: str) -> str:
        """Source without the marker lines (the full solution, or the tests with the hidden part)."""
        return "\n".join(line for line in source.splitlines() if self.match(line) is None)

    def regions(self, source: str) -> list[Region]:
        """The solution and hidden-test regions of a cell's source, in order. A region left open runs to the end
        of the cell (nbgrader refuses such a cell; here it stays secret)."""
        found, kind, lines = [], None, []
        for line in source.splitlines():
            marker = self.match(line)
            if marker is None:
                if kind is not None:
                    lines.append(line)
            elif marker[0] == "begin" and kind is None:
                kind, lines = marker[1], []
            elif marker[0] == "end" and marker[1] == kind:
                found.append(Region(kind, tuple(lines)))
                kind = None
        if kind is not None:
            found.append(Region(kind, tuple(lines)))
        return found

    def public(self, source: str) -> str:
        """The source outside every region, markers removed: what the released notebook shows of the cell."""
        kept, inside = [], None
        for line in source.splitlines():
            marker = self.match(line)
            if marker is None:
                if inside is None:
                    kept.append(line)
            elif marker[0] == "begin" and inside is None:
                inside = marker[1]
            elif marker[0] == "end" and marker[1] == inside:
                inside = None
        return "\n".join(kept)

    def visible_tests(self, source: str) -> str:
        """A test cell's source before its hidden tests (the part its released version shows first)."""
        lines = source.splitlines()
        for index, line in enumerate(lines):
            if self.match(line) == ("begin", HIDDEN):
                return "\n".join(lines[:index])
        return source

    def in_hidden_tests(self, source: str, line_number: int) -> bool:
        """Whether line ``line_number`` (1-based) of a test cell lies inside its hidden tests."""
        inside = False
        for number, line in enumerate(source.splitlines(), start=1):
            marker = self.match(line)
            if marker is not None and marker[1] == HIDDEN:
                inside = marker[0] == "begin"
            if number == line_number:
                return inside
        return False

    @property
    def texts(self) -> tuple[str, ...]:
        """The delimiters themselves: none may appear in anything a student or the website receives."""
        return (self.begin_solution, self.end_solution, self.begin_hidden, self.end_hidden)


@lru_cache(maxsize=None)
def markers() -> Markers:
    """The course's markers, read once from ``nbgrader_config.py``."""
    return Markers.from_config()


MARKERS = markers()


def strip_markers(source: str) -> str:
    """Source without the nbgrader region markers (the full solution, or the tests with the hidden part)."""
    return MARKERS.strip(source)


# -- secret lines ------------------------------------------------------------------------------------------------
# A line shorter than this ("else:", "return out", "import math") is too common to be told apart from a student's
# own code or the public text: only longer ones count as a solution's or a hidden test's (feedback redacts them,
# publish and the pages must not show them).
MIN_SECRET_LINE = 12


def specific_lines(lines: Iterable[str], public: Iterable[str] = ()) -> list[str]:
    """The lines (stripped, in order, once each) long enough to be specific and not in ``public``."""
    public = set(public)
    return list(dict.fromkeys(line.strip() for line in lines
                              if len(line.strip()) >= MIN_SECRET_LINE and line.strip() not in public))


def secret_lines(cells: Iterable, kinds: Iterable[str] = (SOLUTION, HIDDEN), public: Iterable[str] = ()) -> list[str]:
    """The specific lines of the regions of the given kinds in ``cells`` (a notebook's cells)."""
    kinds = set(kinds)
    return specific_lines((line for cell in cells for region in MARKERS.regions(cell.source)
                           if region.kind in kinds for line in region.lines), public)


def public_lines(cells: Iterable) -> set[str]:
    """Every line (stripped) that the cells show outside their regions."""
    return {line.strip() for cell in cells for line in MARKERS.public(cell.source).splitlines()}


# -- the hint ----------------------------------------------------------------------------------------------------
def hint(source: str) -> str:
    """A test cell's hint: its first line when that is a comment (CONTRIBUTING: it says what the cell checks),
    without ``#``; "" when the cell starts with code or with a ``###`` marker.

    ``dlcourse.submission._first_comment`` is a standard-library copy of this rule (a test compares them).
    """
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith("###"):
            return stripped.lstrip("#").strip()
        if stripped:
            break
    return ""


# -- the released notebook ---------------------------------------------------------------------------------------
def defined_names(source: str) -> list[str]:
    """Top-level functions and classes a piece of code defines, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def signatures(source: str) -> list[str]:
    """``name(arguments)`` of every top-level function and class a code cell defines."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(f"{node.name}({ast.unparse(node.args)})")
        elif isinstance(node, ast.ClassDef):
            found.append(f"class {node.name}")
    return found


def heading(markdown: str) -> str | None:
    """The first section heading (``##`` to ``######``) of a Markdown cell."""
    match = re.search(r"^#{2,6}\s+(.+?)\s*#*\s*$", markdown, flags=re.MULTILINE)
    return match.group(1) if match else None


@dataclass
class TestCell:
    """An autograder-tests cell: its grade_id, points and the first comment line saying what it checks."""

    __test__ = False   # not a pytest test class

    grade_id: str
    points: float
    checks: str


@dataclass
class Task:
    """A heading of the student notebook with the functions to implement and the tests that grade them."""

    heading: str
    functions: list[str] = field(default_factory=list)
    tests: list[TestCell] = field(default_factory=list)

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests)


@dataclass
class ReleasedNotebook:
    """One released student notebook (the exact notebook a student starts from), as every stage reads it."""

    name: str
    released: NotebookNode
    cells: dict[str, NotebookNode] = field(default_factory=dict)      # grade_id -> released cell, in order
    answers: dict[str, set[str]] = field(default_factory=dict)       # answer grade_id -> names it defines
    tests: dict[str, str] = field(default_factory=dict)              # test grade_id -> its hint
    training: set[str] = field(default_factory=set)                  # grade_ids of the training tests

    @classmethod
    def from_node(cls, name: str, nb: NotebookNode) -> "ReleasedNotebook":
        notebook = cls(name, nb)
        for cell in nb.cells:
            grade_id = nbgrader_meta(cell).get("grade_id")
            if not grade_id:
                continue
            notebook.cells[grade_id] = cell
            if is_answer(cell):
                notebook.answers[grade_id] = set(defined_names(cell.source))
            elif is_test(cell):
                notebook.tests[grade_id] = hint(cell.source)
                if is_training_test(cell):
                    notebook.training.add(grade_id)
        return notebook

    @classmethod
    def from_notebook(cls, path: Path) -> "ReleasedNotebook":
        return cls.from_node(path.name, nbformat.read(path, as_version=4))

    @property
    def kernelspec(self) -> dict:
        return dict(self.released.metadata.get("kernelspec", {}))

    @property
    def gpu(self) -> bool:
        """Whether the notebook asks Colab for a GPU runtime."""
        return self.released.metadata.get("accelerator") == "GPU"

    @property
    def graded(self) -> list[str]:
        """The grade ids of every graded cell, in notebook order: test cells and answers graded by hand."""
        return [grade_id for grade_id, cell in self.cells.items() if nbgrader_meta(cell).get("grade")]

    def code_cells(self, skip: Iterable[str] = ()) -> dict[str, float | str]:
        """``{grade_id: points | "answer" | "locked"}`` of the graded code cells, in order (the pre-submission
        check's table), leaving out the grade ids in ``skip``."""
        skip = set(skip)
        return {grade_id: nbgrader_meta(cell).get("points", 0) if is_test(cell) else
                "answer" if is_answer(cell) else "locked"
                for grade_id, cell in self.cells.items() if cell.cell_type == "code" and grade_id not in skip}

    def tasks(self) -> list[Task]:
        """The tasks, by heading: the signatures of the answer cells and the test cells below them."""
        tasks: list[Task] = []
        current = None
        for cell in self.released.cells:
            meta = nbgrader_meta(cell)
            if cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution"):   # graded by hand
                if not tasks or tasks[-1].heading != current:
                    tasks.append(Task(current or meta.get("grade_id", "")))
                tasks[-1].tests.append(TestCell(meta["grade_id"], float(meta.get("points", 0)),
                                                "your written answer, graded by hand by your instructor"))
            elif cell.cell_type == "markdown":
                current = heading(cell.source) or current
            elif is_answer(cell) or is_test(cell):
                if not tasks or tasks[-1].heading != current:
                    tasks.append(Task(current or nbgrader_meta(cell).get("grade_id", "")))
                if is_answer(cell):
                    tasks[-1].functions.extend(signatures(cell.source))
                else:
                    meta = nbgrader_meta(cell)
                    checks = hint(cell.source)
                    # "mse_loss: a single float..." -> "a single float...": the table names the function already.
                    for function in tasks[-1].functions:
                        checks = checks.removeprefix(function.split("(")[0] + ":").strip()
                    tasks[-1].tests.append(TestCell(meta["grade_id"], float(meta.get("points", 0)), checks))
                current = tasks[-1].heading
        return tasks


# -- fixtures for the tests and benchmarks -----------------------------------------------------------------------
def source_notebook(assignment: str, root: Path = ROOT) -> Path:
    """The (single) source notebook of an assignment."""
    notebooks = sorted((root / "solutions" / assignment).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise ValueError(f"{assignment}: expected one source notebook, found {len(notebooks)}")
    return notebooks[0]


def solution_code(assignment: str, root: Path = ROOT) -> str:
    """The reference implementation: the import cell and every answer cell of the source, markers removed."""
    nb = nbformat.read(source_notebook(assignment, root), as_version=4)
    parts = [strip_markers(c.source) for c in nb.cells
             if is_answer(c) or nbgrader_meta(c).get("grade_id") == "imports"]
    return "\n\n".join(parts)


def load_solution(assignment: str, root: Path = ROOT) -> dict:
    """Execute the reference implementation and return its namespace (for benchmarks and test oracles)."""
    namespace: dict = {"__name__": f"solution_{assignment.replace('-', '_')}"}
    exec(compile(solution_code(assignment, root), f"<solution {assignment}>", "exec"), namespace)
    return namespace


def build_submission(assignment: str, appended: Mapping[str, str] | None = None,
                     root: Path = ROOT) -> nbformat.NotebookNode:
    """A submission as a student would hand it in: the released notebook with the solutions filled in.

    Args:
        appended: ``{function or class name: code}``; the code is appended to the answer cell that defines that
            name, so it replaces the reference definition before that name's tests run (used for wrong
            submissions).

    Raises:
        KeyError: when no answer cell defines one of the names.
    """
    source = nbformat.read(source_notebook(assignment, root), as_version=4)
    released = nbformat.read(root / "exercises" / assignment / source_notebook(assignment, root).name,
                             as_version=4)
    answers = {nbgrader_meta(c)["grade_id"]: strip_markers(c.source) for c in source.cells if is_answer(c)}
    pending = dict(appended or {})
    for cell in released.cells:
        if not is_answer(cell):
            continue
        code = answers[nbgrader_meta(cell)["grade_id"]]
        for name in [n for n in pending if n in defined_names(code)]:
            code += "\n\n" + pending.pop(name)
        cell.source = code
    if pending:
        raise KeyError(f"no answer cell of {assignment} defines {', '.join(pending)}")
    return released


# -- which cells a redefined function can reach (the mutant tests skip training tests with it) -------------------
class _FreeNames(ast.NodeVisitor):
    """The names a piece of code reads before it assigns them, in source order (an over-approximation)."""

    def __init__(self):
        self.assigned: set[str] = set()
        self.free: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if node.id not in self.assigned:
                self.free.add(node.id)
        else:
            self.assigned.add(node.id)

    def _value_first(self, node) -> None:   # x = f(x): f and x are read before x is assigned
        if getattr(node, "value", None) is not None:
            self.visit(node.value)
        for target in getattr(node, "targets", None) or [node.target]:
            if isinstance(node, ast.AugAssign):
                self.visit(ast.Name(target.id, ast.Load()) if isinstance(target, ast.Name) else target)
            self.visit(target)

    visit_Assign = visit_AnnAssign = visit_AugAssign = visit_NamedExpr = _value_first

    def _definition(self, node) -> None:   # the body reads its names when called: every one counts
        inner = _FreeNames()
        for child in ast.iter_child_nodes(node):
            inner.visit(child)
        self.free |= {n for n in inner.free | inner.assigned if n not in self.assigned}
        self.assigned.add(node.name)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _definition

    def visit_Import(self, node) -> None:
        self.assigned |= {(a.asname or a.name).split(".")[0] for a in node.names}

    visit_ImportFrom = visit_Import


def free_names(source: str) -> set[str]:
    """The names a cell reads that it has not assigned before (a cell that does not parse reads every identifier
    in it)."""
    from autograder.tampering import _python

    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return set(re.findall(r"[A-Za-z_]\w*", source))
    visitor = _FreeNames()
    visitor.visit(tree)
    return visitor.free


def _links(source: str) -> dict[str, set[str]]:
    """For each top-level name a cell defines or touches, the names that may change what it holds.

    A function or class depends on the names its definition reads. Any other top-level statement may change every
    object it touches (``normalise(X)`` may modify ``X``, ``torch.manual_seed(0)`` the module's state): each name
    it reads or assigns depends on every name it reads.
    """
    from autograder.tampering import _python

    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        words = set(re.findall(r"[A-Za-z_]\w*", source))
        return {word: words for word in words}
    links: dict[str, set[str]] = {}
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            links.setdefault(statement.name, set()).update(free_names(ast.unparse(statement)) - {statement.name})
            continue
        names = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)}
        names |= {(a.asname or a.name).split(".")[0] for n in ast.walk(statement)
                  if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        read = free_names(ast.unparse(statement))
        for name in names:
            links.setdefault(name, set()).update(read)
    return links


def _assigned_names(source: str) -> set[str]:
    """Every name a cell assigns, defines or imports, at any depth."""
    from autograder.tampering import _python

    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return set(re.findall(r"[A-Za-z_]\w*", source))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            found.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return found


def reachable_names(nb: NotebookNode, grade_id: str) -> set[str]:
    """The top-level names whose definition can change what the test cell ``grade_id`` of ``nb`` computes.

    The names the test cell reads before assigning them, then, through the cells that are not test cells above it
    (given and answer cells: :func:`_links`), every name those depend on, transitively. Test cells are course
    code that set up what they use: a name the test cell reads from another test cell makes every name reachable.
    A function defined in those cells but not in this set is not called, directly or not, by the test cell.
    """
    cells = [c for c in nb.cells if c.cell_type == "code"]
    index = next(i for i, c in enumerate(cells) if nbgrader_meta(c).get("grade_id") == grade_id)
    links: dict[str, set[str]] = {}
    from_tests: set[str] = set()
    for cell in cells[:index]:
        if is_test(cell):
            from_tests |= _assigned_names(cell.source)
            continue
        for name, depends in _links(cell.source).items():
            links.setdefault(name, set()).update(depends)
    wanted = free_names(cells[index].source)
    if wanted & from_tests - set(links):
        return set(links) | wanted   # reads what a test cell left: assume it reaches everything
    reached: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name not in reached:
            reached.add(name)
            wanted |= links.get(name, set()) - reached
    return reached


def changes_global_state(code: str) -> bool:
    """Whether functions or classes may change state outside their own objects: a ``global`` or ``nonlocal``
    statement, a call to ``*.seed``, ``*.manual_seed`` or ``*.set_*``, an assignment to an attribute or item of a
    name that is neither a parameter nor a local of the function."""
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                node.func.attr in ("seed", "manual_seed") or node.func.attr.startswith("set_")):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            arguments = node.args
            local = {a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                                     *filter(None, [arguments.vararg, arguments.kwarg])]}
            body = node.body if isinstance(node.body, list) else [node.body]
            stored = [n for statement in body for n in ast.walk(statement)]
            local |= {n.id for n in stored if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            for target in stored:
                if isinstance(target, (ast.Attribute, ast.Subscript)) and isinstance(target.ctx, ast.Store):
                    root = target.value
                    while isinstance(root, (ast.Attribute, ast.Subscript)):
                        root = root.value
                    if not (isinstance(root, ast.Name) and root.id in local):
                        return True
    return False
