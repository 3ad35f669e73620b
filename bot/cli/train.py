"""`train`: rebuild the intent model from the labelled data; keep it only when it is better."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.engine.resources import PROJECT_ROOT, default_rules_dir, models_dir
from bot.training.build import Judged, Plan, train
from bot.training.data import DataError
from bot.training.fit import FitSettings

DEFAULT_C = FitSettings().c
ORDINARY = PROJECT_ROOT.parent / "shared" / "data" / "ordinary-chat" / "dev.tsv"


def register(subparsers: Any) -> None:
    """Add ``train``."""
    parser = subparsers.add_parser(
        "train",
        help="rebuild the intent model; print before/after on the untuned test set",
        description=(
            "Fit the intent model on models/intent/data/*.jsonl (plus half of the ordinary "
            "chat, when present, as negatives), judge it with the rules on the dev split, the "
            "untuned test set and the other half of the ordinary chat, and replace the model "
            "only if it is at least as good on the test set."
        ),
    )
    parser.add_argument("--rules", type=Path, default=default_rules_dir())
    parser.add_argument("--data", type=Path, default=models_dir() / "intent" / "data")
    parser.add_argument(
        "--test", type=Path, default=PROJECT_ROOT / "evals" / "intent-test" / "messages.jsonl"
    )
    parser.add_argument("--ordinary", type=Path, default=ORDINARY, help="ordinary-chat TSV")
    parser.add_argument("--model-dir", type=Path, default=models_dir() / "intent")
    parser.add_argument("--name", default="intent-linear")
    parser.add_argument("--c", type=float, default=DEFAULT_C, help="inverse regularisation")
    parser.add_argument("--force", action="store_true", help="write even if not better")
    parser.set_defaults(handler=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """`train`: exit 0 when a model was written, 1 when refused, 2 for unusable input."""
    plan = Plan(
        rules_dir=args.rules,
        data_dir=args.data,
        test_set=args.test,
        model_dir=args.model_dir,
        name=args.name,
        ordinary=args.ordinary if args.ordinary.exists() else None,
        settings=FitSettings(c=args.c),
        force=args.force,
    )
    if plan.ordinary is None:
        print(f"note: {args.ordinary} not found; training without ordinary-chat negatives")
    try:
        outcome = train(plan)
    except DataError as error:
        print(f"train: {error}", file=sys.stderr)
        return 2
    if outcome.current is not None:
        _show("before (the model now shipped)", outcome.current)
    _show("after (the candidate)", outcome.candidate)
    print(outcome.reason)
    if outcome.written:
        print(f"wrote {plan.model_dir / plan.name}.npz and .json ({outcome.candidate.version})")
    return 0 if outcome.written else 1


def _show(title: str, judged: Judged) -> None:
    print(f"== {title}: {judged.version}")
    print(judged.dev.render("dev split, rules + model"))
    print(judged.test.render("untuned test set, rules + model"))
    if judged.ordinary is not None:
        alarms = judged.ordinary
        print(
            f"ordinary chat (the measuring quarter): {len(alarms.flagged)} of "
            f"{alarms.messages} flagged = {alarms.per_10k:.1f} per 10,000 {alarms.by_category()}"
        )
