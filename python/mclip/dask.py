"""Embedding many image files on a Dask cluster (python3-distributed).

    from dask.distributed import Client
    import mclip.dask

    client = Client("tcp://scheduler:8786")      # or Client(LocalCluster(...))
    embeddings = mclip.dask.embed_files(client, paths, model="/models/mobileclip_s0.gguf")

The paths are cut into tasks of batch_size files; each worker process loads the model once (the
first task that needs it) and keeps it for later tasks and later calls; the embeddings come back
in the order of the paths, equal to what model.encode_image(paths) gives in one process. The
workers read the files and the model themselves, so both must be reachable at the same path on
every worker machine (a shared filesystem), or the model given by name (downloaded into each
worker's cache).
"""

from __future__ import annotations

import os
import threading

import numpy as np

import mclip

__all__ = ["embed_files", "worker_model"]

# The models of this process, by what load() was given: a Dask worker keeps its model for the
# next task instead of loading it again.
_models: dict = {}
_models_lock = threading.Lock()


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _default_threads() -> int:
    """Threads per model call inside a Dask worker: the worker's cores split between its task
    threads, so nthreads tasks at once do not oversubscribe the machine."""
    try:
        from distributed import get_worker

        task_threads = max(1, int(get_worker().nthreads))
    except (ImportError, ValueError):
        task_threads = 1
    return max(1, _usable_cores() // task_threads)


def worker_model(model, precision: str = "auto", threads=None, backend: str = "auto") -> mclip.Model:
    """The model of this process for these options, loaded on first use and kept. Inside a Dask
    task it is the worker's model; threads=None splits the worker's cores between its threads."""
    if threads is None:
        threads = _default_threads()
    key = (os.fspath(model), precision, threads, backend)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None or loaded.closed:
            loaded = mclip.load(model, precision=precision, threads=threads, backend=backend)
            _models[key] = loaded
        return loaded


def _embed_chunk(paths, model, precision, threads, backend, normalize, exif):
    m = worker_model(model, precision=precision, threads=threads, backend=backend)
    # One library call per task: the rows equal encode_image(all paths, batch_size=len(paths)).
    return m.encode_image(paths, normalize=normalize, batch_size=len(paths), exif=exif)


def embed_files(client, paths, model, batch_size: int = 32, normalize: bool = True, precision: str = "auto",
                threads=None, backend: str = "auto", exif: bool = True) -> np.ndarray:
    """Image embeddings of files on a Dask cluster, float32 [len(paths), dim], in input order.

    client: a dask.distributed.Client.
    paths: image files (str or pathlib.Path) readable by the workers; relative paths are made
        absolute here, on the client.
    model: a model file (made absolute when it exists here) or a model name, as for mclip.load.
    batch_size: files per task (and per library call); one task is the unit a worker takes.
    normalize, exif: as for Model.encode_image.
    precision, threads, backend: as for mclip.load; threads=None gives each of a worker's task
        threads its share of the worker's cores.

    A file that cannot be read fails its task, and this call raises the worker's mclip.Error.
    """
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    if not paths:
        raise mclip.InvalidArgument("no images: the list of paths is empty")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise mclip.InvalidArgument(f"batch_size must be a positive int, got {batch_size!r}")
    model = os.fspath(model)
    if os.path.exists(model):
        model = os.path.abspath(model)
    chunks = [paths[start:start + batch_size] for start in range(0, len(paths), batch_size)]
    futures = client.map(_embed_chunk, chunks, model=model, precision=precision, threads=threads, backend=backend,
                         normalize=bool(normalize), exif=bool(exif), pure=False)
    return np.concatenate(client.gather(futures))
