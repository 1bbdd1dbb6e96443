"""Who may import whom (docs/design.md): arrows point one way, down the data flow."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, relative imports resolved against its package."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, *(node.module.split(".") if node.module else ())))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_import_parser_resolves_relative_imports(tmp_path):
    assert "blurgen.core.errors" in imported_modules(ROOT / "blurgen/core/device.py")
    assert "blurgen.core.flow.warp" in imported_modules(ROOT / "blurgen/interp/flow_interp.py")


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        (
            "blurgen/core",
            lambda m: m.split(".")[0] in ("blurgen", "b2f", "pipelines") and not m.startswith("blurgen.core"),
        ),
        (
            "blurgen/shards",
            lambda m: m.split(".")[0] in ("b2f", "pipelines") or m.startswith(("blurgen.sources", "blurgen.cli")),
        ),
        ("blurgen/sources", lambda m: m.startswith("blurgen.cli")),
        ("b2f", lambda m: m.startswith(("blurgen.cli", "blurgen.sources", "pipelines"))),
        ("blurgen", lambda m: m.split(".")[0] in ("b2f", "pipelines")),
        ("pipelines", lambda m: m.startswith("blurgen.cli") or m == "b2f.cli" or m.startswith("b2f.cli.")),
    ],
)
def test_imports_point_down_the_data_flow(folder, forbidden):
    bad = {
        f"{path.relative_to(ROOT)} imports {m}"
        for path in (ROOT / folder).rglob("*.py")
        for m in imported_modules(path)
        if forbidden(m)
    }
    assert not bad, sorted(bad)
