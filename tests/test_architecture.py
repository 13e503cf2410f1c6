"""The package's dependencies point one way (cli -> applications -> data -> speaker -> models -> blocks -> audio),
with no import cycle: read from the source, function-level (lazy) imports included."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sepaudio"

# Lower layers never import higher ones. Same-layer imports are allowed when they form no cycle.
LAYERS = [
    {"sepaudio", "sepaudio.errors", "sepaudio.registry", "sepaudio.fileio", "sepaudio.modelfile", "sepaudio.runtime",
     "sepaudio.optional", "sepaudio.config", "sepaudio.rundir"},
    {"sepaudio.audio", "sepaudio.plots", "sepaudio.timeline", "sepaudio.cards", "sepaudio.arrays", "sepaudio.formats"},
    {"sepaudio.features", "sepaudio.filterbanks", "sepaudio.nn", "sepaudio.metrics"},
    {"sepaudio.models", "sepaudio.losses", "sepaudio.inference"},  # models chunk long inputs (model.separate)
    {"sepaudio.speaker", "sepaudio.pretrained"},
    {"sepaudio.data"},
    {"sepaudio.train", "sepaudio.evaluate", "sepaudio.separate", "sepaudio.extract",
     "sepaudio.classify", "sepaudio.segment", "sepaudio.streaming",
     "sepaudio.export", "sepaudio.onnx_int8"},
    {"sepaudio.cli", "sepaudio.__main__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def exists(name: str) -> bool:
    return is_package(name) or (PACKAGE.parent / (name.replace(".", "/") + ".py")).is_file()


def imports(path: Path) -> set[str]:
    """sepaudio modules imported anywhere in the file (``from pkg import module`` resolves to the module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "sepaudio")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "sepaudio":
                continue
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if exists(f"{target}.{alias.name}") else target)
    found.discard(name)
    return found


def layer(name: str) -> int:
    for index, members in enumerate(LAYERS):
        if any(name == m or (m != "sepaudio" and name.startswith(m + ".")) for m in members):
            return index
    raise AssertionError(f"{name} is in no layer of tests/test_architecture.py: add it where it belongs")


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer():
    for name in GRAPH:
        layer(name)


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_no_upward_import(name):
    if name == "sepaudio":
        return  # the package's lazy facade (load_model, ...) re-exports from above
    upward = sorted(t for t in GRAPH[name] if layer(t) > layer(name))
    assert not upward, f"{name} (layer {layer(name)}) imports {upward} from a higher layer"


def test_models_and_blocks_import_no_files_pipelines_or_entry_points():
    forbidden = ("sepaudio.data", "sepaudio.speaker", "sepaudio.train", "sepaudio.evaluate", "sepaudio.cli")
    for name, targets in GRAPH.items():
        if name.startswith(("sepaudio.models", "sepaudio.nn")):
            bad = sorted(t for t in targets if t.startswith(forbidden))
            assert not bad, f"{name} imports {bad}"


def test_no_import_cycle():
    """Depth-first search over the module graph; a back edge is a cycle."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(GRAPH.get(node, ())):
            if node.startswith(target + ".") or target == "sepaudio":
                continue  # a module importing its own package's __init__ (or the root's __version__)
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(target):] + [target]))
            if not state.get(target):
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if not state.get(node):
            visit(node)


def test_the_checker_sees_a_violation(tmp_path):
    """The parser resolves relative, aliased and function-level imports (guards against a test that never fails)."""
    fake = PACKAGE / "models" / "base.py"
    found = imports(fake)
    assert "sepaudio.errors" in found and "sepaudio.fileio" in found
    assert layer("sepaudio.data.mixing") > layer("sepaudio.models.tsenet")
