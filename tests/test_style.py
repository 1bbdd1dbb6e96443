"""House rules a linter does not check: type hints on every public function."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("blurgen", "b2f", "pipelines")


def _is_click_command(node: ast.FunctionDef) -> bool:
    """Click commands take their parameters' types from their options."""
    return any(
        "click" in ast.unparse(d) or ast.unparse(d).endswith(("_options", "_option")) for d in node.decorator_list
    )


def untyped_public_functions(path: Path) -> list[str]:
    """``file:line name`` of every public module-level function or public method of a public class that
    lacks an annotation on a parameter (self/cls aside) or on its return (``__init__`` aside)."""
    found = []

    def check(fn: ast.FunctionDef, owner: str = "") -> None:
        public = not fn.name.startswith("_") or fn.name == "__init__"
        if not public or _is_click_command(fn):
            return
        args = fn.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs, *filter(None, (args.vararg, args.kwarg))]
        missing = [a.arg for a in params if a.annotation is None and a.arg not in ("self", "cls")]
        if fn.returns is None and fn.name != "__init__":
            missing.append("return")
        if missing:
            found.append(f"{path.relative_to(ROOT)}:{fn.lineno} {owner}{fn.name} ({', '.join(missing)})")

    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            check(node)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    check(item, f"{node.name}.")
    return found


def test_the_check_finds_a_missing_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "m.py").write_text(
        "def f(a: int, b):\n    pass\n\nclass C:\n    def g(self) -> int:\n        return 1\n"
    )
    assert untyped_public_functions(tmp_path / "m.py") == ["m.py:1 f (b, return)"]


def test_every_public_function_has_type_hints():
    missing = [
        m
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for m in untyped_public_functions(path)
    ]
    assert not missing, f"{len(missing)} public functions without full type hints:\n" + "\n".join(missing)
