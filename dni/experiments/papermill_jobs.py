"""A sweep as many papermill jobs: one run of ``notebooks/train_evaluate.ipynb`` per σtrain, merged.

Each job trains and evaluates one model and writes its own NetCDF file and executed notebook
(a record of the run, trusted so that JupyterLab shows it whole: :mod:`dni.experiments.notebook_run`); the per-job
results merge into one dataset. Evaluation noise is seeded
per (seed, arch, σtrain, σval, repeat), so the merged file equals a single ``dni sweep`` with the
same settings. With ``workers`` or ``scheduler`` the jobs run as tasks on a Dask cluster, one job a
task (:mod:`dni.experiments.dask_cluster`); papermill on the worker writes the job's files, so the workers must
see this filesystem (one machine, or a shared one). Finished jobs (their result file exists, and their executed notebook records the
same parameters) are not run again; a job finished with other parameters stops the run unless
``retrain`` (its files are then kept as backups, :func:`dni.util.io.move_aside`). An existing ``out`` is
extended, never replaced by a file that lacks what it held.
"""

from __future__ import annotations

from pathlib import Path

from dni.errors import DniError, InvalidArgumentError
from dni.experiments.notebook_run import run_notebook
from dni.store.results import load_results, merge_results, save_results
from dni.util.io import check_writable, check_writable_dir, move_aside

DEFAULT_NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "train_evaluate.ipynb"


def notebook_sweep(*, preset: str, sigma_train, out, notebook=None, jobs_dir=None, progress: bool = True, log=print,
                   retrain: bool = False, workers: int | None = None, scheduler: str | None = None, **parameters):
    """Run the train/evaluate notebook once per σtrain with papermill, merge and save to ``out``.

    ``parameters`` go to every job (sigma_val, repeats, epochs, seed, full_mnist, batch_size, lr).
    """
    from dni.experiments.config import validate_cluster
    from dni.experiments.dask_cluster import open_cluster
    from dni.nn.presets import get_preset
    from dni.util.validation import (
        parse_sigmas,
        sigma_label,
        validate_repeats,
        validate_sigmas,
    )

    get_preset(preset)  # fail before any job starts
    validate_cluster(workers, scheduler)
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
    jobs_dir = check_writable_dir(Path(jobs_dir) if jobs_dir else out.with_name(out.stem + "_jobs"))
    existing = _existing_output(out, "mnist" if parameters.get("full_mnist") else "subset", int(parameters.get("seed", 0)))
    jobs = []
    for st in sigmas:
        name = f"{preset}_sigma{sigma_label(st)}"
        job_result, job_notebook = jobs_dir / f"{name}.nc", jobs_dir / f"{name}.ipynb"
        job_parameters = {**parameters, "preset": preset, "sigma_train": str(st), "out": str(job_result),
                          "checkpoint_dir": str(jobs_dir / "checkpoints")}
        if job_result.exists() and not _same_job(job_notebook, job_parameters, retrain, log):
            log(f"running {name} again: its files are kept as backups ({move_aside(job_result).name}"
                + (f", {move_aside(job_notebook).name})" if job_notebook.exists() else ")"))
        if job_result.exists():
            log(f"reusing {job_result}")
        else:
            jobs.append((name, str(notebook), str(job_notebook), {**job_parameters, "retrain": bool(retrain)}))
    if jobs and (workers is not None or scheduler is not None):
        with open_cluster(workers=workers, scheduler=scheduler, log=log) as cluster:  # before anything is written
            jobs_dir.mkdir(parents=True, exist_ok=True)
            _run_on_cluster(cluster, jobs, progress)
    else:
        jobs_dir.mkdir(parents=True, exist_ok=True)
        for job in jobs:
            run_job(*job, progress=progress)
    results = [load_results(jobs_dir / f"{preset}_sigma{sigma_label(st)}.nc") for st in sigmas]
    merged = merge_results(([existing] if existing is not None else []) + results)
    save_results(merged, out)
    return merged


def _existing_output(out: Path, dataset: str, seed: int):
    """The merged file already at ``out`` (extended, not replaced), after checking the jobs can join it."""
    from dni.store.results import check_joinable, read_existing_results

    existing = read_existing_results(out)
    check_joinable(existing, out, dataset=dataset, eval_seed=seed, models=[])
    return existing


def _same_job(job_notebook: Path, parameters: dict, retrain: bool, log) -> bool:
    """Whether the finished job recorded in ``job_notebook`` ran with ``parameters`` (else refuse, unless ``retrain``)."""
    import nbformat

    try:
        recorded = nbformat.read(job_notebook, as_version=4).metadata["papermill"]["parameters"]
    except Exception:  # noqa: BLE001 — missing or unreadable record: the job's settings are unknown
        recorded = None
    recorded = None if recorded is None else {k: v for k, v in recorded.items() if k != "retrain"}
    if recorded == parameters:
        return True
    if recorded is None:
        why = f"has no readable record of its parameters ({job_notebook})"
    else:
        why = "ran with other parameters (" + ", ".join(f"{k} {recorded.get(k)!r} → {parameters.get(k)!r}"
                                                        for k in sorted({*recorded, *parameters}) if recorded.get(k) != parameters.get(k)) + ")"
    if not retrain:
        raise DniError(f"job {job_notebook.with_suffix('.nc')} {why}; it is not replaced: give another --out, "
                       "or pass --retrain to keep its files as backups and run it again")
    return False


def run_job(name: str, notebook: str, job_notebook: str, parameters: dict, progress: bool = False) -> str:
    """Execute one job's notebook with papermill (here or on a Dask worker); a failed job is one line."""
    import papermill as pm

    try:
        run_notebook(notebook, job_notebook, parameters, progress=progress)  # signed: JupyterLab shows its figures
    except pm.PapermillExecutionError as err:
        raise DniError(f"job {name} failed ({err.ename}: {err.evalue}); see {job_notebook}") from None
    return name


def _run_on_cluster(cluster, jobs: list, progress: bool) -> None:
    """The jobs as tasks of ``cluster``, one a task; Ctrl-C or a failed job cancels the others."""
    from distributed import as_completed

    from dni.errors import ClusterError
    from dni.util.progress import tqdm

    futures = [cluster.client.submit(run_job, *job, key=f"notebook-{job[0]}", pure=False) for job in jobs]
    try:
        for future in tqdm(as_completed(futures, loop=cluster.client.loop), total=len(futures), desc="jobs", disable=not progress, unit="job"):
            try:
                future.result()
            except DniError:
                raise
            except Exception as err:  # noqa: BLE001 — one line naming the task
                raise ClusterError(f"task {future.key} failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    except BaseException:
        cluster.client.cancel(futures, force=True)
        raise
