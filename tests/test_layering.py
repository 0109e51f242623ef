"""The layering rules of docs/architecture.md, checked on the source (not on what happens to be imported)."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def imported_modules(folder: str) -> dict[str, set[str]]:
    out = {}
    for path in (REPO / folder).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(REPO))] = names
    return out


def test_inference_imports_neither_qt_nor_torch_nor_app():
    for path, names in imported_modules("inference").items():
        assert not names & {"PySide6", "torch", "app", "training"}, path


def test_app_never_imports_torch_or_training():
    for path, names in imported_modules("app").items():
        assert not names & {"torch", "training"}, path
