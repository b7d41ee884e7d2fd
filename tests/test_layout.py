"""The shape of `core/`: stage packages, imports that only point to earlier stages, no Streamlit."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

CORE = REPO / "core"
# import order of the stages; a module may import its own stage and any stage before it
STAGES = ["shared", "data", "detectors", "scoring", "analysis", "longform", "runs", "prompts", "report", "cli"]
SHARED = {"errors", "atomic", "paths", "decision", "names", "csvfiles"}


def stage_of(module: str) -> str:
    """'core.data.audio' -> 'data'; the shared modules (and core itself) -> 'shared'."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in SHARED:
        return "shared"
    return "cli" if parts[1] == "__main__" else parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, including those inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "core":  # `from core import atomic`: the names are modules
                out += [(node.lineno, f"core.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
    return out


MODULES = sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)
NAMES = {module_name(p): p for p in MODULES}


def resolve(mod: str) -> str:
    """The core module an import names: `from core.detectors import llm` names the module
    core.detectors.llm when it is one, else (a name defined in the package) the package."""
    return mod if mod in NAMES else mod.rsplit(".", 1)[0] if mod.rsplit(".", 1)[0] in NAMES else mod


def core_imports(path: Path) -> set[str]:
    """The core modules a module imports anywhere in it (module level or inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("core.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("core"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.add(full if full in NAMES else node.module)
    me = module_name(path) if path.is_relative_to(REPO) else ""
    return {resolve(m) for m in out if resolve(m) in NAMES and resolve(m) != me}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_stage_is_a_package_that_says_what_belongs_there():
    for stage in STAGES[1:]:
        init = CORE / stage / "__init__.py"
        if stage == "prompts" and not init.exists():
            continue  # added with prompt optimisation
        assert init.exists(), f"core/{stage}/ is not a package"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"core/{stage}/__init__.py needs a docstring saying what belongs there"
    flat = [p.name for p in CORE.glob("*.py") if p.stem not in SHARED | {"__init__", "__main__"}]
    assert not flat, f"modules outside the stage packages: {flat}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_only_to_earlier_stages(path):
    me = stage_of(module_name(path))
    for line, mod in imports(path):
        assert mod.split(".")[0] != "streamlit", f"{path}:{line} imports streamlit; core must not"
        if not mod.startswith("core.") and mod != "core":
            continue
        other = stage_of(mod)
        assert STAGES.index(other) <= STAGES.index(me), (
            f"{path.relative_to(REPO)}:{line} ({me}) imports {mod} ({other}), a later stage"
        )


def test_the_rule_catches_an_upward_import(tmp_path):
    """The check itself can fail: a data module importing scoring is an error."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from core.scoring.predictions import load\n")
    assert [m for _, m in imports(bad)] == ["core.scoring.predictions"]
    assert STAGES.index(stage_of("core.scoring.predictions")) > STAGES.index(stage_of("core.data.audio"))


def test_help_lists_no_hidden_command(capsys):
    from core.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "SUPPRESS" not in out and "sweep-worker" not in out
    assert build_parser().parse_args(["sweep-worker", "--sweep", "x"]).sweep == "x"  # still callable


def test_no_import_cycles_between_core_modules():
    """No two modules import each other, directly or round a loop, counting imports inside
    functions: an import moved into a function to hide a cycle is still a cycle."""
    graph = {module_name(p): core_imports(p) for p in MODULES}
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_planted_cycle(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from core.runs import jobs\n")
    assert core_imports(bad) == {"core.runs.jobs"}


FAMILY_BRANCH = re.compile(r"family is None|family is not None|model_type\s*(==|!=|in\b)|\.family\.name\s*==")
FAMILY_FREE = ["core/runs", "core/prompts", "core/scoring", "core/cli", "core/analysis", "core/report", "views", "ui"]


def test_no_branch_on_an_audio_llm_family_outside_the_family_modules():
    """Training, CV, prompt studies, scoring and the pages call the family contract; which family
    it is matters only in core/detectors (the families and their registry)."""
    hits = []
    for folder in FAMILY_FREE:
        for path in sorted((REPO / folder).rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if FAMILY_BRANCH.search(line):
                    hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert hits == []
    assert FAMILY_BRANCH.search("    if tr.family is None:") and FAMILY_BRANCH.search('if model_type == "x":')


MAX_LINES = 400
MAX_FUNCTION_LINES = 80


def test_no_core_module_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these by what changes together: {long}"


def test_a_function_over_80_lines_says_why():
    """A long function carries a `# long: <reason>` comment on the line before its def."""
    unexplained = []
    for path in MODULES:
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES and "# long:" not in lines[first - 2]:
                    unexplained.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert unexplained == []


CITED = re.compile(r"(tests/test_\w+\.py)::(\w+)")


def test_every_equivalence_test_a_docstring_cites_exists():
    """Where core names the test that proves a fast path equals its reference, that test exists."""
    cited = [(p, m) for p in MODULES for m in CITED.finditer(p.read_text())]
    assert len(cited) >= 5
    for path, m in cited:
        test_file = REPO / m.group(1)
        assert test_file.exists(), f"{path.relative_to(REPO)} cites {m.group(0)}: no such file"
        assert re.search(rf"def {m.group(2)}\(", test_file.read_text()), (
            f"{path.relative_to(REPO)} cites {m.group(0)}: no such test"
        )


HEAVY = {"torch", "transformers", "peft", "accelerate", "ray", "lhotse", "datasets", "silero_vad", "webrtcvad",
         "tokenizers", "huggingface_hub", "plotly", "espeakng_loader", "soxr", "librosa", "sklearn", "statsmodels",
         "pyarrow"}  # fmt: skip


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_a_module_that_imports_heavy_packages_in_functions_says_so_once(path):
    """Heavy optional packages may be imported inside functions (so the pages and CLI start fast);
    the module says so in one comment, so a reader does not take it for a hidden cycle."""
    src = path.read_text()
    inner = set()
    for fn in ast.walk(ast.parse(src)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    inner |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    inner.add(node.module.split(".")[0])
    if inner & HEAVY:
        assert "imported inside functions" in src, f"say once why {sorted(inner & HEAVY)} are imported in functions"
