"""The prompt template the ContextGen adapter was trained with (R3; docs/spec.md). Byte-exact; torch-free."""

from __future__ import annotations

TEMPLATE = (
    "Modify the image to depict '{prompt}'. While preserving the original layout, key object features and human "
    "identities (including facial details), adjust element poses for better composition and naturally fill in the "
    "background. Ensure the result appears natural and visually harmonious."
)
PREFIXES = ("a photo of ", "an image of ", "a picture of ")  # matched case-insensitively, first match only


def wrap_prompt(prompt: str) -> str:
    """R3: drop one leading 'a photo of ' / 'an image of ' / 'a picture of ', strip, wrap in the template."""
    for prefix in PREFIXES:
        if prompt[: len(prefix)].lower() == prefix:
            prompt = prompt[len(prefix):]
            break
    return TEMPLATE.format(prompt=prompt.strip())
