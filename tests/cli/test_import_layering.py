"""The modules import in one direction (issue 19 item 4): no cycle hidden behind TYPE_CHECKING or
a function-local import, and the error root lives in a module of its own that imports nothing.

Checked on the source (every ``import`` statement, at any depth, including ``TYPE_CHECKING``
blocks), so a cycle cannot hide in a function body again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from flows.errors import OptionError
from flows.services.windows import parse_window
from warehouse.error_root import AitokensError, UserInputError
from warehouse.errors import WarehouseError

ROOT = Path(__file__).resolve().parents[2]


def _imports(rel: str) -> set[str]:
    """Every module named by an import statement anywhere in the file."""
    tree = ast.parse((ROOT / rel).read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


@pytest.mark.parametrize(
    ("lower", "upper", "upper_module"),
    [
        ("analysis/crosssection.py", "analysis/cstests.py", "analysis.cstests"),
        ("flows/services/second_stage.py", "flows/services/study.py", "flows.services.study"),
    ],
)
def test_the_pair_imports_in_one_direction(lower, upper, upper_module):
    assert not any(m == upper_module or m.startswith(upper_module + ".") for m in _imports(lower))
    lower_module = lower.removesuffix(".py").replace("/", ".")
    assert any(m == lower_module or m.startswith(lower_module + ".") for m in _imports(upper))


def test_the_error_root_imports_nothing_of_ours_and_analysis_needs_only_it():
    ours = ("flows", "analysis", "warehouse")
    assert not [m for m in _imports("warehouse/error_root.py") if m.split(".")[0] in ours]
    for path in sorted((ROOT / "analysis").glob("*.py")):
        rel = str(path.relative_to(ROOT))
        theirs = {m for m in _imports(rel) if m.split(".")[0] in ("flows", "warehouse")}
        assert theirs <= {"warehouse.error_root", "warehouse.error_root.UserInputError"}, rel


@pytest.mark.parametrize("text", ["5:1", "x:3", "1:2:3", "-9000:0"])
def test_a_bad_window_is_a_user_input_error_not_a_warehouse_error(text):
    with pytest.raises(OptionError, match="--window") as caught:
        parse_window(text, "--window")
    err = caught.value
    assert isinstance(err, UserInputError) and isinstance(err, AitokensError)
    assert not isinstance(err, WarehouseError)
    assert err.exit_code == 2


def test_exit_codes_keep_their_meaning():
    assert UserInputError("x").exit_code == 2
    assert AitokensError("x").exit_code == 1
    assert WarehouseError("x").exit_code == 1
