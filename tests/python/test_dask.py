"""mclip.dask.embed_files on a LocalCluster of 2 worker processes equals the single-process result."""

import os

import numpy as np
import pytest

import mclip

distributed = pytest.importorskip("distributed", reason="python3-distributed is not installed")
import mclip.dask  # noqa: E402  (needs distributed)


@pytest.fixture(scope="module")
def client():
    # Workers are separate processes, each loading the model once; no dashboard (needs bokeh).
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


def test_two_workers_give_the_single_process_result(client, model_path, images, model):
    paths = [str(p) for p in images] + [str(images[0])]  # 4 files, tasks of 2 files
    embeddings = mclip.dask.embed_files(client, paths, model=model_path, batch_size=2)
    # Equal to the same batches in one process (oneDNN's results depend on the batch size in the
    # last bits; see test_api.py).
    np.testing.assert_array_equal(embeddings, model.encode_image(paths, batch_size=2))

    def worker_state():
        return os.getpid(), len(mclip.dask._models)

    states = client.run(worker_state).values()
    assert len({pid for pid, _ in states}) == 2
    # Each worker loaded the model at most once, whatever number of tasks it ran.
    assert max(count for _, count in states) == 1


def test_options_reach_the_workers(client, model_path, images):
    raw = mclip.dask.embed_files(client, images[:2], model=model_path, batch_size=1, normalize=False, precision="f32",
                                 exif=False)
    with mclip.load(model_path, precision="f32") as f32:
        np.testing.assert_array_equal(raw, f32.encode_image(images[:2], batch_size=1, normalize=False, exif=False))


def test_a_bad_file_raises_the_workers_error(client, model_path, fixtures_dir):
    with pytest.raises(mclip.InvalidInput, match="truncated.jpg"):
        mclip.dask.embed_files(client, [fixtures_dir / "images" / "truncated.jpg"], model=model_path)
    with pytest.raises(mclip.InvalidArgument, match="empty"):
        mclip.dask.embed_files(client, [], model=model_path)
