#!/usr/bin/env python3
"""Images per second of Model.encode_image over a folder of image files, against the mclip command
(`mclip embed --image DIR`) on the same files and model.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_encode.py --model mobileclip_s0.gguf \\
        --images photos/ --mclip build/tools/mclip
    # no photos at hand: --synthesize 64 writes 64 JPEGs cut from the fixture images into a temp folder
    PYTHONPATH=build/python /usr/bin/python3 bench/python_encode.py --model build/test-models/mobileclip_s0.gguf \\
        --synthesize 64 --from ../shared/fixtures/images --mclip build/tools/mclip

Both sides decode, preprocess and encode every file. The command's rate leaves out its start-up
and model load: it is (N - 1) / (time for N files - time for 1 file). Python's is the encode call
alone, on a model loaded before; its load time is printed separately. The best of --repeat runs
counts (the machine's other load only slows runs down).
"""

import argparse
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import time

import numpy as np

import mclip

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return "unknown CPU"


def synthesize(count: int, source: pathlib.Path, folder: pathlib.Path) -> None:
    """count JPEGs of about 640x480, random crops and scales of the images in source."""
    from PIL import Image

    originals = [Image.open(p).convert("RGB") for p in sorted(source.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES
                 and p.name != "truncated.jpg"]
    if not originals:
        sys.exit(f"no images in {source}")
    rng = random.Random(1)
    for index in range(count):
        image = originals[index % len(originals)]
        w, h = image.size
        cw, ch = rng.randint(w // 2, w), rng.randint(h // 2, h)
        left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
        crop = image.crop((left, top, left + cw, top + ch)).resize((640, 480), Image.BILINEAR)
        crop.save(folder / f"image{index:05d}.jpg", quality=90)


def run_cli(mclip_path, model, images, out, extra) -> float:
    start = time.perf_counter()
    subprocess.run([mclip_path, "embed", "--model", model, "--image", *images, "--out", out, *extra],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model file or name")
    parser.add_argument("--images", type=pathlib.Path, help="folder of images")
    parser.add_argument("--synthesize", type=int, default=0, help="write this many JPEGs into a temp folder instead")
    parser.add_argument("--from", dest="source", type=pathlib.Path, help="images to cut the synthesized ones from")
    parser.add_argument("--mclip", default="mclip", help="the mclip command")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="0: one per core")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mclip-bench-") as temp:
        temp = pathlib.Path(temp)
        if args.synthesize:
            if not args.source:
                parser.error("--synthesize needs --from FOLDER")
            folder = temp / "images"
            folder.mkdir()
            synthesize(args.synthesize, args.source, folder)
        elif args.images:
            folder = args.images
        else:
            parser.error("give --images DIR or --synthesize N --from DIR")
        files = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < 2:
            sys.exit(f"need at least 2 images in {folder}")

        start = time.perf_counter()
        model = mclip.load(args.model, precision=args.precision, threads=args.threads)
        load_seconds = time.perf_counter() - start
        model.encode_image(files[0])  # builds the image encoder, as the command's first image does
        python_seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            embeddings = model.encode_image(files, batch_size=args.batch_size, normalize=False)
            python_seconds.append(time.perf_counter() - start)

        cli_options = ["--precision", args.precision, "--threads", str(args.threads)]
        one, all_files = [], []
        for _ in range(args.repeat):
            one.append(run_cli(args.mclip, args.model, files[:1], temp / "one.npy", cli_options))
            all_files.append(run_cli(args.mclip, args.model, files, temp / "all.npy", cli_options))
        cli = np.load(temp / "all.npy")

    n = len(files)
    python_rate = n / min(python_seconds)
    cli_rate = (n - 1) / max(min(all_files) - min(one), 1e-9)
    same_batches = args.batch_size >= n
    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} usable cores")
    print(f"model: {model.name} ({model.path}), precision {model.precision}, backend {model.backend}, "
          f"{model.threads} threads")
    print(f"images: {n} files from {folder}")
    print(f"python encode_image (batch_size {args.batch_size}): {python_rate:.2f} images/s "
          f"(best of {args.repeat}: {min(python_seconds):.2f} s; model load {load_seconds * 1000:.0f} ms)")
    print(f"mclip embed --image: {cli_rate:.2f} images/s without start-up "
          f"({min(all_files):.2f} s for {n} files, {min(one):.2f} s for 1)")
    print(f"python / command: {python_rate / cli_rate:.2f}")
    if same_batches:
        print(f"embeddings equal to the command's bit for bit: {np.array_equal(embeddings, cli)}")
    else:
        error = np.max(np.linalg.norm(embeddings - cli, axis=1) / np.linalg.norm(cli, axis=1))
        print(f"embeddings vs the command's (other batches): max relative error {error:.1e}")


if __name__ == "__main__":
    main()
