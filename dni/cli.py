"""The ``dni`` command: train, evaluate, sweep, merge, presets.

Every :class:`dni.errors.DniError` becomes one line ``dni: error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

from dni._version import __version__
from dni.errors import DniError
from dni.experiments.config import DEFAULT_SIGMA_TRAIN, SweepConfig
from dni.nn.presets import INITS, PRESETS
from dni.noise.catalogue import KIND_NAMES, PAPER
from dni.noise.catalogue import SCHEMES as DRAW_SCHEMES
from dni.store.recipe import OPTIMISERS, TrainConfig
from dni.util.validation import parse_sigmas, validate_sigma

EPILOG = """\
examples:
  dni sweep                                  # the default run: lstm28 on the embedded subset, a few minutes
  dni sweep --data mnist --preset lstm28 --sigma-train 0:1:0.1 --sigma-val 0:1:0.1 --repeats 40 \\
            --epochs 100 --patience 10 --lr-patience 5 --out lstm28.nc   # the paper's grid, one preset (README)
  dni train --preset rnn28 --sigma-train 0.5 --out rnn28_s0.5.pt
  dni evaluate rnn28_s0.5.pt --sigma-val 0:1:0.1 --repeats 40 --out rnn28.nc
  dni merge lstm28.nc rnn28.nc --out all.nc

Full MNIST (--data mnist) is read from $DNI_DATA_DIR/MNIST/raw, or downloaded into the user cache.
"""


def _sigma(name):
    def parse(text):
        try:
            return validate_sigma(text, name)
        except DniError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


def _sigmas(name):
    def parse(text):
        try:
            return parse_sigmas(text, name)
        except DniError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


def _seed(text):
    """A seed: an integer ≥ 0 (torch and numpy seed from non-negative integers; -1 is not "random" here)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed {text!r} is not an integer; give one ≥ 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed {value} is negative; give an integer ≥ 0")
    return value


