"""The integrity scan: constructs an honest answer has no use for, found before any code runs.

It reads the code the learner may write (answer cells and cells they added), as IPython would run
it (magics and ``!`` commands included), and reports, per cell, what reaches into the kernel's
machinery (IPython hooks, tracing, stack frames), rewrites libraries (assigning to attributes of
imported modules or builtins), runs code from strings, starts processes or sessions, handles
signals, or reads notebooks, the gradebook or ``/proc``. It also reports answers that equal the
instructors' solution and any text of a solution or a hidden test. A finding never changes a score:
it sets ``review: required`` so that a person reads the code. The scan never fails: a cell it cannot
read (too deeply nested, too long) is itself a finding.
"""

from __future__ import annotations

import ast
import re

from mlsd.grading._common import BEGIN_HIDDEN, END_HIDDEN, grade_id, is_solution
from mlsd.grading._results import Review

__all__ = ["scan_code", "scan_submission"]

MAX_CELL_CHARS = 100_000
_SOLUTION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)
_HIDDEN = re.compile(re.escape(f"### {BEGIN_HIDDEN}") + r"(.*?)" + re.escape(f"### {END_HIDDEN}"), re.S)

_IPYTHON_HOOKS = {
    "input_transformers_cleanup",
    "input_transformers_post",
    "input_transformer_manager",
    "ast_transformers",
    "set_custom_exc",
    "showtraceback",
    "showsyntaxerror",
    "register_magic_function",
    "register_magics",
    "run_cell",
    "run_cell_async",
    "run_code",
    "user_ns",
    "user_global_ns",
    "displayhook",
    "display_pub",
    "excepthook",
    "pre_run_code_hook",
    "set_hook",
    "kernel",
    "shell",
}
_FRAMES = {
    "_getframe",
    "currentframe",
    "f_back",
    "f_globals",
    "f_locals",
    "tb_frame",
    "stack",
    "getouterframes",
}
_TRACING = {"settrace", "setprofile", "addaudithook", "monitoring", "call_tracing"}
_DYNAMIC = {"exec", "eval", "compile", "__import__", "breakpoint"}
_PROCESS_MODULES = {
    "subprocess",
    "ctypes",
    "signal",
    "multiprocessing",
    "pty",
    "socket",
    "_thread",
    "atexit",
    "importlib",
    "gc",
    "sys",
}
_OS_CALLS = {
    "setsid", "setpgid", "setpgrp", "fork", "forkpty", "kill", "killpg", "system", "popen", "spawnl", "spawnv",
    "spawnve", "spawnlp", "execv", "execve", "execl", "execlp", "execvp", "_exit", "posix_spawn", "daemon",
}  # fmt: skip
_SYS_ATTRIBUTES = {
    "modules",
    "meta_path",
    "path_hooks",
    "excepthook",
    "displayhook",
    "stdout",
    "stderr",
    "audit",
}
_LIBRARIES = {
    "numpy", "np", "pandas", "pd", "sklearn", "scipy", "builtins", "__builtins__", "mlsd", "math", "dask", "dd",
    "psycopg2", "IPython", "json", "os", "sys", "io", "pathlib", "unittest", "pytest", "operator", "functools",
}  # fmt: skip
_FILES = re.compile(r"\.ipynb\b|gradebook|/proc/|nbgrader|\.pth\b|site-packages|autograded|/source/", re.I)


