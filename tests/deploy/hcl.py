"""Loads a Terraform directory with python-hcl2 into plain dicts, for the wiring tests.

python-hcl2 8 keeps HCL quoting: block labels come back as '"aws_lb"', string literals as
'"network"', expressions as '${...}'. `load_dir` strips the quotes of labels and literals so
tests compare against plain values; expressions keep their '${...}' form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2


def _unquote(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"' and '"' not in value[1:-1].replace('\\"', ""):
            return value[1:-1]
        return value
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


class Module:
    """Resources, data sources, variables, locals and outputs of one directory."""

    def __init__(self, path: Path):
        self.path = path
        self.resources: dict[tuple[str, str], dict] = {}
        self.data: dict[tuple[str, str], dict] = {}
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.locals: dict[str, Any] = {}
        self.modules: dict[str, dict] = {}
        self.files: dict[str, str] = {}
        for f in sorted(path.glob("*.tf")):
            text = f.read_text()
            self.files[f.name] = text
            with f.open() as fh:
                doc = _unquote(hcl2.load(fh))
            for block in doc.get("resource", []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        self.resources[(rtype, name)] = body
            for block in doc.get("data", []):
                for dtype, named in block.items():
                    for name, body in named.items():
                        self.data[(dtype, name)] = body
            for block in doc.get("variable", []):
                self.variables.update(block)
            for block in doc.get("output", []):
                self.outputs.update(block)
            for block in doc.get("locals", []):
                self.locals.update(block)
            for block in doc.get("module", []):
                self.modules.update(block)

    def resource(self, rtype: str, name: str) -> dict:
        key = (rtype, name)
        if key not in self.resources:
            raise AssertionError(f"{self.path}: no resource {rtype}.{name}")
        return self.resources[key]

    def of_type(self, rtype: str) -> dict[str, dict]:
        return {n: b for (t, n), b in self.resources.items() if t == rtype}


def load_dir(path: Path) -> Module:
    return Module(path)


def block(body: dict, name: str) -> dict:
    """The single nested block `name` of a resource body (hcl2 gives a list of blocks)."""
    value = body.get(name)
    if isinstance(value, list):
        assert len(value) == 1, f"expected one {name} block, got {len(value)}"
        return value[0]
    assert isinstance(value, dict), f"no {name} block"
    return value


def expr(value: Any) -> str:
    """An attribute as comparable text: '${x}' -> 'x', lists joined."""
    if isinstance(value, list):
        return "[" + ", ".join(expr(v) for v in value) + "]"
    text = str(value)
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return text