class _Once(argparse.Action):
    """A flag that takes one value and refuses a second (``--sigma-val 0 --sigma-val 0.3`` would keep the last)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, "_given_" + self.dest, False):
            parser.error(f"{option_string} is given twice; give one list, e.g. {option_string} 0,0.3")
        setattr(namespace, "_given_" + self.dest, True)
        setattr(namespace, self.dest, values)


def _add_global_args(p, top: bool = False):
    """Flags every command takes, before or after its name (``dni --quiet sweep`` = ``dni sweep --quiet``)."""
    p.add_argument("--quiet", action="store_true", default=False if top else argparse.SUPPRESS, help="no progress bars")


def _add_retrain_arg(p):
    p.add_argument("--retrain", action="store_true",
                   help="replace a checkpoint (or training state) trained with other settings, keeping the old file as "
                        "<name>.bak-<time>; without it such a file stops the command and is left as it is")


DRAWS_HELP = ("evaluation noise draws: shared (default: one standard-normal ε per repeat and chunk of digits, shared by every "
              "σval — faster, less Monte-Carlo noise between σval) or per-point (fresh draws per σval and repeat, as the "
              "committed paper numbers; results/run_paper_grid.sh); recorded in the result, whose file refuses the other")
NOISE_HELP = ("a noise spec (dni.noise.spec): a kind — " + ", ".join(KIND_NAMES) + " — or kinds joined by +, with settings in "
              "parentheses, e.g. weight_read, programming(sigma=0.02)+weight_read+adc(bits=8,bound=10), or the same as JSON; "
              "σ-kinds without their own sigma take the σ of the grid (default additive: the paper's eq. 2)")


def _noise_spec(text):
    from dni.noise.spec import (
        parse_noise,  # (torch: loaded when a spec is given, not for --help)
    )

    try:
        return parse_noise(text).label
    except DniError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_training_args(p, defaults=TrainConfig):
    p.add_argument("--preset", default="lstm28", help=f"architecture: {', '.join(PRESETS)} (default lstm28)")
    p.add_argument("--data", default="subset", choices=["subset", "mnist"],
                   help="subset: the small real MNIST subset shipped with dni (default); mnist: full MNIST")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help=f"training epochs (default {defaults.epochs})")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"default {defaults.batch_size}")
    p.add_argument("--lr", type=float, default=defaults.lr, help=f"learning rate of --optimiser (default {defaults.lr:g})")
    p.add_argument("--seed", type=_seed, default=0, help="seed of initialisation, shuffling and noise (default 0)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--patience", type=int, default=None,
                   help="stop a model once its validation accuracy at σtrain has not improved for this many epochs "
                        "(--epochs is then the maximum) and keep its best epoch (default: train all epochs)")
    p.add_argument("--lr-patience", type=int, default=None,
                   help="halve the learning rate once validation accuracy at σtrain has not improved for this many epochs "
                        "(default: a constant learning rate)")
    # the recipe options (issue 26: how the paper's conventional models may have been trained)
    p.add_argument("--optimiser", "--optimizer", default=defaults.optimiser, choices=list(OPTIMISERS),
                   help=f"adam, sgd (plain, no momentum) or rmsprop (TF 1.x defaults) (default {defaults.optimiser})")
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                   help=f"L2 weight decay λ on all weights and biases: λ·w added to the gradient (default {defaults.weight_decay:g})")
    p.add_argument("--init", default=defaults.init, choices=list(INITS),
                   help="torch: U(±1/√H) (default); glorot: TF 1.x BasicLSTMCell's Glorot-uniform gates, forget bias 1, "
                        "other biases 0; tf_example: glorot, but FC weights and biases N(0, 1)")
    p.add_argument("--input-scale", type=float, default=defaults.input_scale,
                   help=f"multiply every input by this in the model, training and evaluation (255: raw 0-255 pixels) "
                        f"(default {defaults.input_scale:g})")
    p.add_argument("--dropout", type=float, default=defaults.dropout,
                   help=f"dropout on the output: zero each unit of the last hidden state with this probability in training, "
                        f"before the FC layer (none in evaluation) (default {defaults.dropout:g})")
    p.add_argument("--select-on", choices=["noisy", "clean"], default="noisy",
                   help="which validation accuracy picks the best epoch and drives --patience/--lr-patience: noisy (at "
                        "σtrain, the paper's; default) or clean (at σ 0: a model under strong noise is not stopped by its own noise)")


def _train_seeds(text):
    from dni.util.validation import parse_train_seeds

    try:
        return parse_train_seeds(text, "training seeds")
    except DniError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_cluster_args(p, what="the sweep's tasks (train a model, evaluate its points)"):
    """--workers / --scheduler: where a sweep runs (default: in this process, no cluster; dni.experiments.dask_cluster)."""
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"run {what} on a Dask LocalCluster of N worker processes, one torch thread each; "
                        "prints the dashboard address (default: everything in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help=f"run {what} on the existing Dask cluster of this scheduler, e.g. tcp://host:8786 "
                        "(dask-jobqueue on SLURM, dask-cuda for GPUs: README)")


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the command's --help."""

    def error(self, message):
        self.exit(2, f"dni: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(
        prog="dni", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Deep Noise Injection: train recurrent networks with Gaussian noise after every "
                    "matrix-vector product, and measure their accuracy under noisy (analog) inference.")
    parser.add_argument("--version", action="version", version=f"dni {__version__}")
    _add_global_args(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineErrorParser)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_args(common)
    sub.add_parser = functools.partial(sub.add_parser, parents=[common])

    p = sub.add_parser("sweep", help="train one model per σtrain, evaluate at every σval, write NetCDF, print a table",
                       description="Train one model per σtrain (reusing checkpoints already trained with the same "
                                   "settings), evaluate every model at every σval with R noisy repeats on the test "
                                   "set, write the result as NetCDF and print mean accuracy (σtrain rows × σval columns). "
                                   "With no arguments: lstm28 on the embedded subset, σtrain 0,0.5,1, σval 0:1:0.1, 5 repeats.")
    _add_training_args(p)
    p.add_argument("--sigma-train", type=_sigmas("sigma_train"), default=list(DEFAULT_SIGMA_TRAIN), action=_Once,
                   help="training noise levels: list 0,0.5,1 or range start:stop:step (default 0,0.5,1; paper 0:1:0.1)")
    p.add_argument("--train-noise", type=_noise_spec, action="append", default=None,
                   help="kind of training noise at strength σtrain (give it several times for the mismatch grid): " + NOISE_HELP)
    p.add_argument("--sigma-val", type=_sigmas("sigma_val"), default=parse_sigmas("0:1:0.1"), action=_Once,
                   help="inference noise levels (default 0:1:0.1, as the paper)")
    p.add_argument("--eval-noise", type=_noise_spec, action="append", default=None,
                   help="kind of inference noise at strength σval (several times: every model is evaluated under each; "
                        "the result then has dims train_noise and eval_noise): " + NOISE_HELP)
    p.add_argument("--repeats", type=int, default=5, help="noisy evaluations per (σtrain, σval) point (default 5; paper 40)")
    p.add_argument("--draws", choices=DRAW_SCHEMES, default="shared", help=DRAWS_HELP)
    p.add_argument("--out", type=Path, default=Path("dni_sweep.nc"), help="result file (default dni_sweep.nc)")
    p.add_argument("--checkpoint-dir", type=Path, default=None, help="where models are kept (default: <out>_checkpoints/)")
    p.add_argument("--batch-models", action="store_true",
                   help="train the σtrain models together in one pass over the data (LSTM/RNN presets)")
    p.add_argument("--train-only", action="store_true",
                   help="only train the models into the checkpoint folder, evaluate nothing")
    p.add_argument("--train-seeds", type=_train_seeds, default=None,
                   help="training seeds, like σ grids: 0,1,2 or 0:4:1 (ints >= 0, each once, at most 32); one model per "
                        "(σtrain, seed), seed k exactly the model of --seed k, the result with a train_seed dim. --seed is then "
                        "the evaluation seed only (default: the one training seed --seed)")
    _add_cluster_args(p)
    _add_retrain_arg(p)

    p = sub.add_parser("notebook-sweep", help="a sweep as papermill jobs (one train_evaluate notebook per σtrain), merged",
                       description="Run notebooks/train_evaluate.ipynb with papermill once per σtrain (executed notebooks and "
                                   "per-job results in <out>_jobs/), then merge the results into --out. Jobs already "
                                   "finished with the same settings are reused; a job finished with other settings stops "
                                   "the run (--retrain: run it again, keeping the old files).")
    p.add_argument("--preset", default="lstm28", help=f"architecture: {', '.join(PRESETS)} (default lstm28)")
    p.add_argument("--sigma-train", default="0,0.5,1", help="list 0,0.5,1 or range 0:1:0.1 (default 0,0.5,1)")
    p.add_argument("--sigma-val", default="0:1:0.1", help="inference noise levels (default 0:1:0.1)")
    p.add_argument("--repeats", type=int, default=5, help="noisy evaluations per (σtrain, σval) point (default 5; paper 40)")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs, help=f"training epochs (default {TrainConfig.epochs})")
    p.add_argument("--seed", type=_seed, default=0, help="seed of training and evaluation noise (default 0)")
    p.add_argument("--data", default="subset", choices=["subset", "mnist"], help="subset (default) or full MNIST")
    p.add_argument("--notebook", type=Path, default=None, help="default: the repository's notebooks/train_evaluate.ipynb")
    p.add_argument("--out", type=Path, required=True, help="merged result file (required); jobs go to <out>_jobs/")
    _add_cluster_args(p, what="the papermill jobs (one a task; the workers write the jobs' files, so they need this filesystem)")
    _add_retrain_arg(p)

    p = sub.add_parser("train", help="train one model with Deep Noise Injection and save a checkpoint",
                       description="Train one model of --preset with Gaussian noise of std --sigma-train after every "
                                   "matrix-vector product (the paper's Deep Noise Injection) and save it as a checkpoint. "
                                   "The training state is saved after every epoch (<out>.partial): the same command run "
                                   "again continues an interrupted run. An existing --out trained with the same settings "
                                   "is kept as it is; one trained with other settings is never replaced unless --retrain.")
    _add_training_args(p)
    p.add_argument("--sigma-train", type=_sigma("sigma_train"), default=0.0, help="training noise σtrain (default 0)")
    p.add_argument("--train-noise", type=_noise_spec, default=PAPER, help="kind of training noise at strength σtrain: " + NOISE_HELP)
    p.add_argument("--out", type=Path, required=True, help="checkpoint file to write (.pt)")
    _add_retrain_arg(p)

    p = sub.add_parser("evaluate", help="evaluate checkpoints at σval × repeats on the test set, write NetCDF")
    p.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint files written by `dni train` or `dni sweep`")
    p.add_argument("--sigma-val", type=_sigmas("sigma_val"), default=parse_sigmas("0:1:0.1"), action=_Once, help="default 0:1:0.1")
    p.add_argument("--eval-noise", type=_noise_spec, default=PAPER, help="kind of inference noise at strength σval: " + NOISE_HELP)
    p.add_argument("--repeats", type=int, default=5, help="noisy evaluations per point (default 5; paper 40)")
    p.add_argument("--draws", choices=DRAW_SCHEMES, default="shared", help=DRAWS_HELP)
    p.add_argument("--data", default=None, choices=["subset", "mnist"], help="test data (default: what the models were trained on)")
    p.add_argument("--preset", default=None, help="refuse checkpoints of any other preset")
    p.add_argument("--seed", type=_seed, default=0, help="evaluation noise seed (default 0)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, required=True,
                   help="result file (.nc); an existing one is extended (points already there are kept, not recomputed), "
                        "or refused if it holds results of other data, eval seed or weights")

    p = sub.add_parser("merge", help="merge result files of separate runs into one",
                       description="Merge result files over other presets, σtrain, σval or repeats into one. Points present "
                                   "in several files must agree. --out must be new, or one of the inputs (which is then extended).")
    p.add_argument("inputs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--allow-different-eval-seeds", action="store_true",
                   help="merge results evaluated with different --seed values (eval_seed is then recorded as 'mixed')")
    p.add_argument("--kinds-layout", action="store_true",
                   help="write a grid of noise kinds with each kind's own strengths as levels (dni.store.results.to_kinds_layout: "
                        "no NaN for the strengths other kinds use); every dni command reads it as the usual grid")

    sub.add_parser("presets", help="list the architectures")

    p = sub.add_parser("table", help="print the accuracy table of a result file")
    p.add_argument("result", type=Path)
    p.add_argument("--interval", action="store_true",
                   help="ask for the 95 %% t-interval across training seeds (shown anyway with >= 2 seeds; "
                        "with one the table says '1 seed: no interval')")

    p = sub.add_parser("compare", help="paired comparison of two models/settings across training seeds, with its 95 %% t-interval",
                       description="Per training seed, the difference A − B of each model's mean accuracy over the evaluation "
                                   "repeats at each --sigma-val; then the mean difference over the seeds both hold, with its "
                                   "Student-t 95 %% interval and n. A and B: result files (A.nc B.nc, same arch/σtrain unless "
                                   "--a/--b pick settings), or one file with --a and --b naming settings in it.")
    p.add_argument("results", nargs="+", type=Path, help="one result file, or two (A then B)")
    p.add_argument("--a", default=None, help="setting A: arch=lstm28,sigma_train=1 (default: the file's only one)")
    p.add_argument("--b", default=None, help="setting B, as --a")
    p.add_argument("--sigma-val", type=_sigmas("sigma_val"), default=None, help="σval points to compare (default: all both hold)")

    p = sub.add_parser("report", help="the headline numbers of a result file next to the paper's (markdown)")
    p.add_argument("result", type=Path)

    p = sub.add_parser("checkpoints", help="list trained checkpoints: epochs, validation accuracy, train time (markdown)")
    p.add_argument("paths", nargs="+", type=Path, help="checkpoint files or folders of them")

    p = sub.add_parser("reproduction", help="regenerate REPRODUCTION.md's numbers and figures from a result file")
    p.add_argument("result", type=Path, nargs="?", default=Path("results/dni_paper.nc"), help="default results/dni_paper.nc")
    p.add_argument("--doc", type=Path, default=Path("REPRODUCTION.md"), help="document whose generated blocks to rewrite")
    p.add_argument("--checkpoint-dir", type=Path, default=None, help="default: <result>_checkpoints/")
    p.add_argument("--figures-dir", type=Path, default=None, help="where the PNGs go (default: figures/ next to the result)")
    p.add_argument("--training-length", type=Path, default=None,
                   help="folder of the fixed-epoch runs of results/run_training_length.sh (default: training_length/ next to the result)")
    p.add_argument("--paper-recipe", type=Path, default=None,
                   help="folder of the recipe study of results/run_paper_recipe.sh (default: paper_recipe/ next to the result)")
    p.add_argument("--noise-kinds", type=Path, default=None,
                   help="the mismatch grid of results/run_noise_kinds.sh (default: noise_kinds.nc next to the result)")
    p.add_argument("--seeds", type=Path, default=None,
                   help="folder of the results across training seeds of results/run_seeds_eval.sh (default: seeds/ next to the result)")
    p.add_argument("--no-figures", action="store_true", help="rewrite the numbers only")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if the document's numbers differ from the result file's")

    p = sub.add_parser("figures", help="write the paper's figures of a result file as standalone HTML")
    p.add_argument("result", type=Path)
    p.add_argument("--checkpoints", nargs="*", type=Path, default=None,
                   help="checkpoint files or folders, for the state distributions (Figs 3, 4, 7, 8) and weights (Figs 5, 9); "
                        "default: every folder the result's models may live in (<result>_checkpoints/, <result>/checkpoints/, "
                        "the *_checkpoints/ beside it), each model accepted by the CRC the result records")
    p.add_argument("--data", choices=["subset", "mnist"], default="subset",
                   help="test digits of the state distributions and the stroke lengths (default: the shipped subset)")
    p.add_argument("--out", "-o", type=Path, default=Path("figures.html"), help="HTML file (default figures.html)")
    p.add_argument("--svg", action="store_true", help="draw with bokeh's SVG backend: each figure's save button then writes SVG, not PNG")
    return parser


