"""The README's Python entry points resolve, lazily, to the functions that implement them."""

import subprocess
import sys

import pytest

import anyres


@pytest.mark.parametrize("name", [n for n in anyres.__all__ if n != "__version__"])
def test_every_public_name_is_a_function_of_its_capability(name):
    fn = getattr(anyres, name)
    assert callable(fn) and fn.__module__.startswith("anyres.")
    assert fn is getattr(anyres, name)  # resolved once, the same object each time


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'upscal'"):
        anyres.upscal  # noqa: B018


def test_import_anyres_loads_no_torch():
    # `anyres --help` and one-line errors must not pay for importing torch.
    code = "import sys, anyres; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
