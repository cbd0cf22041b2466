#!/usr/bin/env python3
"""Hostile files through the mclip command: mutated versions of the fixture files (truncations,
bit flips, inserted and deleted bytes, oversized declared lengths) given to the commands that
read them (info, convert, embed, classify, tokenize, preprocess).

Every run must end with exit code 0, or a non-zero exit code and a message on stderr; never a
signal, a sanitizer report, a hang (a timeout), memory far beyond what the unmutated input takes,
or a partial output file. Each case runs against a fresh, empty output folder that must hold
nothing after a failure and nothing but the output after a success.

The mutations are drawn from a fixed seed, so a failure reproduces; the failing mutant is kept in
the report's folder. MCLIP_CLI_MUTATIONS scales the number of mutants (default 300), and
MCLIP_CLI_MUTATIONS_SEED changes the seed.

Without the reference fixtures or the converted test models, only the cases that need neither
run (the seed files in fuzz/corpus); under CI (CI=true) their absence is a failure.
"""
import argparse
import gzip
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

TIMEOUT_S = 60
# A mutant may take this much more resident memory than the unmutated input did. The largest
# allocation a hostile input may legitimately cause is an image at the pixel limit
# (89,478,485 pixels x 3 bytes = 268 MB, see docs/limits.md).
MEMORY_ALLOWANCE_BYTES = 512 << 20


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mclip", required=True)
    parser.add_argument("--source", required=True, help="the repository root")
    parser.add_argument("--models", required=True,
                        help="converted test models (tests/models make_fixture_models); $MCLIP_TEST_MODELS overrides it, "
                             "as it does for every test")
    parser.add_argument("--fixtures", default=os.environ.get("MCLIP_FIXTURES"))
    parser.add_argument("--count", type=int, default=int(os.environ.get("MCLIP_CLI_MUTATIONS", "300")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("MCLIP_CLI_MUTATIONS_SEED", "18")))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if not args.fixtures:
        args.fixtures = os.path.join(args.source, "..", "shared", "fixtures")
    return args


# --- mutations --------------------------------------------------------------------------------

def length_fields(data):
    """Offsets of fields that declare a length or count, by format; the generic mutation below
    covers everything else."""
    if data[:4] == b"GGUF":
        return [(8, 8), (16, 8), (24, 8)]  # tensor count, key count, the first key's length
    if data[:6] == b"\x93NUMPY":
        return [(8, 2 if data[6] == 1 else 4)]
    if data[:4] == b"PK\x03\x04":
        fields = []
        position = 0
        while True:  # every local header's compressed and uncompressed sizes and name length
            position = data.find(b"PK\x03\x04", position)
            if position < 0:
                break
            fields += [(position + 18, 4), (position + 22, 4), (position + 26, 2)]
            position += 4
        end = data.rfind(b"PK\x05\x06")
        if end >= 0:
            fields += [(end + 8, 2), (end + 10, 2), (end + 12, 4), (end + 16, 4)]
        return fields
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return [(8, 4), (16, 4), (20, 4)]  # IHDR length, width, height
    if data[:2] == b"\xff\xd8":
        fields = []
        for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc4", b"\xff\xda", b"\xff\xe1", b"\xff\xdb"):
            position = data.find(marker)
            if position >= 0:
                fields.append((position + 2, 2))
                if marker in (b"\xff\xc0", b"\xff\xc2"):
                    fields += [(position + 5, 2), (position + 7, 2)]  # height, width
        return fields
    if data[:4] == b"RIFF":
        return [(4, 4), (16, 4)]
    if len(data) > 8 and data[8:9] == b"{":
        return [(0, 8)]  # safetensors header length
    return []


