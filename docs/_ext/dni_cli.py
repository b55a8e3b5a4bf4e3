"""The CLI reference, generated from the argparse parser the ``dni`` command uses.

``.. dni-cli::`` (no arguments) writes, for the top-level parser and for every sub-command of
:func:`dni.cli.build_parser`, a section with the usage line, the description and one
``.. option::`` per argument (its help text verbatim, defaults included). Nothing is copied by
hand, so the page cannot drift from the parser; ``tests/test_docs.py`` checks that every flag of
the parser has its entry (anchor ``cmdoption-dni-<command>-<flag>``) in the built page.
"""

from __future__ import annotations

import argparse
import re

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

_SPECIAL = re.compile(r"([\\`*_|\[\]])")


def _text(s: str | None) -> str:
    """Help text as inline reST that shows exactly as argparse prints it (markup characters escaped)."""
    return _SPECIAL.sub(r"\\\1", " ".join((s or "").split()))


def _expand(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    help_ = action.help or ""
    if "%(" in help_:
        params = {**vars(action), "prog": parser.prog}
        params = {k: (v.__name__ if hasattr(v, "__name__") else v) for k, v in params.items()}
        help_ = help_ % params
    return help_


def _signature(action: argparse.Action) -> str:
    if not action.option_strings:                                  # positional
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or (("{" + ",".join(map(str, action.choices)) + "}") if action.choices else action.dest.upper())
    return ", ".join(f"{o} {metavar}" for o in action.option_strings)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-parsers of ``parser`` by command name (aliases left out), in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen, out = set(), {}
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    out[name] = sub
            return out
    return {}


def documented_actions(parser: argparse.ArgumentParser):
    """The arguments a command's reference lists: all but --help, the sub-command slot and suppressed ones."""
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        yield action


def _section_rst(prog: str, parser: argparse.ArgumentParser, title: str, level: str) -> list[str]:
    lines = [title, level * len(title), ""]
    desc = parser.description or ""
    if desc:
        lines += [_text(desc), ""]
    usage = parser.format_usage().strip()
    lines += [".. code-block:: text", ""] + ["   " + ln for ln in usage.splitlines()] + [""]
    lines += [f".. program:: {prog}", ""]
    for action in documented_actions(parser):
        lines += [f".. option:: {_signature(action)}", ""]
        help_ = _expand(action, parser)
        if action.choices and action.option_strings and "{" not in help_:
            help_ += f" (one of: {', '.join(map(str, action.choices))})"
        lines += ["   " + (_text(help_) or "(no help text)"), ""]
    return lines


class DniCliDirective(SphinxDirective):
    has_content = False

    def run(self):
        from dni.cli import build_parser

        parser = build_parser()
        lines = _section_rst("dni", parser, "dni", "-")
        if parser.epilog:
            lines += [".. code-block:: text", ""] + ["   " + ln for ln in parser.epilog.splitlines()] + [""]
        help_by_name = {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                help_by_name = {a.dest: a.help for a in action._choices_actions}
        for name, sub in subcommands(parser).items():
            sub.description = sub.description or help_by_name.get(name)
            lines += _section_rst(f"dni {name}", sub, f"dni {name}", "-")
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="dni.cli.build_parser()"), node)
        return node.children


def setup(app):
    app.add_directive("dni-cli", DniCliDirective)
    return {"parallel_read_safe": True, "version": "1"}
