"""Python threads calling one model at once (the GIL is released during inference) get the same
results as serial calls."""

import threading
import time

import numpy as np

THREADS = 4
ROUNDS = 2


def test_four_threads_on_one_model_equal_serial_results(model, images):
    images = images[:2]
    texts = ["a photo of a cat", "a rocket", "coffee"]
    expected_images = model.encode_image(images)
    expected_texts = model.encode_text(texts)
    expected_classes = model.classify(images[0], ["cat", "rocket", "cup"])
    failures = []
    start = threading.Barrier(THREADS)

    def work(index):
        try:
            start.wait()
            for round in range(ROUNDS):
                # Each thread mixes the calls in its own order, so different encoders overlap.
                calls = [
                    lambda: np.testing.assert_array_equal(model.encode_image(images), expected_images),
                    lambda: np.testing.assert_array_equal(model.encode_text(texts), expected_texts),
                    lambda: model.classify(images[0], ["cat", "rocket", "cup"]) == expected_classes or failures.append("classify"),
                ]
                for k in range(len(calls)):
                    calls[(index + round + k) % len(calls)]()
        except Exception as error:  # reported below with the thread's index
            failures.append(f"thread {index}: {error!r}")

    workers = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures, failures


def test_inference_releases_the_gil(model, images):
    # One library call (a single batch of 4 images) runs while the main thread keeps ticking:
    # had the call held the GIL, one gap between ticks would span all of it.
    done = threading.Event()

    def encode():
        model.encode_image(images + images[:1], batch_size=4)
        done.set()

    worker = threading.Thread(target=encode)
    start = last = time.monotonic()
    worker.start()
    gaps = []
    while not done.is_set():
        time.sleep(0.001)
        now = time.monotonic()
        gaps.append(now - last)
        last = now
    worker.join()
    duration = time.monotonic() - start
    assert max(gaps) < duration / 2, (max(gaps), duration)
