"""``dorsum quiz``: test yourself in the viewer, or print a handout with an answer sheet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from viewer.quiz import KINDS, MAX_QUESTIONS
from viewer.scene_options import add_atlas_argument, load_atlas_from_args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "quiz", help="a self-test on the back muscles: in the viewer, or printed (--print)",
        description="Questions made from the atlas's own muscles: name the highlighted muscle, click a muscle, "
                    "which layer, order the layers, at which level is the multifidus wasted. The same --seed "
                    "gives the same round, so a class can take the same quiz.")
    add_atlas_argument(parser)
    parser.add_argument("--questions", type=int, default=10, metavar="N",
                        help=f"questions in the round, 1 to {MAX_QUESTIONS} (default: 10)")
    parser.add_argument("--seed", type=int, default=None, metavar="N", help="make the round reproducible")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), metavar="KIND", choices=list(KINDS),
                        help=f"question kinds to ask: {', '.join(KINDS)} (default: all)")
    parser.add_argument("--print", dest="handout", action="store_true",
                        help="write a printable handout (pictures with numbered pointers, and an answer sheet) "
                             "instead of opening the viewer")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="folder for the handout (with --print)")
    parser.add_argument("--format", default="pdf", choices=("pdf", "png"),
                        help="handout as two PDF files (quiz.pdf, answers.pdf) or PNG pages (default: pdf)")
    parser.add_argument("--overwrite", action="store_true", help="replace handout files that exist")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from viewer.errors import DorsumError
    from viewer.quiz import make_round

    if args.handout and args.out is None:
        raise DorsumError("--print needs --out DIR, the folder for the handout files")
    if not args.handout and args.out is not None:
        raise DorsumError("--out goes with --print (the viewer quiz saves its results from the Quiz tab)")
    atlas = load_atlas_from_args(args)
    questions = make_round(atlas, args.questions, seed=args.seed, kinds=tuple(args.kinds))
    if args.handout:
        from viewer.figures.handout import write_handout

        written = write_handout(atlas, questions, args.out, fmt=args.format, overwrite=args.overwrite)
        for path in written:
            print(f"wrote {path}")
        return 0
    from viewer.display import require_display

    require_display()
    from viewer.app import run_scene
    from viewer.model import SceneModel

    print(f"dorsum quiz: {len(questions)} questions; answer them in the Quiz tab", file=sys.stderr)
    return run_scene(SceneModel(atlas), view="posterior", quiz=questions)