def _ipython_to_python(source: str) -> str:
    """The Python that IPython runs for a cell (``%magic`` and ``!cmd`` become calls)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # an odd cell: scan it as written
        return source


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[str] = []
        self.aliases: dict[str, str] = {}  # local name -> module

    def note(self, node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", 0)
        text = f"line {line}: {what}" if line else what
        if text not in self.found:
            self.found.append(text)

    # -- imports ------------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            self.aliases[alias.asname or top] = alias.name
            if (
                top in _PROCESS_MODULES
                and top not in ("sys", "gc", "importlib")
                or top in ("gc", "importlib", "inspect", "ctypes", "threading")
            ):
                self.note(node, f"imports {alias.name}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        top = module.split(".")[0]
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            name = alias.name
            if top in _PROCESS_MODULES - {"sys"} or top in ("inspect", "threading"):
                self.note(node, f"imports {name} from {module}")
            elif top == "sys" and (name in _TRACING or name in _FRAMES or name in _SYS_ATTRIBUTES):
                self.note(node, f"imports sys.{name}")
            elif top == "os" and name in _OS_CALLS:
                self.note(node, f"imports os.{name}")
        self.generic_visit(node)

    # -- names, attributes and calls ----------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if node.id in _DYNAMIC:
            self.note(node, f"uses {node.id}()")
        elif node.id in ("In", "Out", "_ih", "_oh", "_i", "_ii", "_iii") and isinstance(node.ctx, ast.Load):
            self.note(node, f"reads the cell history ({node.id})")
        elif (
            node.id in ("__builtins__", "globals", "vars", "setattr", "delattr")
            and isinstance(node.ctx, ast.Load)
            and node.id in ("__builtins__",)
        ):
            self.note(node, "uses __builtins__")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        owner = _root_name(node.value)
        module = self.aliases.get(owner or "", owner or "")
        attr = node.attr
        if attr in _IPYTHON_HOOKS and (
            owner in ("get_ipython", "ip", "shell", "ipython") or "get_ipython" in ast.unparse(node.value)
        ):
            self.note(node, f"uses the IPython shell's {attr}")
        elif attr == "register" and "events" in ast.unparse(node.value):
            self.note(node, "registers an IPython event callback")
        elif attr in _FRAMES:
            self.note(node, f"reads stack frames ({attr})")
        elif attr in _TRACING and module.split(".")[0] in ("sys", "threading"):
            self.note(node, f"installs a trace or audit hook (sys.{attr})")
        elif module.split(".")[0] == "sys" and attr in _SYS_ATTRIBUTES:
            self.note(node, f"touches sys.{attr}")
        elif module.split(".")[0] == "os" and attr in _OS_CALLS:
            self.note(node, f"calls os.{attr}")
        elif module.split(".")[0] == "gc" and attr in ("get_referrers", "get_objects", "get_referents"):
            self.note(node, f"searches live objects (gc.{attr})")
        elif attr in (
            "__code__",
            "__globals__",
            "__closure__",
            "__subclasses__",
            "__class__",
            "__bases__",
            "__mro__",
        ) and (isinstance(node.ctx, ast.Store) or attr in ("__globals__", "__subclasses__", "__code__")):
            self.note(node, f"uses {attr}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if name in ("setattr", "delattr") and node.args:
            target = _root_name(node.args[0])
            if target and (target in _LIBRARIES or self.aliases.get(target, "").split(".")[0] in _LIBRARIES):
                self.note(node, f"changes an attribute of {target} with {name}()")
        if (
            isinstance(func, ast.Attribute)
            and func.attr
            in (
                "system",
                "getoutput",
                "run_line_magic",
                "run_cell_magic",
            )
            and "get_ipython" in ast.unparse(func.value)
        ):
            self.note(node, f"runs a shell command or magic ({func.attr})")
        if name == "open" or (
            isinstance(func, ast.Attribute) and func.attr in ("open", "read_text", "read_bytes")
        ):
            for arg in node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _FILES.search(arg.value):
                    self.note(node, f"opens {arg.value[:80]!r}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _FILES.search(node.value) and len(node.value) < 500:
            self.note(node, f"names {node.value[:80]!r}")
        self.generic_visit(node)

    # -- assignments to library attributes ----------------------------------------------------
    def _targets(self, targets) -> None:
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    owner = _root_name(node.value)
                    module = self.aliases.get(owner or "", "")
                    if owner in _LIBRARIES or module.split(".")[0] in _LIBRARIES:
                        self.note(node, f"assigns to {ast.unparse(node)[:80]} (rewrites a library)")
                if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                    owner = _root_name(node.value)
                    if owner in ("__builtins__", "sys", "builtins") or "__dict__" in ast.unparse(node.value):
                        self.note(node, f"assigns to {ast.unparse(node)[:80]}")

    def visit_Assign(self, node: ast.Assign) -> None:
        self._targets(node.targets)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._targets([node.target])
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._targets([node.target])
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        self._targets(node.targets)
        self.generic_visit(node)


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else None


def scan_code(source: str) -> list[str]:
    """Findings in one cell's code (``line N: what``), or why the cell could not be read."""
    if len(source) > MAX_CELL_CHARS:
        return [f"the cell is {len(source):,} characters long (more than {MAX_CELL_CHARS:,}): not scanned"]
    python = _ipython_to_python(source)
    try:
        tree = ast.parse(python)
    except SyntaxError:
        return []  # it cannot run either; the kernel reports the error
    except (RecursionError, MemoryError, ValueError):
        return ["the cell is nested too deeply to read: not scanned"]
    finder = _Finder()
    try:
        finder.visit(tree)
    except RecursionError:
        finder.found.append("the cell is nested too deeply to read completely")
    return finder.found


