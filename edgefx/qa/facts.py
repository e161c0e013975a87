"""A fact: one sentence of the context document with the span that answers a question about its key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """One sentence of the context; `answer` is the span of `text` that answers a question about `key`."""

    key: str
    text: str
    answer: str


def photo(image: str) -> str:
    """'a' -> 'the first photo (A)'; the position words help match questions like 'in the second picture'."""
    image = str(image).lower()
    order = {"a": "first", "b": "second"}.get(image)
    return f"the {order} photo ({image.upper()})" if order else f"photo {image.upper()}"


def fact(key: str, text: str, answer: str) -> Fact:
    """A Fact whose answer span is checked to be part of its sentence."""
    if answer not in text:
        raise ValueError(f"answer {answer!r} not in sentence {text!r}")
    return Fact(key, text, answer)
