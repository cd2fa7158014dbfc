"""Package attributes load on first use (opaque_knapsack._lazy), so the CLI starts without Inspect."""

from __future__ import annotations

import subprocess
import sys

import pytest

from opaque_knapsack._lazy import lazy_attributes


def test_an_attribute_is_imported_from_its_module_when_first_read():
    getattr_ = lazy_attributes("pkg", {"dumps": "json"})
    import json

    assert getattr_("dumps") is json.dumps
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        getattr_("loads")


def test_importing_the_package_and_its_areas_loads_no_inspect():
    code = (
        "import sys, opaque_knapsack, opaque_knapsack.reports, opaque_knapsack.train, opaque_knapsack.knapsack\n"
        "print(sorted(m for m in sys.modules if m == 'inspect_ai' or m.startswith('inspect_ai.')))\n"
        "opaque_knapsack.knapsack.knapsack\n"
        "print('inspect_ai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ":".join(sys.path)}).stdout.splitlines()
    assert out == ["[]", "True"]
