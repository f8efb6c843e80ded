"""The variation lifecycle's docstring diagram shows every state change its functions make."""

from __future__ import annotations

import ast
import inspect

from headshots.orders import variations


def _transitions() -> set[tuple[str, str]]:
    """(function, state it sets) for every ``variation.status = VariationStatus.X``."""
    tree = ast.parse(inspect.getsource(variations))
    found: set[tuple[str, str]] = set()
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Attribute)
                and node.targets[0].attr == "status"
                and isinstance(node.value, ast.Attribute)
            ):
                found.add((function.name, node.value.attr.lower()))
    return found


def test_the_diagram_names_every_state_change() -> None:
    diagram = (variations.__doc__ or "").split("\n\n")[1]
    transitions = _transitions()
    assert {name for name, _ in transitions} >= {"image_lost", "_give_up", "done", "failed"}
    for name, state in transitions:
        # Each arrow carries its function's name: --done-->, --given up-->.
        label = "given up" if name == "_give_up" else name
        assert f"-{label}-" in diagram, f"{name} (to {state}) is missing from the diagram"
        assert state in diagram
