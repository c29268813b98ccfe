"""docs/nt.md lists every nt op with the class its trait gives it (the doc cannot drift)."""

import re
from pathlib import Path

from neuron_opt.dialects import nt

DOC = (Path(__file__).parents[2] / "docs" / "nt.md").read_text()


def test_every_op_is_documented_with_its_class():
    rows = {}
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1].startswith("`nt."):
            for name in re.findall(r"`(nt\.\w+)`", cells[1]):
                rows[name] = cells[2]
    for op in nt.NT_OPS:
        assert op.name in rows, f"{op.name} is missing from docs/nt.md"
        assert rows[op.name] == nt.op_class(op).name, op.name
