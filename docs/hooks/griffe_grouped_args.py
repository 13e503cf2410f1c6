"""griffe extension for the API reference: a docstring entry that documents several parameters at once,
``chunk_seconds, overlap_seconds: chunk length and overlap``, becomes one entry per parameter with the shared text,
so that mkdocstrings lists each parameter (and its type) and strict builds check every name against the signature.
"""
from __future__ import annotations

import re

import griffe

SECTION = re.compile(r"^(?P<indent>\s*)(Args|Arguments|Parameters|Other Parameters|Keyword Args|Keyword Arguments)"
                     r":\s*$")
GROUP = re.compile(r"^(?P<indent>\s+)(?P<names>\w+(?:\s*,\s*\w+)+)\s*(?P<type>\([^)]*\))?:(?P<rest>.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def split_grouped_parameters(text: str) -> str:
    """The docstring with every grouped entry of its parameter sections written out once per name."""
    lines, out, section = text.split("\n"), [], None  # section: indent of the current parameter section's header
    index = 0
    while index < len(lines):
        line = lines[index]
        header = SECTION.match(line)
        if header:
            section = len(header["indent"])
        elif section is not None and line.strip() and _indent(line) <= section:
            section = None
        group = GROUP.match(line) if section is not None else None
        if not group:
            out.append(line)
            index += 1
            continue
        end = index + 1  # the entry's continuation lines: indented deeper than the entry
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > len(group["indent"])):
            end += 1
        while end > index + 1 and not lines[end - 1].strip():
            end -= 1
        kind = f" {group['type']}" if group["type"] else ""
        for name in re.split(r"\s*,\s*", group["names"]):
            out.append(f"{group['indent']}{name}{kind}:{group['rest']}")
            out.extend(lines[index + 1:end])
        index = end
    return "\n".join(out)


class GroupedParameters(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and "," in obj.docstring.value:
            obj.docstring.value = split_grouped_parameters(obj.docstring.value)
