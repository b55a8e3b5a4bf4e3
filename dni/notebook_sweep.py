"""A sweep as many papermill jobs: one run of ``notebooks/train_evaluate.ipynb`` per σtrain, merged.

Each job trains and evaluates one model and writes its own NetCDF file and executed notebook
(a record of the run); the per-job results merge into one dataset. Evaluation noise is seeded
per (seed, arch, σtrain, σval, repeat), so the merged file equals a single ``dni sweep`` with the
same settings. Finished jobs (their result file exists) are not run again.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DniError, InvalidArgumentError
from .io import check_writable
from .results import load_results, merge_results, save_results

DEFAULT_NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "train_evaluate.ipynb"


def notebook_sweep(*, preset: str, sigma_train, out, notebook=None, jobs_dir=None, progress: bool = True, log=print, **parameters):
    """Run the train/evaluate notebook once per σtrain with papermill, merge and save to ``out``.

    ``parameters`` go to every job (sigma_val, repeats, epochs, seed, full_mnist, batch_size, lr).
    """
    import papermill as pm

    from .evaluate import validate_repeats, validate_sigmas
    from .models import get_preset
    from .sweep import parse_sigmas

    get_preset(preset)  # fail before any job starts
    sigmas = parse_sigmas(sigma_train, "sigma_train") if isinstance(sigma_train, str) else validate_sigmas(sigma_train, "sigma_train")
    sigma_val = parameters.get("sigma_val")
    if isinstance(sigma_val, str):
        parse_sigmas(sigma_val, "sigma_val")
    elif sigma_val is not None:
        validate_sigmas(sigma_val, "sigma_val")
    if "repeats" in parameters:
        validate_repeats(parameters["repeats"])
    notebook = Path(notebook) if notebook else DEFAULT_NOTEBOOK
    if not notebook.is_file():
        raise InvalidArgumentError(f"notebook {notebook} not found; pass --notebook path/to/train_evaluate.ipynb")
    out = check_writable(out)
    jobs_dir = Path(jobs_dir) if jobs_dir else out.with_name(out.stem + "_jobs")
    jobs_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for st in sigmas:
        name = f"{preset}_sigma{st:.2f}"
        job_result = jobs_dir / f"{name}.nc"
        if job_result.exists():
            log(f"reusing {job_result}")
        else:
            try:
                pm.execute_notebook(str(notebook), str(jobs_dir / f"{name}.ipynb"), progress_bar=progress,
                                    parameters={**parameters, "preset": preset, "sigma_train": str(st), "out": str(job_result),
                                                "checkpoint_dir": str(jobs_dir / "checkpoints")})
            except pm.PapermillExecutionError as err:
                raise DniError(f"job {name} failed ({err.ename}: {err.evalue}); see {jobs_dir / (name + '.ipynb')}") from None
        results.append(load_results(job_result))
    merged = merge_results(results)
    save_results(merged, out)
    return merged