def mutate(data, rng):
    """Returns (description, mutant)."""
    data = bytearray(data)
    # Headers decide how everything after them is read: aim half the mutations at the start.
    def position(span=None):
        limit = len(data) if span is None else min(len(data), span)
        return rng.randrange(max(limit, 1))

    kind = rng.choice(["truncate", "flip", "flip", "insert", "delete", "length", "length"])
    if kind == "truncate" or not data:
        cut = rng.choice([0, 1, position(64), position(4096), position(), len(data) - 1])
        return "truncate to %d bytes" % max(cut, 0), bytes(data[:max(cut, 0)])
    if kind == "flip":
        flips = rng.choice([1, 1, 2, 8])
        where = []
        for _ in range(flips):
            at = position(4096) if rng.random() < 0.5 else position()
            data[at] ^= 1 << rng.randrange(8)
            where.append(at)
        return "flip bits at %s" % where, bytes(data)
    if kind == "insert":
        at = position(4096) if rng.random() < 0.5 else position()
        chunk = bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 64])))
        return "insert %d bytes at %d" % (len(chunk), at), bytes(data[:at] + chunk + data[at:])
    if kind == "delete":
        at = position(4096) if rng.random() < 0.5 else position()
        n = rng.choice([1, 4, 64, 1024])
        return "delete %d bytes at %d" % (n, at), bytes(data[:at] + data[at + n:])
    fields = length_fields(bytes(data))
    if fields and rng.random() < 0.7:
        at, width = rng.choice(fields)
    else:
        at, width = position(4096), rng.choice([2, 4, 8])
    at = min(at, max(len(data) - width, 0))
    big = rng.choice([0xFF, 0x7F, 0x80])
    value = bytes([big] * width) if rng.random() < 0.5 else bytes([0] * (width - 1) + [big])
    if rng.random() < 0.5:
        value = value[::-1]
    data[at:at + width] = value[:len(data) - at]
    return "oversized length field (%d bytes) at %d" % (width, at), bytes(data)


# --- the cases --------------------------------------------------------------------------------

class Case:
    """A command reading one file: `argv` holds {in} and {out}; `stdin_file` feeds the input on
    standard input instead."""

    def __init__(self, name, source, argv, weight, stdin=False, head_only=None, valid=True):
        self.name, self.source, self.argv, self.weight, self.stdin = name, source, argv, weight, stdin
        # The unmutated input must succeed: otherwise every mutant "fails cleanly" for a reason
        # that has nothing to do with it (a command that cannot even start, for one).
        self.valid = valid
        self.head_only = head_only  # mutate only the first N bytes (large model files)
        # What follows {in} in the command line ("{in}.jpg"): the input file's name ends so.
        self.suffix = next((a.split("{in}", 1)[1] for a in argv if "{in}" in a), "")
        with open(source, "rb") as f:
            self.data = f.read()
        self.baseline_rss = None