def _normalise(code: str) -> str:
    """Code without blank lines, trailing spaces and solution markers, for comparing answers."""
    code = re.sub(r"^\s*### (BEGIN|END) SOLUTION\s*$", "", code, flags=re.M)
    return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())


def _instructor_lines(source_nb) -> tuple[set[str], set[str]]:
    """Distinctive lines of the solutions and of the hidden tests (long, and not in the visible parts)."""
    solution: set[str] = set()
    hidden: set[str] = set()
    visible: set[str] = set()
    for cell in source_nb.cells:
        text = cell.get("source", "")
        for pattern, found in ((_SOLUTION, solution), (_HIDDEN, hidden)):
            for block in pattern.findall(text):
                found |= {line.strip() for line in block.splitlines() if len(line.strip()) >= 40}
        visible |= {line.strip() for line in _HIDDEN.sub("", _SOLUTION.sub("", text)).splitlines()}
    return {line for line in solution if not line.startswith("###")} - visible, hidden - visible


def scan_submission(submitted, source_nb) -> Review:
    """The integrity findings for a submitted notebook (read, not run), against the instructors' source."""
    reasons: list[str] = []
    solutions = {}
    for cell in source_nb.cells:
        if is_solution(cell) and grade_id(cell) and cell.get("cell_type") == "code":
            text = cell.get("source", "")
            if _SOLUTION.search(text):  # the answer as the instructors wrote it, markers removed
                solutions[grade_id(cell)] = _normalise(text)
    solution_lines, hidden_lines = _instructor_lines(source_nb)
    copied = 0
    for number, cell in enumerate(submitted.cells, start=1):
        cid = grade_id(cell)
        if cid and not is_solution(cell):
            continue  # a test or read-only cell: the grader restores it from the learner copy
        text = cell.get("source", "")
        if cell.get("cell_type") == "code":
            reasons += [f"cell {number}: {finding}" for finding in scan_code(text)]
        lines = {line.strip() for line in text.splitlines()}
        if cid in solutions and solutions[cid] == _normalise(text):
            copied += 1
        elif lines & hidden_lines or BEGIN_HIDDEN in text:
            reasons.append(f"cell {number}: holds text of the instructors' hidden tests")
        elif len(lines & solution_lines) >= 3:
            reasons.append(
                f"cell {number}: holds {len(lines & solution_lines)} lines of the instructors' solution"
            )
    if solutions and copied == len(solutions):
        reasons.insert(0, "every answer equals the instructors' solution")
    return Review(bool(reasons), reasons)
