"""R3: the prompt template is byte-exact, and one leading 'a photo of' style prefix is removed."""

from __future__ import annotations

import hashlib

import pytest

from ctxgen.sequence.prompt import TEMPLATE, wrap_prompt


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_published_hashes() -> None:
    assert sha(wrap_prompt("")) == "f12a01728e9d2b13823de0dc86f60f9c3c79518a6a31eed6f9cd50119669361d"
    assert sha(wrap_prompt("a photo of a cat")) == "49c98dab43696f5dbec582b253c7b92439fc9d6013147234c01dedb5b981833d"


@pytest.mark.parametrize("given, inner", [
    ("a photo of a cat", "a cat"),
    ("A Photo Of a cat", "a cat"),
    ("AN IMAGE OF two dogs ", "two dogs"),
    ("a picture of   a tree", "a tree"),
    ("a photo of an image of a cat", "an image of a cat"),  # first match only
    ("  a photo of a cat", "a photo of a cat"),  # the prefix must be leading
    ("a photograph of a cat", "a photograph of a cat"),
    ("look: a photo of a cat", "look: a photo of a cat"),
    ("  {braces} stay 'quoted'  ", "{braces} stay 'quoted'"),
])
def test_prefix_and_strip(given: str, inner: str) -> None:
    assert wrap_prompt(given) == TEMPLATE.replace("{prompt}", inner)


def test_template_text() -> None:
    wrapped = wrap_prompt("x")
    assert wrapped.startswith("Modify the image to depict 'x'. While preserving the original layout, ")
    assert wrapped.endswith("Ensure the result appears natural and visually harmonious.")
    assert wrapped.isascii() and "\n" not in wrapped
