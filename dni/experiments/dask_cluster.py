"""Sweeps on Dask (issue 20): a sweep as tasks on a ``distributed`` cluster, this process the only writer.

A sweep is a graph of tasks: train one model (preset, train noise, σtrain, seed) → evaluate it at
its (eval noise, σval) points. This process (the client) submits them, saves each trained model as
its checkpoint and each evaluated point into the result file (atomically, :mod:`dni.util.io`); the
workers compute and return results (a :class:`dni.store.checkpoints.TrainedModel`, a dataset of accuracies).
Nothing is locked and nothing re-read: the client alone knows, and writes, what is done.

* Where (:func:`sweep_client`): in this process (no flag, no cluster: the default); a
  ``LocalCluster`` of ``workers`` processes with one torch thread each (``--workers N``); or the
  existing cluster of a scheduler (``--scheduler ADDRESS``; dask-jobqueue, dask-cuda, ...).
* Data: each worker loads the digits itself, once per process (:func:`dni.data.load_sequences`:
  the embedded subset ships with dni; full MNIST from the worker's ``DNI_DATA_DIR`` or its user
  cache). Trained models travel with the evaluation tasks, so workers need no shared filesystem.
  Before the first task every worker is asked to import dni and load the data
  (:func:`check_workers`): a worker that cannot is named in one line, and nothing is written.
* Tasks: one per model to train (long ones, so they are scheduled first), and one per model to
  evaluate under the shared draws (its σval share ε, :mod:`dni.noise.draws`; splitting them would draw
  them again), or one per (model, σval) under the per-point draws.
* Faults: a worker lost mid-task has its task rerun elsewhere by the scheduler. A training task
  saves its per-epoch state (``<checkpoint>.partial``) when its worker can write to the checkpoint
  folder (the same machine, or a shared filesystem), and the rerun goes on from its last epoch;
  elsewhere the rerun trains that model from the start. Either way the same model: training is
  deterministic given its settings and one torch thread. A task that fails (an error, not a lost
  worker) stops the sweep with one line naming its worker; what was written stays as it was.
* Equality: the tasks call the very functions the in-process sweep calls (:func:`dni.training.train.train`,
  :func:`dni.evaluation.evaluate.evaluate`), whose noise is seeded per model, σval and repeat, not per
  process: a sweep gives the same numbers, bit for bit, whichever worker runs what (tested).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from dni.errors import ClusterError, DniError, InvalidArgumentError
from dni.experiments.config import validate_cluster

DASHBOARD = ":8787"
"""The LocalCluster's dashboard address (Dask's usual port; another free one if it is taken)."""




@dataclass
class Cluster:
    """An open ``distributed.Client`` and the torch threads each task uses (None: the worker's own setting)."""

    client: object
    threads: int | None = None


@contextlib.contextmanager
def sweep_client(config, client=None, log=print):
    """The :class:`Cluster` a sweep of ``config`` runs on, or None (in this process).

    ``client``: an open ``distributed.Client`` to use as it is. Else ``config.workers`` starts a
    LocalCluster and ``config.scheduler`` connects to one; either is closed when the block ends.
    """
    if client is not None:
        yield client if isinstance(client, Cluster) else Cluster(client)
    elif config.workers is None and config.scheduler is None:
        yield None
    else:
        with open_cluster(workers=config.workers, scheduler=config.scheduler, log=log) as cluster:
            yield cluster


@contextlib.contextmanager
def open_cluster(workers: int | None = None, scheduler: str | None = None, log=print):
    """A LocalCluster of ``workers`` processes (one thread each), or the cluster of ``scheduler``.

    An unreachable scheduler is one line naming it (:class:`ClusterError`); how long to try:
    Dask's ``distributed.comm.timeouts.connect`` (``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``).
    """
    workers = validate_cluster(workers, scheduler)
    from distributed import Client, LocalCluster

    local = None
    if scheduler is not None:
        _check_scheduler_address(scheduler)  # a bad address never reaches Client(), whose half-built object hangs at exit
        try:
            client = Client(scheduler, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({reason}); "
                               "check the address, or start one (`dask scheduler`, dask-jobqueue)") from None
        cluster = Cluster(client)
        n = len(client.scheduler_info().get("workers", {}))
        log(f"Dask scheduler {scheduler}: {n} worker(s) now; dashboard {client.dashboard_link}")
    else:
        # one torch thread per process: the measured best on 2 cores, and what makes results equal bit for bit
        # and no noise-drawing thread beside it when the workers take every core (dni.noise.base.prefetch_pays_off)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        environ = dict(os.environ)
        local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=DASHBOARD,
                             silence_logs=logging.ERROR, env={"DNI_PREFETCH": "0"} if workers >= cores else {})
        _restore_environ(environ)  # Dask's nannies set OMP_NUM_THREADS=1 etc. in this process for their workers
        client = Client(local, set_as_default=False)
        cluster = Cluster(client, threads=1)
        log(f"Dask LocalCluster: {workers} worker process(es), one torch thread each; dashboard {client.dashboard_link}")
    try:
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if local is not None:
            with contextlib.suppress(Exception):
                local.close()
            _restore_environ(environ)