def build_cases(args, work):
    args.models = os.environ.get("MCLIP_TEST_MODELS") or args.models
    fixtures, models, corpus = args.fixtures, args.models, os.path.join(args.source, "fuzz", "corpus")
    have_fixtures = os.path.isdir(fixtures)
    model = os.path.join(models, "mobileclip_s0.gguf")
    have_model = os.path.isfile(model)
    cases = []

    def add(name, source, argv, weight, **kw):
        if os.path.isfile(source):
            cases.append(Case(name, source, argv, weight, **kw))

    images = [os.path.join(corpus, "image", f) for f in sorted(os.listdir(os.path.join(corpus, "image")))]
    if have_fixtures:
        images += [os.path.join(fixtures, "images", f) for f in ("rocket.jpg", "chelsea.png", "truncated.jpg")]
    for image in images:
        ext = os.path.splitext(image)[1]
        add("preprocess " + os.path.basename(image), image, ["preprocess", "{in}" + ext, "--out", "{out}/x.npy"], 4,
            valid=not image.endswith("truncated.jpg"))
    # Not model files (no architecture keys): refused, after the whole GGUF structure is read.
    add("info small.gguf", os.path.join(corpus, "gguf", "small.gguf"), ["info", "{in}.gguf"], 6, valid=False)
    add("info --json small.gguf", os.path.join(corpus, "gguf", "small.gguf"), ["info", "--json", "{in}.gguf"], 3, valid=False)
    for checkpoint in ("state_dict.pt", "nested.pt", "deflated.pt", "big_endian.pt", "small.safetensors"):
        folder = "safetensors" if checkpoint.endswith("safetensors") else "pytorch_checkpoint"
        # Read whole, then refused: they do not hold MobileCLIP-S0's tensors.
        add("convert " + checkpoint, os.path.join(corpus, folder, checkpoint),
            ["convert", "--arch", "mobileclip_s0", "--in", "{in}", "--out", "{out}/m.gguf"], 4, valid=False)
    if have_fixtures:
        for checkpoint in ("state_dict.pt", "nested.pt", "expected.safetensors"):
            add("convert fixture " + checkpoint, os.path.join(fixtures, "checkpoints", checkpoint),
                ["convert", "--arch", "mobileclip_s0", "--in", "{in}", "--out", "{out}/m.gguf"], 4, valid=False)
        vocab = os.path.join(fixtures, "tokenizer", "bpe_simple_vocab_16e6.txt.gz")
        add("tokenize --vocab", vocab, ["tokenize", "--vocab", "{in}.txt.gz", "a photo of a cat"], 3)
        cases_jsonl = os.path.join(work, "cases.jsonl")
        with open(os.path.join(fixtures, "tokenizer", "cases.jsonl"), "rb") as src, open(cases_jsonl, "wb") as dst:
            dst.write(b"".join(src.readlines()[:40]))
        add("tokenize --jsonl", cases_jsonl, ["tokenize", "--vocab", vocab, "--jsonl"], 6, stdin=True)
    if have_model:
        tokens = os.path.join(work, "tokens.npy")
        header = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 77), }"
        header += " " * ((-(10 + len(header) + 1)) % 64) + "\n"
        ids = [49406, 320, 1125, 539, 320, 2368, 49407] + [0] * 70
        with open(tokens, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack("<154q", *(ids * 2)))
        add("embed --tokens-npy", tokens, ["embed", "--model", model, "--tokens-npy", "{in}.npy", "--out", "{out}/e.npy"], 3)
        pixels = os.path.join(work, "pixels.npy")
        side = 256
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, %d, %d), }" % (side, side)
        header += " " * ((-(10 + len(header) + 1)) % 64) + "\n"
        with open(pixels, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(4 * 3 * side * side))
        add("embed --image-npy", pixels, ["embed", "--model", model, "--image-npy", "{in}.npy", "--out", "{out}/e.npy"], 2,
            head_only=4096)
        add("embed --image", os.path.join(corpus, "image", "baseline.jpg"),
            ["embed", "--model", model, "--image", "{in}.jpg", "--out", "{out}/e.npy"], 2)
        add("classify image", os.path.join(corpus, "image", "rgb.png"),
            ["classify", "--model", model, "--no-cache", "--labels", "cat,dog", "{in}.png"], 2)
        labels = os.path.join(work, "labels.txt")
        with open(labels, "w") as f:
            f.write("cat\ndog\n# a comment\nforklift\n")
        add("classify --labels-file", labels,
            ["classify", "--model", model, "--no-cache", "--labels-file", "{in}", os.path.join(corpus, "image", "rgb.png")], 2)
        add("info model", model, ["info", "{in}.gguf"], 3, head_only=65536)
        add("embed --model", model, ["embed", "--model", "{in}.gguf", "--text", "a cat", "--out", "{out}/e.npy"], 1,
            head_only=65536)
    return cases, have_fixtures, have_model


# --- running ----------------------------------------------------------------------------------

def is_asan(binary):
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "libasan" in out or "libtsan" in out