def main(argv=None) -> int:
    try:  # Ctrl-C while the arguments are read (a noise spec loads torch): one line, no traceback (issue 36)
        parser = build_parser()
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code
    except KeyboardInterrupt:
        print("dni: interrupted before any work; nothing was written", file=sys.stderr)
        return 130
    progress = not args.quiet
    try:
        return _run(args, parser, progress)
    except DniError as err:
        print(f"dni: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("dni: interrupted; finished checkpoints are kept, run the same command to continue", file=sys.stderr)
        return 130


def _reproduction(args, progress) -> int:
    """``dni reproduction``: the document's generated blocks (and figures) from the result file."""
    from dni.paper.reproduction import (
        FIGURE_KINDS,
        document_blocks,
        figure_path,
        load_paper_recipe,
        load_paper_recipe_dni,
        load_training_length,
        render_blocks,
        update_document,
    )
    from dni.store.results import load_results
    from dni.util.io import atomic_path, check_writable, check_writable_dir

    if not args.doc.is_file():
        raise DniError(f"no document {args.doc}: give the REPRODUCTION.md to update with --doc")
    ds = load_results(args.result, need=("accuracy", "weight_power"))
    figures_dir = args.figures_dir or args.result.parent / "figures"
    if not args.check:  # before any work: every path it will write
        check_writable(args.doc)
        if not args.no_figures:
            check_writable_dir(figures_dir)
    text = args.doc.read_text(encoding="utf-8")
    runs_dir = args.training_length or args.result.parent / "training_length"
    runs = load_training_length(runs_dir)
    if not runs and "training-length" in document_blocks(text):
        raise DniError(f"{args.doc} has a training-length block but {runs_dir} holds no runs: "
                       "run results/run_training_length.sh, or give their folder with --training-length")
    recipe_dir = args.paper_recipe or args.result.parent / "paper_recipe"
    recipe = load_paper_recipe(recipe_dir)
    if not recipe and "paper-recipe" in document_blocks(text):
        raise DniError(f"{args.doc} has a paper-recipe block but {recipe_dir} holds no factor results: "
                       "run results/run_paper_recipe.sh, or give their folder with --paper-recipe")
    recipe_dni = load_paper_recipe_dni(recipe_dir) if recipe else []
    if not recipe_dni and "paper-recipe-dni" in document_blocks(text):
        raise DniError(f"{args.doc} has a paper-recipe-dni block but {recipe_dir / 'dni'} holds no σtrain 1.0 runs: "
                       "run results/run_paper_recipe.sh dni:FACTOR, or give the study's folder with --paper-recipe")
    baseline = None
    if recipe:
        from dni.store.checkpoints import load_checkpoint
        from dni.store.layout import default_checkpoint_dir

        checkpoints = args.checkpoint_dir or default_checkpoint_dir(args.result)
        baseline = {arch: load_checkpoint(checkpoints / f"{arch}_sigma0.00_seed0.pt").config
                    for arch in sorted({str(r.result.arch.values[0]) for r in recipe})}
    grid_path = args.noise_kinds or args.result.parent / "noise_kinds.nc"
    grid = load_results(grid_path, need=("accuracy",)) if grid_path.is_file() else None
    if grid is None and any(name.startswith("noise-kinds") for name in document_blocks(text)):
        raise DniError(f"{args.doc} has noise-kinds blocks but there is no {grid_path}: "
                       "run results/run_noise_kinds.sh, or give the file with --noise-kinds")
    from dni.paper.seeds import has_noisy_points, load_adc_range, load_seed_results, seeds_figure_path

    seeds_dir = args.seeds or args.result.parent / "seeds"
    if args.seeds is not None and not args.seeds.is_dir():
        raise DniError(f"no folder {args.seeds}: give the folder of results/run_seeds_eval.sh's files (results/seeds)")
    seeds = load_seed_results(seeds_dir)
    if not seeds and any(name.startswith("seeds-") for name in document_blocks(text)):
        raise DniError(f"{args.doc} has seeds blocks but {seeds_dir} holds no result files: "
                       "run results/run_seeds_eval.sh, or give their folder with --seeds")
    adc_path = args.result.parent / "noise_kinds" / "adc_own_range.nc"  # results/noise_kinds/adc_own_range.py
    adc_range = load_adc_range(adc_path) if adc_path.is_file() else None
    if adc_range is None and "adc-own-range" in document_blocks(text):
        raise DniError(f"{args.doc} has an adc-own-range block but there is no {adc_path}: "
                       "run results/noise_kinds/adc_own_range.py")
    from dni.paper.kinds_seeds import load_kinds_seeds

    kinds_seeds = load_kinds_seeds(seeds_dir / "kinds")
    if not kinds_seeds and any(name.startswith("seeds-kinds") for name in document_blocks(text)):
        raise DniError(f"{args.doc} has seeds-kinds blocks but {seeds_dir / 'kinds'} holds no result files: "
                       "run results/run_seeds_eval.sh kinds")
    blocks = render_blocks(ds, figures_dir, args.doc.parent, runs, recipe, baseline, grid, recipe_dni, seeds, adc_range,
                           kinds_seeds)
    if args.check:
        current = document_blocks(text)
        stale = [name for name, body in blocks.items() if current.get(name) != body]
        print(f"{args.doc}: " + (f"out of date: {', '.join(stale)} (run dni reproduction)" if stale else "up to date"))
        return 1 if stale else 0
    if not args.no_figures:
        from dni_widgets.figures import PngRenderer, reproduction_figure
        from dni_widgets.loading import load_models

        from dni.store.layout import default_checkpoint_dir, find_checkpoints
        from dni.util.progress import tqdm

        figures_dir.mkdir(parents=True, exist_ok=True)
        models = load_models(find_checkpoints(ds, args.checkpoint_dir or default_checkpoint_dir(args.result)))
        jobs = [(arch, kind) for arch in ds.arch.values.tolist() for kind in FIGURE_KINDS]
        with PngRenderer() as renderer:
            for arch, kind in tqdm(jobs, desc="figures", disable=not progress):
                renderer.save(reproduction_figure(kind, ds, models, arch), figure_path(figures_dir, arch, kind))
            if grid is not None:  # the mismatch grid's figure (issue 37)
                from dni_widgets.kinds import kinds_figures

                from dni.paper.reproduction import KINDS_FIGURE

                renderer.save(kinds_figures(grid, "lstm28"), figure_path(figures_dir, "lstm28", KINDS_FIGURE))
            for name, part in seeds.items():  # each setting over its training seeds, with the band across models (issue 34)
                if has_noisy_points(part):
                    renderer.save(reproduction_figure("accuracy", part, {}, str(part.arch.values[0])), seeds_figure_path(figures_dir, name))
    updated = update_document(text, blocks)
    with atomic_path(args.doc) as tmp:
        tmp.write_text(updated, encoding="utf-8")
    figures = len(FIGURE_KINDS) * ds.sizes["arch"] + (grid is not None) + sum(map(has_noisy_points, seeds.values()))
    print(f"wrote {args.doc}" + ("" if args.no_figures else f" and {figures} figures in {figures_dir}/"))
    return 0


def _train(args, progress) -> int:
    """``dni train``: one model → checkpoint; an existing checkpoint is reused or refused, never silently replaced."""
    from dni.experiments.reuse import cached_model, guard_model_training_state
    from dni.store.checkpoints import save_checkpoint
    from dni.store.layout import training_state_path
    from dni.training.train import train
    from dni.util.io import check_writable
    from dni.util.validation import validate_device

    config = TrainConfig(preset=args.preset, sigma_train=args.sigma_train, epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, seed=args.seed, data=args.data, device=validate_device(args.device), patience=args.patience,
                         lr_patience=args.lr_patience, input_scale=args.input_scale, init=args.init,
                         weight_decay=args.weight_decay, optimiser=args.optimiser, dropout=args.dropout, train_noise=args.train_noise,
                         select_on=args.select_on)
    out = check_writable(args.out)
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if cached_model(config, out, lambda m: None, args.retrain, path=out, elsewhere="another --out") is not None:
        print(f"{out} already holds this model (trained with the same settings); left as it was")
        return 0
    partial = training_state_path(out)
    guard_model_training_state(partial, config, args.retrain, log)
    trained = train(config, progress=progress, state_path=partial, log=log)
    save_checkpoint(trained, out)
    partial.unlink(missing_ok=True)
    last = trained.history[-1]
    print(f"wrote {out}: clean validation accuracy {last.get('val_accuracy_clean', float('nan')):.4f}")
    return 0


def _run(args, parser, progress) -> int:
    # the layers below load here, after the arguments parsed: `dni --help` and usage errors never import torch
    from dni.experiments.sweep import run_sweep, train_sweep_models
    from dni.store.checkpoints import load_checkpoint
    from dni.store.results import (
        accuracy_table,
        load_results,
        merge_results,
        save_results,
    )

    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "presets":
        for p in PRESETS.values():
            count = f"{p.paper_parameters:,} parameters" if p.paper_parameters else ""
            print(f"{p.name:14s} {p.cell.upper():4s} {p.steps} steps × {p.input_size} inputs, H={p.hidden_size}  {p.source} {count}")
        return 0
    if args.command == "table":
        print(accuracy_table(load_results(args.result), interval=args.interval or None))
        return 0
    if args.command == "compare":
        from dni.paper.compare import compare_files, comparison_table

        print(comparison_table(compare_files(args.results, a=args.a, b=args.b, sigma_val=args.sigma_val)))
        return 0
    if args.command == "report":
        from dni.paper.report import headline_table, seed_interval_table
        from dni.store.results import noise_pairs, seed_slice, select_noise, train_seeds_of

        ds = load_results(args.result, need=("accuracy", "weight_power"))
        pairs = noise_pairs(ds)
        for i, (t, e) in enumerate(pairs):
            if len(pairs) > 1:
                print(("\n" if i else "") + f"trained under {t}, evaluated under {e}:\n")
            view = select_noise(ds, t, e)
            seeds = train_seeds_of(view)
            if len(seeds) > 1:
                print(f"training seed {seeds[0]} (one model per setting; the interval across the {len(seeds)} seeds below):\n")
            print(headline_table(seed_slice(view, seeds[0]) if len(seeds) > 1 else view))
            print("\n" + seed_interval_table(view))
        return 0
    if args.command == "checkpoints":
        from dni.paper.report import training_states_lines, training_table
        from dni.store.checkpoints import training_states

        files = [f for p in args.paths for f in (sorted(p.glob("*.pt")) if p.is_dir() else [p])]
        states = [s for p in args.paths if p.is_dir() for f in sorted(p.glob("*.pt.partial")) for s in training_states(f)]
        if not files and not states:
            raise DniError(f"no checkpoints (*.pt) in {', '.join(map(str, args.paths))}")
        loaded, unreadable = [], []  # one unreadable file is flagged, the others still listed (issue 36)
        for f in files:
            try:
                loaded.append(load_checkpoint(f))
            except DniError as err:
                unreadable.append(f"dni: unreadable: {f} ({err})")
        if loaded:
            print(training_table(loaded))
        for line in training_states_lines(states):
            print(line)
        for line in unreadable:
            print(line, file=sys.stderr)
        return 1 if unreadable else 0
    if args.command == "reproduction":
        return _reproduction(args, progress)
    if args.command == "notebook-sweep":
        from dni.experiments.papermill_jobs import notebook_sweep
        from dni.util.validation import parse_sigmas

        ds = notebook_sweep(preset=args.preset, sigma_train=parse_sigmas(args.sigma_train, "sigma_train"), out=args.out,
                            notebook=args.notebook, progress=progress, log=lambda m: print(m, file=sys.stderr),
                            sigma_val=args.sigma_val, repeats=args.repeats, epochs=args.epochs, seed=args.seed,
                            full_mnist=args.data == "mnist", retrain=args.retrain, workers=args.workers,
                            scheduler=args.scheduler)
        print(accuracy_table(ds))
        print(f"wrote {args.out}")
        return 0
    if args.command == "figures":
        from dni_widgets.figures import result_figures, save_html

        from dni.util.io import check_writable
        check_writable(args.out)
        from dni.store.layout import default_checkpoint_dir

        from dni.store.layout import checkpoint_dirs

        checkpoints = args.checkpoints
        if checkpoints is None:  # every folder the result's models may live in, each model checked by its CRC
            checkpoints = checkpoint_dirs(args.result) or [d for d in [default_checkpoint_dir(args.result)] if d.is_dir()]
        layout = result_figures(load_results(args.result), checkpoints, data=args.data)
        if args.svg:
            from dni_widgets.figures import use_svg

            use_svg(layout)
        save_html(layout, args.out, f"dni: {args.result.name}")
        print(f"wrote {args.out}")
        return 0
    if args.command == "merge":
        from dni.util.io import check_writable

        check_writable(args.out)
        if args.out.exists() and not any(args.out.resolve() == p.resolve() for p in args.inputs if p.exists()):
            raise DniError(f"{args.out} exists and is not one of the inputs; it is not replaced: give a new --out, "
                           f"or list {args.out} among the inputs to extend it")
        merged = merge_results((load_results(p) for p in args.inputs), allow_different_eval_seeds=args.allow_different_eval_seeds)
        if args.kinds_layout:
            from dni.store.results import save_kinds_results

            save_kinds_results(merged, args.out)
        else:
            save_results(merged, args.out)
        print(f"wrote {args.out}: " + ", ".join(f"{k}={v}" for k, v in merged.sizes.items()))
        return 0
    if args.command == "train":
        return _train(args, progress)
    if args.command == "evaluate":
        from dni.evaluation.evaluate import evaluate_into
        from dni.util.io import check_writable
        from dni.util.validation import validate_device, validate_repeats
        validate_repeats(args.repeats)
        device = validate_device(args.device)
        check_writable(args.out)
        models = [load_checkpoint(p, args.preset) for p in args.checkpoints]
        data = args.data or models[0].config.data
        ds = evaluate_into(args.out, models, args.sigma_val, args.repeats, data=data, seed=args.seed, device=device,
                           progress=progress, log=lambda m: print(m, file=sys.stderr), eval_noise=args.eval_noise,
                           draws=args.draws)
        print(accuracy_table(ds))
        print(f"wrote {args.out}")
        return 0
    if args.command == "sweep":
        started = time.perf_counter()
        config = SweepConfig(preset=args.preset, sigma_train=args.sigma_train, sigma_val=args.sigma_val, repeats=args.repeats,
                             epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, data=args.data,
                             out=args.out, checkpoint_dir=args.checkpoint_dir, device=args.device, batch_models=args.batch_models,
                             patience=args.patience, lr_patience=args.lr_patience, retrain=args.retrain,
                             input_scale=args.input_scale, init=args.init, weight_decay=args.weight_decay, optimiser=args.optimiser,
                             dropout=args.dropout, train_seeds=args.train_seeds, select_on=args.select_on,
                             train_noise=args.train_noise or PAPER, eval_noise=args.eval_noise or PAPER, draws=args.draws,
                             workers=args.workers, scheduler=args.scheduler)
        if args.train_only:
            from dataclasses import replace

            from dni.experiments.dask_cluster import sweep_client

            log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
            with sweep_client(config, log=log) as cluster:
                for t in dict.fromkeys(t for t, _ in config.noise_pairs):
                    train_sweep_models(replace(config, train_noise=t), progress=progress, log=log, client=cluster)
            print(f"{config.preset} σtrain {', '.join(f'{s:g}' for s in config.sigma_train)}"
                  f"{' seeds ' + ','.join(map(str, config.seeds)) if len(config.seeds) > 1 else ''}: trained, in {config.checkpoint_dir}/"
                  f" ({time.perf_counter() - started:.0f} s)")
            return 0
        ds = run_sweep(config, progress=progress, log=lambda msg: print(msg, file=sys.stderr))
        print(accuracy_table(ds))
        print(f"wrote {config.out} (checkpoints in {config.checkpoint_dir}/) in {time.perf_counter() - started:.0f} s")
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