def _check_scheduler_address(scheduler: str) -> None:
    """:class:`ClusterError` in one line for an address Dask cannot parse (``garbage``: no port).

    ``Client(address)`` raises on such an address only after creating itself, and that half-built
    client's destructor then waits 2 × the connect timeout and prints a ``TimeoutError`` traceback
    at exit (issue 36); so the address is parsed here first, with Dask's own parser.
    """
    from distributed.comm.addressing import parse_address, parse_host_port, resolve_address

    try:
        scheme, location = parse_address(resolve_address(scheduler))
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(location)
    except (ValueError, TypeError) as err:
        raise ClusterError(f"{scheduler!r} is not a Dask scheduler address ({str(err).splitlines()[0]}); "
                           "give one like tcp://host:8786") from None


def _restore_environ(environ: dict) -> None:
    """Put this process's environment back as ``environ``. Dask's nannies set ``OMP_NUM_THREADS=1``
    (and MKL's, OpenBLAS's) in the client's own ``os.environ`` for the workers they spawn and leave it
    there, so every later subprocess — a notebook job, a second ``dni`` run from the same Python —
    would run one-threaded, and its numbers would differ from a two-thread run's."""
    for key in set(os.environ) - set(environ):
        del os.environ[key]
    for key, value in environ.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


# ---- on the workers ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _sequences(data: str, split: str, kind: str):
    """The digits of ``split``, loaded once per worker process."""
    from dni.data import load_sequences

    return load_sequences(data, split, kind, progress=False)


def _where() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:  # not on a worker: called in this process
        return "this process"


@contextlib.contextmanager
def _on_worker(threads: int | None):
    """Run a task body with ``threads`` torch threads; any error leaves as one line naming the worker."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    try:
        yield _where()
    except Exception as err:  # noqa: BLE001 — it reaches the user as one line
        raise ClusterError(f"worker {_where()}: {_cause(err)}") from None


def _cause(err: BaseException) -> str:
    """An error in one line: dni's own message, or the type and first line of any other."""
    return str(err) if isinstance(err, DniError) else f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def check_worker(data: str, kind: str) -> int:
    """On a worker: load the sweep's training and test digits (cached for its tasks); their count."""
    return len(_sequences(data, "train", kind)) + len(_sequences(data, "test", kind))


def train_task(config, state_path: str | None, threads: int | None):
    """On a worker: train the model of ``config``. Returns (TrainedModel, notes, worker address).

    ``state_path``: the model's training state (``<checkpoint>.partial``) as the client sees it; used
    when this worker can write there, so a rerun of this task after a lost worker goes on from it.
    """
    from dni.nn.presets import get_preset
    from dni.training.train import train

    with _on_worker(threads) as where:
        state = Path(state_path) if state_path else None
        if state is not None and not (state.parent.is_dir() and os.access(state.parent, os.W_OK)):
            state = None  # another machine: the model is trained from its first epoch
        notes = []
        trained = train(config, progress=False, train_data=_sequences(config.data, "train", get_preset(config.preset).data),
                        state_path=state, log=notes.append)
        return trained, notes, where


def evaluate_task(model, sigma_val, repeats: int, data: str, seed: int, device: str, eval_noise: str, draws: str,
                  threads: int | None):
    """On a worker: :func:`dni.evaluation.evaluate.evaluate` of ``model`` at ``sigma_val``. Returns (dataset, worker address)."""
    from dni.evaluation.evaluate import evaluate
    from dni.nn.presets import get_preset

    with _on_worker(threads) as where:
        ds = evaluate([model], sigma_val, repeats, data=_sequences(data, "test", get_preset(model.arch).data), seed=seed,
                      device=device, progress=False, eval_noise=eval_noise, draws=draws)
        return ds, where


# ---- on the client ----------------------------------------------------------------------------

def check_workers(cluster: Cluster, data: str, kind: str, log=print) -> None:
    """Every worker now connected imports dni and finds the data, else :class:`ClusterError` naming it.

    Asked before any task, so a worker set up wrongly stops the sweep before anything is written
    (a worker that joins later and fails is named when its task fails).
    """
    client = cluster.client
    if not client.scheduler_info().get("workers"):
        log("no Dask workers yet: the tasks wait for them")
        return
    imported = client.run(exec, "import dni.experiments.dask_cluster", on_error="return")
    for address, err in sorted(imported.items()):
        if isinstance(err, BaseException):
            raise ClusterError(f"worker {address} cannot import dni ({type(err).__name__}: {err}); "
                               "install dni in the workers' environment")
    loaded = client.run(check_worker, data, kind, on_error="return")
    for address, err in sorted(loaded.items()):
        if isinstance(err, BaseException):
            raise ClusterError(f"worker {address}: {_cause(err)}")