# Linux keeps a process's peak RSS across exec, so a command forked straight from this (large)
# Python process would report this process's memory as its own. The command is therefore started
# by a small intermediate that forks it, reports its peak RSS on the file descriptor it is given
# and ends the way the command ended (the same exit code, or the same signal).
SPAWN = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(int(sys.argv[1]), str(usage.ru_maxrss * 1024).encode())
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.WEXITSTATUS(status))
"""


def run_case(mclip, case, input_path, out_dir):
    """Runs one command; returns (exit status or None on timeout, stderr, peak RSS bytes, seconds)."""
    argv = [mclip] + [a.replace("{in}", input_path).replace("{out}", out_dir) for a in case.argv]
    stdin = open(input_path + case.suffix, "rb") if case.stdin else subprocess.DEVNULL
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as rss:
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-c", SPAWN, str(rss.fileno())] + argv, stdin=stdin, stdout=out, stderr=err,
                                   cwd=out_dir, pass_fds=(rss.fileno(),), start_new_session=True,
                                   env=dict(os.environ, MCLIP_CACHE_DIR=os.path.join(out_dir, ".cache-unused")))
        try:
            code = process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
            code = None
        elapsed = time.monotonic() - started
        if case.stdin:
            stdin.close()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        rss.seek(0)
        peak = int(rss.read() or b"0")
    return code, stderr, peak, elapsed


def leftovers(out_dir):
    return sorted(f for f in os.listdir(out_dir) if f != ".cache-unused")


def check(case, code, stderr, rss, out_dir, sanitized):
    """The contract; returns what was broken, or None."""
    if code is None:
        return "no answer within %d s (a hang)" % TIMEOUT_S
    if code < 0:
        return "killed by signal %d" % -code
    for report in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "WARNING: ThreadSanitizer"):
        if report in stderr:
            return "sanitizer report: " + report
    if code != 0 and not stderr.strip():
        return "exit code %d without a message on stderr" % code
    if code != 0 and leftovers(out_dir):
        return "failed but left %s behind" % leftovers(out_dir)
    if code == 0 and any(not f.endswith((".npy", ".gguf")) for f in leftovers(out_dir)):
        return "succeeded but left %s behind" % leftovers(out_dir)
    if not sanitized and case.baseline_rss is not None and rss > case.baseline_rss + MEMORY_ALLOWANCE_BYTES:
        return "peak memory %d MiB, the unmutated input takes %d MiB" % (rss >> 20, case.baseline_rss >> 20)
    return None


def main():
    args = parse_args()
    work = tempfile.mkdtemp(prefix="mclip-cli-mutations-")
    cases, have_fixtures, have_model = build_cases(args, work)
    ci = os.environ.get("CI") == "true"
    if not have_fixtures or not have_model:
        missing = "reference fixtures (%s)" % args.fixtures if not have_fixtures else "converted test models (%s)" % args.models
        if ci:
            print("cli_mutations: %s not found; required under CI" % missing, file=sys.stderr)
            return 1
        print("cli_mutations: %s not found: running only the cases that need neither" % missing)
    sanitized = is_asan(args.mclip)
    rng = random.Random(args.seed)

    # The unmutated inputs first: their peak memory is the baseline, and they must end cleanly too.
    lock = threading.Lock()
    failures = []
    counter = [0]

    def attempt(case, description, data):
        with lock:
            counter[0] += 1
            index = counter[0]
        case_dir = os.path.join(work, "run-%d" % index)
        out_dir = os.path.join(case_dir, "out")
        os.makedirs(out_dir)
        input_path = os.path.join(case_dir, "input")
        with open(input_path + case.suffix, "wb") as f:
            f.write(data)
        code, stderr, rss, seconds = run_case(args.mclip, case, input_path, out_dir)
        case.last_code, case.last_stderr = code, stderr
        problem = check(case, code, stderr, rss, out_dir, sanitized)
        if problem:
            kept = os.path.join(work, "failure-%d%s" % (index, case.suffix))
            shutil.copy(input_path + case.suffix, kept)
            with lock:
                failures.append("%s, %s: %s\n    input kept at %s\n    stderr: %s" %
                                (case.name, description, problem, kept, stderr.strip()[-400:]))
        else:
            shutil.rmtree(case_dir)
        return rss, seconds

    started = time.monotonic()
    for case in cases:
        case.baseline_rss, _ = attempt(case, "unmutated", case.data)
        if case.valid and case.last_code != 0:
            failures.append("%s, unmutated: exit code %s, so its mutants test nothing\n    stderr: %s" %
                            (case.name, case.last_code, case.last_stderr.strip()[-400:]))

    # Each mutant is made when it runs, from its own seed: model files are large.
    def run_mutant(item):
        case, seed = item
        local = random.Random(seed)
        if case.head_only and len(case.data) > case.head_only:
            description, head = mutate(case.data[:case.head_only], local)
            if description.startswith("truncate"):
                mutant = head  # a truncated model file, not one with its header cut short
            else:
                mutant = head + case.data[case.head_only:]
        else:
            description, mutant = mutate(case.data, local)
        attempt(case, description + " (seed %d)" % seed, mutant)

    total_weight = sum(c.weight for c in cases)
    plan = []
    for case in cases:
        n = max(1, round(args.count * case.weight / total_weight))
        plan += [(case, rng.randrange(1 << 30)) for _ in range(n)]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(run_mutant, plan))

    elapsed = time.monotonic() - started
    print("cli_mutations: %d cases, %d mutants (seed %d), %.0f s" % (len(cases), len(plan), args.seed, elapsed))
    for case in cases:
        print("  %-40s baseline peak %4d MiB" % (case.name, (case.baseline_rss or 0) >> 20))
    if failures:
        print("cli_mutations: %d failures:" % len(failures), file=sys.stderr)
        for failure in failures:
            print("  " + failure, file=sys.stderr)
        return 1
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
