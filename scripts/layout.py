"""Draw the package's rooms and the import arrows between them, read from the code (every import of
nnlab's, at any depth of a module, except those under ``if TYPE_CHECKING:``), and check that no arrow
points up: a room imports only rooms on lower floors.

    python scripts/layout.py           # print the picture (the README's layout section shows it)
    python scripts/layout.py --check   # exit 1 if an arrow points up or a module has no room
    python scripts/layout.py --readme  # rewrite the picture at the end of README.md
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nnlab"

# Floors, bottom first: a room may import the rooms on the floors below it, never above. A room is a
# module, or a sub-package taken whole (landscape, sweep, analysis, figures).
FLOORS = (
    ("errors", "schema", "machine"),
    ("functions",),
    ("network",),
    ("_kernels", "tasks"),
    ("sgd",),
    ("landscape",),
    ("sweep",),
    ("analysis",),
    ("figures",),
    ("report",),
    ("results",),
    ("front",),
    ("cli",),
)
JOBS = {
    "errors": "what the user got wrong (InputError)",
    "schema": "axes (Config's fields), columns, kinds, limits",
    "machine": "what the engine reads of the host: vector width, L2",
    "functions": "activations and losses, with derivatives",
    "network": "networks of R replicas, forward, backprop",
    "_kernels": "compiled kernels (lanes and replica layouts)",
    "tasks": "data: xor, spirals, teacher, digits, chain, file",
    "sgd": "train: the numpy reference and the compiled path",
    "landscape": "second order: Hessians, polish, certify, symmetry",
    "sweep": "experiment files, plan, run, store, workers, folder",
    "analysis": "statistics: tables in, tables out",
    "figures": "seaborn figures: tables in, Figure out",
    "report": "summary table, figures and report.md written",
    "results": "one object for a results folder (nnlab.load)",
    "front": "nnlab.load, nnlab.run, nnlab.compare",
    "cli": "the nnlab command (typer)",
}
FLOOR = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}
# The package's own __init__ and __main__ are doors, not rooms: they may import anything.
DOORS = {"__init__", "__main__"}


def room_of(module: str) -> str | None:
    """The room of ``nnlab.x.y`` (x), None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "nnlab" else None


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(path: Path) -> set[str]:
    """The nnlab modules ``path`` imports (``from nnlab import x`` counts as nnlab.x)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nnlab."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "nnlab":
                found.update(f"nnlab.{a.name}" for a in node.names)
            elif node.module.startswith("nnlab."):
                found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def arrows() -> dict[tuple[str, str], list[str]]:
    """(from room, to room) -> the modules that import across, for every arrow between rooms."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        source = room_of(module if not module.endswith(".__init__") else module[: -len(".__init__")])
        if source is None or source in DOORS:
            continue
        for target in {room_of(m) for m in imports(path)} - {source, None, *DOORS}:
            out.setdefault((source, target), []).append(module)
    return out


def problems(found: dict[tuple[str, str], list[str]]) -> list[str]:
    """Arrows that point up (or sideways on one floor), and rooms on no floor."""
    bad = []
    rooms = {r for pair in found for r in pair}
    for room in sorted(rooms - set(FLOOR)):
        bad.append(f"{room}: on no floor of scripts/layout.py")
    for (a, b), modules in sorted(found.items()):
        if a in FLOOR and b in FLOOR and FLOOR[b] >= FLOOR[a]:
            bad.append(f"{a} -> {b} points up ({', '.join(modules)})")
    return bad


def picture(found: dict[tuple[str, str], list[str]]) -> str:
    """The floors top first, each room with its job and the rooms it imports."""
    lines = []
    for rooms in reversed(FLOORS):
        for room in rooms:
            below = sorted({b for (a, b) in found if a == room}, key=lambda r: (-FLOOR[r], r))
            lines.append(f"{room:<10} {JOBS[room]:<52} -> {', '.join(below) or '(a leaf)'}")
    rooms = len(FLOOR)
    lines.append(f"{rooms} rooms on {len(FLOORS)} floors, {len(found)} arrows, none pointing up")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if an arrow points up")
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's picture")
    args = parser.parse_args()
    found = arrows()
    bad = problems(found)
    if args.readme and not bad:
        readme = ROOT / "README.md"
        text = readme.read_text(encoding="utf-8")
        marker = "the tests keep it true):\n\n"
        block = "\n".join("    " + line for line in picture(found).splitlines())
        readme.write_text(text[: text.index(marker) + len(marker)] + block + "\n", encoding="utf-8")
        return 0
    if args.check:
        for line in bad:
            print(line, file=sys.stderr)
        return 1 if bad else 0
    print(picture(found) if not bad else "\n".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