def evaluation_parts(todo: list[float], config) -> list[list[float]]:
    """The σval of one model's evaluation tasks: all together under shared draws, else one each."""
    from dni.noise.draws import takes_shared_draws

    if config.draws == "shared" and takes_shared_draws(config.eval_noise):
        return [todo] if todo else []
    return [[s] for s in todo]


def run_tasks(cluster, config, started: float | None, *, progress: bool = True, log=print):
    """Run the sweep ``config`` on ``cluster``: submit, save what comes back, and return the result
    dataset (:meth:`dni.experiments.result_file.SweepResultFile.finish`); with ``started`` None, train only and return the models.

    Ctrl-C (or any error) cancels the tasks still pending and leaves what was written as it is.
    """
    from distributed import as_completed

    from dni.experiments.result_file import SweepResultFile
    from dni.experiments.reuse import cached_model, guard_model_training_state
    from dni.nn.presets import get_preset
    from dni.store.checkpoints import save_checkpoint
    from dni.store.layout import checkpoint_path, training_state_path
    from dni.util.progress import tqdm

    if not isinstance(cluster, Cluster):  # a distributed.Client of the caller's
        cluster = Cluster(cluster)
    if config.batch_models:
        raise InvalidArgumentError("--batch-models trains the models together in one process; it does not go with --workers or --scheduler")
    client, directory = cluster.client, config.checkpoint_dir
    check_workers(cluster, config.data, get_preset(config.preset).data, log)
    configs = [config.train_config(s) for s in config.sigma_train]
    models = [cached_model(c, directory, log, config.retrain) for c in configs]  # other settings: refused before any task
    to_train = [i for i, m in enumerate(models) if m is None]
    for i in to_train:
        guard_model_training_state(training_state_path(checkpoint_path(directory, configs[i])), configs[i], config.retrain, log)
    directory.mkdir(parents=True, exist_ok=True)
    result = None if started is None else SweepResultFile(config, started, log, [configs[i] for i in to_train])
    done, total = set(), len(configs) * len(config.sigma_val)
    if result is not None:
        result.add_model(*[m for m in models if m is not None])
        done = result.points()
        if done:
            log(f"resuming {config.out}: {len(done)} of {total} points already evaluated")
    expected = {c.sigma_train: sum((c.preset, c.sigma_train, s) not in done for s in config.sigma_val) if result else 0 for c in configs}
    tasks: dict[str, tuple] = {}
    running = as_completed(loop=client.loop)

    def submit(kind: str, name: str, fn, *args, priority: int = 0):
        future = client.submit(fn, *args, key=f"{kind}-{name}-{uuid.uuid4().hex[:8]}", pure=False, priority=priority)
        tasks[future.key] = (kind, future, args)
        running.add(future)

    def submit_evaluation(m):
        points = result.points()
        todo = [s for s in config.sigma_val if (m.arch, m.sigma_train, s) not in points]
        bar.total += len(todo) - expected[m.sigma_train]
        bar.refresh()
        for part in evaluation_parts(todo, config):
            submit("evaluate", checkpoint_path(directory, m.config).stem, evaluate_task, m, part, config.repeats, config.data,
                   config.seed, config.device, config.eval_noise, config.draws, cluster.threads)

    with tqdm(total=len(to_train) + sum(expected.values()), desc="models trained + points evaluated", disable=not progress,
              unit="task") as bar:
        try:
            for i in to_train:  # the long tasks first
                path = checkpoint_path(directory, configs[i])
                submit("train", path.stem, train_task, configs[i], str(training_state_path(path)), cluster.threads, priority=1)
            for m in models:
                if m is not None and result is not None:
                    submit_evaluation(m)
            for future in running:
                kind, _, args = tasks.pop(future.key)
                try:
                    value = future.result()
                except DniError:
                    raise
                except Exception as err:  # noqa: BLE001 — e.g. a task whose workers kept dying (KilledWorker)
                    reason = str(err).splitlines()[0] if str(err) else ""
                    raise ClusterError(f"task {future.key} failed ({type(err).__name__}: {reason})") from None
                if kind == "train":
                    trained, notes, where = value
                    path = checkpoint_path(directory, trained.config)
                    save_checkpoint(trained, path)  # at once: an interrupted sweep keeps it
                    training_state_path(path).unlink(missing_ok=True)
                    models[configs.index(args[0])] = trained
                    resumed = "".join(f"; {n}" for n in notes)
                    log(f"trained {path} on {where}: {len(trained.history)} epoch(s), {trained.meta.get('train_seconds', 0):.0f} s{resumed}")
                    bar.update(1)
                    if result is not None:
                        result.add_model(trained)
                        submit_evaluation(trained)
                else:
                    ds, where = value
                    result.add(ds)
                    bar.update(len(args[1]))
        except BaseException:
            with contextlib.suppress(Exception):  # the error (or Ctrl-C) is what the user sees, even if the cluster is gone
                client.cancel([f for _, f, _ in tasks.values()], force=True)
            raise
    return models if result is None else result.finish()
