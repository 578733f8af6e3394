"""The rules of graded code, read off the source before it runs: the same rules the guard
(guard.py) holds a grading run to, told at once, with line numbers, by `conclab check`, the
public tests and grading alike.

A topic's module may import the modules its manifest entry lists and nothing else, and may
not reach past them: no walks through the interpreter's insides (`__globals__`,
`__subclasses__`, `__builtins__`, frames), no private attributes of modules
(`threading._sys`), no changes to other modules (`time.perf_counter = ...`), no `eval`,
`exec`, `compile` or `__import__`, and no getattr() with a name made at run time.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import types
from dataclasses import dataclass

from conclab import manifest

# Attributes that lead into the interpreter's insides, whatever object they are taken from.
INSIDES = frozenset(
    {
        "__globals__",
        "__builtins__",
        "__subclasses__",
        "__bases__",
        "__base__",
        "__mro__",
        "__dict__",
        "__code__",
        "__closure__",
        "__func__",
        "__self__",
        "__getattribute__",
        "__reduce__",
        "__reduce_ex__",
        "__loader__",
        "__spec__",
        "__import__",
        "__wrapped__",
        "__defaults__",
        "__kwdefaults__",
        "__objclass__",
        "__getattr__",
        "__class_getitem__",
        "tb_frame",
        "tb_next",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_trace",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "co_code",
        "co_consts",
        "modules",
        "meta_path",
        "path_hooks",
        "path_importer_cache",
        "settrace",
        "setprofile",
        "settrace_all_threads",
        "setprofile_all_threads",
        "addaudithook",
        "set_executable",
        "set_forkserver_preload",
    }
)
# What looks an attribute up by a name held in a string (a format field, an annotation, a
# path of attributes): each would take any object apart whatever the source spells out.
LOOKUPS = frozenset(
    {
        "Formatter",
        "get_field",
        "get_value",
        "vformat",
        "get_type_hints",
        "ForwardRef",
        "evaluate_forward_ref",
        "attrgetter",
        "methodcaller",
    }
)
_NAMED_INSIDE = re.compile(
    r"(?:^|[.\[{])(" + "|".join(re.escape(n) for n in sorted(INSIDES, key=len, reverse=True)) + r")(?=$|[.\[\]}!:])"
)
# Built-in functions that run or reach code by name.
BUILTINS = frozenset({"eval", "exec", "compile", "__import__", "globals", "locals", "vars", "breakpoint"})
NAMES = frozenset({"__builtins__", "__loader__", "__spec__"})
ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "setattr", "delattr"})


@dataclass(frozen=True)
class Problem:
    line: int
    text: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.text}"


def _real(name: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(name)
    except Exception:
        return None


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class _Checker(ast.NodeVisitor):
    def __init__(self, topic: manifest.Topic):
        self.topic = topic
        self.allowed = set(topic.imports)
        self.problems: list[Problem] = []
        self.modules: dict[str, str] = {}  # local name -> the module it is bound to
        self.imported: set[str] = set()  # names imported from a module (from x import y)
        self.called: set[int] = set()  # the Name nodes that are called directly

    def problem(self, node: ast.AST, text: str) -> None:
        self.problems.append(Problem(getattr(node, "lineno", 0), text))

    def _listed(self) -> str:
        return manifest.importable(self.topic)

    def _check_module(self, node: ast.AST, name: str) -> bool:
        if name in self.allowed:
            return True
        if not _exists(name):
            return False  # a typo: importing it says so, in Python's own words
        self.problem(node, f"imports {name}, which this exercise does not use (it may import {self._listed()})")
        return False

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self._check_module(node, alias.name):
                if alias.asname:
                    self.modules[alias.asname] = alias.name
                else:
                    self.modules[alias.name.split(".")[0]] = alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.problem(node, "uses a relative import: import modules by their full names")
            return
        module = node.module or ""
        if not self._check_module(node, module):
            return
        real = _real(module)
        for alias in node.names:
            if alias.name == "*":
                self.problem(node, f"imports * from {module}: import the names you use")
                continue
            if alias.name.startswith("_") and module != "__future__":
                self.problem(node, f"imports {alias.name} from {module}: private names of modules are off limits")
                continue
            self._lookup(node, alias.name)
            value = getattr(real, alias.name, None) if real is not None else None
            local = alias.asname or alias.name
            if isinstance(value, types.ModuleType):
                if self._check_module(node, value.__name__):
                    self.modules[local] = value.__name__
            else:
                self.imported.add(local)

    def _root(self, node: ast.AST) -> ast.Name | None:
        while isinstance(node, ast.Attribute):
            node = node.value
        return node if isinstance(node, ast.Name) else None

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            found = _NAMED_INSIDE.search(node.value)
            if found:
                self.problem(
                    node, f"names .{found.group(1)} in a string: graded code may not reach into the interpreter"
                )

    def _lookup(self, node: ast.AST, name: str) -> None:
        if name in LOOKUPS:
            self.problem(node, f"uses {name}, which looks attributes up by name: write the attributes out")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._lookup(node, node.attr)
        if node.attr in INSIDES:
            self.problem(node, f"uses .{node.attr}: graded code may not reach into the interpreter or other modules")
        elif isinstance(node.value, ast.Name) and node.value.id in self.modules:
            module = self.modules[node.value.id]
            if node.attr.startswith("_"):
                self.problem(node, f"uses {node.value.id}.{node.attr}: private names of modules are off limits")
            else:
                real = _real(module)
                value = getattr(real, node.attr, None) if real is not None else None
                if isinstance(value, types.ModuleType) and value.__name__ not in self.allowed:
                    self.problem(
                        node,
                        f"uses {node.value.id}.{node.attr}, the module {value.__name__}, which this exercise "
                        f"does not use (it may import {self._listed()})",
                    )
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            root = self._root(node)
            if root is not None and (root.id in self.modules or root.id in self.imported):
                self.problem(node, f"changes {ast.unparse(node)}: graded code may change its own names only")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self._lookup(node, node.id)
        if node.id in BUILTINS or node.id in NAMES:
            self.problem(node, f"uses {node.id}: graded code may not run or reach code by name")
        elif node.id in ATTRIBUTE_FUNCTIONS and id(node) not in self.called:
            self.problem(node, f"passes {node.id} around: call it, with the attribute's name written out")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        # a module under another name: `t = threading` (then t._sys is as private)
        if isinstance(node.value, ast.Name) and node.value.id in self.modules:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.modules[target.id] = self.modules[node.value.id]
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name):
            self.called.add(id(node.func))
        if isinstance(node.func, ast.Name) and node.func.id in ATTRIBUTE_FUNCTIONS and len(node.args) >= 2:
            name = node.args[1]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                self.problem(node, f"calls {node.func.id}() with a name made at run time: write the attribute out")
            elif name.value in INSIDES or (
                name.value.startswith("_") and isinstance(node.args[0], ast.Name) and node.args[0].id in self.modules
            ):
                self.problem(node, f"calls {node.func.id}() for {name.value}: that attribute is off limits")
            elif node.func.id != "getattr":
                root = self._root(node.args[0])
                if root is not None and (root.id in self.modules or root.id in self.imported):
                    self.problem(
                        node, f"calls {node.func.id}() on {root.id}: graded code may change its own names only"
                    )
        self.generic_visit(node)


def check_source(source: str, topic: manifest.Topic) -> list[Problem]:
    """The rules the source breaks, in the order of its lines (none for a file Python cannot
    parse: importing it says why)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    checker = _Checker(topic)
    checker.visit(tree)
    return sorted(set(checker.problems), key=lambda p: (p.line, p.text))


def message(problems: list[Problem], topic: manifest.Topic, shown: int = 5) -> str:
    lines = [f"  {topic.filename} {p}" for p in problems[:shown]]
    if len(problems) > shown:
        lines.append(f"  ... and {len(problems) - shown} more")
    return (
        f"{topic.filename} breaks the rules of graded code, so it was not run:\n"
        + "\n".join(lines)
        + "\nKeep to the modules the exercise uses and to their public names; change only your own code."
    )
