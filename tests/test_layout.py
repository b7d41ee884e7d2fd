"""The shape of `core/`: stage packages, imports that only point to earlier stages, no Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

CORE = REPO / "core"
# import order of the stages; a module may import its own stage and any stage before it
STAGES = ["shared", "data", "detectors", "scoring", "analysis", "runs", "prompts", "report", "cli"]
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
