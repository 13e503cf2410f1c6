"""mkdocs hook: every ``sepaudio`` command's ``--help``, generated from the command line's own parser at build time.

A page that holds the line ``<!-- cli-help -->`` gets, in its place, one section per command (and per action of
commands with actions, such as ``sepaudio ivector train``) with the text argparse prints for ``--help``.
"""
from __future__ import annotations

import argparse
import os

MARKER = "<!-- cli-help -->"


def _commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(words, parser) of the parser and of every sub-command below it, depth first, in the order of --help."""
    yield words, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, words + (name,))


def cli_reference() -> str:
    from sepaudio.cli import build_parser  # the parser `sepaudio` itself runs

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # the same line width on every machine
    try:
        sections = []
        for words, parser in _commands(build_parser()):
            title = " ".join(("sepaudio",) + words)
            sections.append(f"## `{title}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(sections)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())
