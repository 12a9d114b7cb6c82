"""Issue 7: an output with a dimension of size 0 is torch's empty tensor, and the page says so."""

import pytest

from .helpers import open_view

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    "layer, shape, out",
    [
        ({"type": "FractionalMaxPool2d", "kernel_size": 2, "output_size": 0}, [1, 1, 6, 6], "1, 1, 0, 0"),
        ({"type": "ZeroPad2d", "padding": [-4, 0, 0, 0]}, [1, 1, 4, 4], "1, 1, 4, 0"),
    ],
)
def test_an_empty_output_is_drawn_honestly(page, layer, shape, out):
    open_view(page, {"layer": layer, "inputs": [{"shape": shape}], "seed": 0})
    note = page.locator("#diagram .empty-output")
    note.wait_for()
    assert f"output is empty: its shape ({out})" in note.inner_text()
