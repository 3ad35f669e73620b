"""`rules check` and `rules explain`: what a rule author runs before saving a rule file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot.cli.common import add_engine_options, load_screener
from bot.cli.render import render_explanation
from bot.engine.resources import default_rules_dir
from bot.engine.rulecheck import check_directory
from bot.policy import decide


def register(subparsers: Any) -> None:
    """Add ``rules check`` and ``rules explain``."""
    rules = subparsers.add_parser("rules", help="check or explain the rule set").add_subparsers(
        title="rules commands", metavar="COMMAND"
    )
    check = rules.add_parser("check", help="validate rule files and run their examples")
    check.add_argument("directory", nargs="?", type=Path, default=default_rules_dir())
    check.add_argument(
        "--min-examples",
        type=int,
        default=1,
        help="examples of each kind every rule needs (default 1)",
    )
    check.set_defaults(handler=cmd_rules_check)
    explain = rules.add_parser("explain", help="show how a message is normalised and scored")
    explain.add_argument("text")
    add_engine_options(explain)
    explain.set_defaults(handler=cmd_rules_explain)


def cmd_rules_check(args: argparse.Namespace) -> int:
    """`rules check`: every problem as file:line, exit 1 on any."""
    rulebook, problems, examples = check_directory(args.directory, min_examples=args.min_examples)
    for problem in problems:
        print(problem)
    if rulebook is None:
        print(
            f"\nFAILED: rule set in {args.directory} cannot be loaded ({len(problems)} problems)"
        )
        return 1
    status = "FAILED" if problems else "OK"
    print(
        f"{status}: {len(rulebook.rules)} rules, {examples} examples, {len(problems)} problems "
        f"(rule set version {rulebook.version})"
    )
    return 1 if problems else 0


def cmd_rules_explain(args: argparse.Namespace) -> int:
    """`rules explain`: the normalised text and every hit with its score and reasons."""
    screener = load_screener(args)
    explanation = screener.explain(args.text)
    decision = decide(explanation.verdict, args.text, screener.policy)
    status = f"names: {screener.ner_status}; {screener.intent_status}"
    print(render_explanation(args.text, explanation, decision, status))
    return 0
