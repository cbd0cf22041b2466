#!/usr/bin/env python3
"""Load test of `mclip serve` over loopback (a benchmark, not a timed test).

Starts the server, then:
  1. one client sending POST /v1/classify back to back for --seconds,
  2. --clients concurrent clients for --seconds (dynamic batching should raise throughput),
  3. a WebSocket stream of 640x480 JPEG frames, one in flight (as the web app sends), then
     pushed at 30 frames per second regardless of answers (late frames are dropped by the server).
Reports p50/p99 latency, throughput, failed requests, resident memory after warm-up and after the
run, stream fps, and the CPU (lscpu).

usage: bench/serve_load.py --mclip build/tools/mclip --model mobileclip_s0 [--precision auto]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "serve"))
from serve_test_util import Server, WebSocket, multipart, post_json, request  # noqa: E402

LABELS = ["person", "cat", "dog", "car", "rocket", "cup", "laptop", "phone", "plant", "bicycle"]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def load(url, body, kind, clients, seconds):
    latencies, failures = [], []
    lock = threading.Lock()
    stop = time.time() + seconds

    def client():
        while time.time() < stop:
            start = time.perf_counter()
            status, answer = request(url + "/v1/classify", "POST", body, {"Content-Type": kind})
            elapsed = time.perf_counter() - start
            with lock:
                (latencies if status == 200 else failures).append(elapsed if status == 200 else (status, answer))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - began
    return {"clients": clients, "requests": len(latencies), "failed": len(failures), "seconds": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 2), "p50_ms": round(1000 * percentile(latencies, 50), 1),
            "p99_ms": round(1000 * percentile(latencies, 99), 1), "failures": failures[:3]}


def stream(port, frame, seconds, push_fps=None):
    ws = WebSocket(port)
    ws.recv_json()
    ws.send_text(json.dumps({"labels": LABELS, "top_k": 3, "threshold": 0}))
    ws.recv_json()
    results = []
    began = time.time()
    if push_fps is None:  # one frame in flight, as the web app does
        while time.time() - began < seconds:
            ws.send_binary(frame)
            results.append(ws.recv_json())
    else:
        def reader():
            try:
                while True:
                    results.append(ws.recv_json())
            except (ConnectionError, OSError):
                pass
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        sent = 0
        while time.time() - began < seconds:
            ws.send_binary(frame)
            sent += 1
            time.sleep(max(0.0, began + sent / push_fps - time.time()))
        time.sleep(1.0)
    wall = time.time() - began
    ws.close()
    last = results[-1] if results else {}
    return {"mode": "one in flight" if push_fps is None else f"pushed at {push_fps} fps", "frames": len(results),
            "fps_end_to_end": round(len(results) / wall, 1), "server_fps": round(last.get("fps", 0), 1),
            "dropped": last.get("dropped", 0),
            "latency_p50_ms": round(percentile([r["latency_ms"] for r in results], 50), 1),
            "inference_p50_ms": round(percentile([r["inference_ms"] for r in results], 50), 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mclip", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", default="0")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--stream-seconds", type=float, default=10)
    parser.add_argument("--image", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures", "images", "rocket.jpg"))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        jpeg = os.path.join(tmp, "frame.jpg")
        subprocess.run(["ffmpeg", "-v", "error", "-i", args.image, "-vf", "scale=640:480", "-q:v", "4", "-y", jpeg], check=True)
        with open(jpeg, "rb") as f:
            frame = f.read()

    server = Server(args.mclip, args.model, "--max-wait-ms", "3", "--max-batch", "16", precision=args.precision, threads=args.threads)
    try:
        url = server.url
        status, made = post_json(url + "/v1/labelsets", {"labels": LABELS})
        assert status == 200, made
        body, kind = multipart({"labelset": made["id"], "top_k": "3"}, [("image", "frame.jpg", frame)])
        # Warm-up at full concurrency: encoders built, working buffers sized for the largest
        # batches, so that memory growth after it would mean a leak.
        load(url, body, kind, args.clients, 5)
        rss_warm = rss_mb(server.process.pid)
        single = load(url, body, kind, 1, args.seconds)
        many = load(url, body, kind, args.clients, args.seconds)
        rss_after = rss_mb(server.process.pid)
        streams = [stream(server.port, frame, args.stream_seconds), stream(server.port, frame, args.stream_seconds, push_fps=30)]
        status, models = request(url + "/v1/models")
        status, metrics = request(url + "/metrics")
        batch_lines = [line for line in metrics.splitlines() if line.startswith("mclip_batch_size_")]
    finally:
        server.stop()

    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    cpu_lines = [line for line in cpu.splitlines() if line.split(":")[0] in ("Model name", "CPU(s)", "Thread(s) per core", "Flags")]
    report = {"model": models["data"][0], "single_client": single, "concurrent": many,
              "speedup": round(many["throughput_rps"] / single["throughput_rps"], 2) if single["throughput_rps"] else None,
              "rss_mb_after_warmup": round(rss_warm, 1), "rss_mb_after_run": round(rss_after, 1),
              "rss_growth_percent": round(100 * (rss_after - rss_warm) / rss_warm, 1), "streams": streams,
              "batch_size_histogram": batch_lines,
              "cpu": [line if not line.startswith("Flags") else "Flags: " + " ".join(
                  f for f in line.split(":", 1)[1].split() if f.startswith(("avx512", "amx", "avx2"))) for line in cpu_lines]}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
