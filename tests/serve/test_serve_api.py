"""`mclip serve` over loopback: results equal the command line's, bad input gets 4xx while the
server keeps answering, WebSocket streams, limits, TLS.

usage: test_serve_api.py MCLIP TEST_MODELS_DIR FIXTURES_DIR
"""
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_test_util import (Server, WebSocket, data_uri, fixture_paths, insecure_context, multipart, post_json,  # noqa: E402
                             read_npy, request)

MCLIP = MODEL = FIXTURES = None
LABELS = ["rocket", "cat", "cup", "coffee"]
IMAGES = ["chelsea.png", "coffee.png", "rocket.jpg"]


def image_bytes(name):
    with open(os.path.join(FIXTURES, "images", name), "rb") as f:
        return f.read()


class ServeApiTest(unittest.TestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(MCLIP, MODEL, "--max-streams", "2", "--max-body", "3000000", "--timeout-ms", "3000")
        cls.url = cls.server.url

    @classmethod
    def tearDownClass(cls):
        if cls.server:
            code = cls.server.stop()
            assert code == 0, f"mclip serve exited with {code}: {''.join(cls.server.stderr)}"

    def wait_for_streams_closed(self):
        """Until the server counts no open stream: it releases a closed one in its close handler,
        which on a busy machine runs a while after the client's socket is gone (this server
        allows two streams at once)."""
        deadline = time.time() + 20
        while time.time() < deadline:
            status, metrics = request(self.url + "/metrics")
            if status == 200 and "\nmclip_streams 0\n" in metrics:
                return
            time.sleep(0.05)
        self.fail("the server still counts open streams 20 s after their clients closed them")

    def assert_answering(self):
        status, body = request(self.url + "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body, {"status": "ok"})
        self.assertTrue(self.server.alive())

    def test_models(self):
        status, body = request(self.url + "/v1/models")
        self.assertEqual(status, 200)
        m = body["data"][0]
        self.assertEqual(m["id"], "mobileclip_s0")
        self.assertEqual(m["architecture"], "mobileclip_s0")
        self.assertEqual(m["precision"], "f32")
        for key in ("dim", "image_size", "logit_scale"):
            self.assertIn(key, m)

    def test_classify_equals_the_command_line(self):
        run = subprocess.run([MCLIP, "classify", "--model", MODEL, "--precision", "f32", "--threads", "2", "--no-cache",
                              "--labels", ",".join(LABELS), "--top-k", "4", "--threshold", "0", "--json"] +
                             [os.path.join(FIXTURES, "images", n) for n in IMAGES],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr)
        expected = {os.path.basename(r["image"]): r for r in json.loads(run.stdout)["results"]}
        for name in IMAGES:
            # Once as an upload, once as a data URI in JSON.
            body, kind = multipart({"labels": ",".join(LABELS), "top_k": "4", "threshold": "0"}, [("image", name, image_bytes(name))])
            status, upload = request(self.url + "/v1/classify", "POST", body, {"Content-Type": kind})
            self.assertEqual(status, 200, upload)
            status, inline = post_json(self.url + "/v1/classify", {"image": data_uri(image_bytes(name)), "labels": LABELS,
                                                                    "top_k": 4, "threshold": 0, "model": "mobileclip_s0"})
            self.assertEqual(status, 200, inline)
            for got in (upload, inline):
                want = expected[name]
                self.assertEqual(got["label"], want["label"])
                self.assertFalse(got["unknown"])
                self.assertAlmostEqual(got["confidence"], want["confidence"], delta=1e-4)
                self.assertGreaterEqual(got["inference_ms"], 0)
                self.assertEqual([s["label"] for s in got["top_k"]], [s["label"] for s in want["top_k"]])
                for g, w in zip(got["top_k"], want["top_k"]):
                    for key in ("probability", "logit", "cosine"):
                        self.assertAlmostEqual(g[key], w[key], delta=1e-4, msg=f"{name} {g['label']} {key}")

    def test_templates_prefix_and_labelsets(self):
        status, made = post_json(self.url + "/v1/labelsets", {"labels": LABELS, "prefix": "a photo of a ", "suffix": "."})
        self.assertEqual(status, 200, made)
        self.assertEqual(made["templates"], ["a photo of a {}."])
        # The default template is the same prompt: the same set, the same answer.
        status, by_id = post_json(self.url + "/v1/classify", {"image": data_uri(image_bytes("coffee.png")), "labelset": made["id"], "top_k": 2})
        self.assertEqual(status, 200, by_id)
        status, by_labels = post_json(self.url + "/v1/classify", {"image": data_uri(image_bytes("coffee.png")), "labels": LABELS,
                                                                   "templates": ["a photo of a {}."], "top_k": 2})
        self.assertEqual(status, 200)
        self.assertEqual(by_id["labelset"], made["id"])
        self.assertEqual(by_labels["labelset"], made["id"])
        self.assertEqual(by_id["top_k"], by_labels["top_k"])
        status, other = post_json(self.url + "/v1/classify", {"image": data_uri(image_bytes("coffee.png")), "labels": LABELS,
                                                               "templates": ["a drawing of a {}."], "top_k": 2})
        self.assertEqual(status, 200)
        self.assertNotEqual(other["labelset"], made["id"])
        # A high threshold says "unknown".
        status, unknown = post_json(self.url + "/v1/classify", {"image": data_uri(image_bytes("coffee.png")), "labelset": made["id"], "threshold": 1})
        self.assertEqual(status, 200)
        self.assertTrue(unknown["unknown"])
        self.assertEqual(unknown["label"], "unknown")

    def test_embeddings_equal_mclip_embed(self):
        with tempfile.TemporaryDirectory() as tmp:
            texts = ["a photo of a cat.", "a rocket"]
            text_npy, image_npy = os.path.join(tmp, "t.npy"), os.path.join(tmp, "i.npy")
            common = [MCLIP, "embed", "--model", MODEL, "--precision", "f32", "--threads", "2"]
            for args in ([*common, "--text", texts[0], "--text", texts[1], "--out", text_npy],
                         [*common, "--image", os.path.join(FIXTURES, "images", "chelsea.png"),
                          "--image", os.path.join(FIXTURES, "images", "rocket.jpg"), "--out", image_npy]):
                run = subprocess.run(args, capture_output=True, text=True, timeout=300)
                self.assertEqual(run.returncode, 0, run.stderr)
            want_text, want_image = read_npy(text_npy), read_npy(image_npy)

        status, got = post_json(self.url + "/v1/embeddings", {"model": "mobileclip_s0", "input": texts})
        self.assertEqual(status, 200, got)
        self.assertEqual(got["object"], "list")
        self.assertGreater(got["usage"]["prompt_tokens"], 0)
        images = [image_bytes("chelsea.png"), image_bytes("rocket.jpg")]
        status, got_image = post_json(self.url + "/v1/embeddings", {"input": [data_uri(b) for b in images], "modality": "image"})
        self.assertEqual(status, 200, got_image)
        body, kind = multipart({}, [("file", "chelsea.png", images[0]), ("file", "rocket.jpg", images[1])])
        status, got_upload = request(self.url + "/v1/embeddings", "POST", body, {"Content-Type": kind})
        self.assertEqual(status, 200, got_upload)
        for answer, want in ((got, want_text), (got_image, want_image), (got_upload, want_image)):
            self.assertEqual(len(answer["data"]), len(want))
            for i, row in enumerate(answer["data"]):
                self.assertEqual(row["index"], i)
                self.assertEqual(len(row["embedding"]), len(want[i]))
                self.assertLessEqual(max(abs(a - b) for a, b in zip(row["embedding"], want[i])), 1e-4)
        status, normalized = post_json(self.url + "/v1/embeddings", {"input": "a cat", "normalize": True})
        self.assertEqual(status, 200)
        self.assertAlmostEqual(sum(v * v for v in normalized["data"][0]["embedding"]), 1.0, delta=1e-4)

    def test_bad_requests_get_4xx_and_the_server_keeps_answering(self):
        url = self.url
        png = image_bytes("coffee.png")
        cases = [
            ("POST", "/v1/classify", b"{not json", "application/json", 400),
            ("POST", "/v1/classify", b"[1,2]", "application/json", 400),
            ("POST", "/v1/classify", json.dumps({"labels": LABELS}).encode(), "application/json", 400),
            ("POST", "/v1/classify", json.dumps({"image": "data:image/png;base64,!!!", "labels": LABELS}).encode(), "application/json", 400),
            ("POST", "/v1/classify", json.dumps({"image": data_uri(b"not an image"), "labels": LABELS}).encode(), "application/json", 400),
            ("POST", "/v1/classify", json.dumps({"image": data_uri(image_bytes("truncated.jpg")), "labels": LABELS}).encode(), "application/json", 400),
            ("POST", "/v1/classify", json.dumps({"image": data_uri(png)}).encode(), "application/json", 400),
            ("POST", "/v1/classify", json.dumps({"image": data_uri(png), "labels": LABELS, "top_k": 0}).encode(), "application/json", 400),
            ("POST", "/v1/classify", json.dumps({"image": data_uri(png), "labels": LABELS, "threshold": 2}).encode(), "application/json", 400),
            ("POST", "/v1/classify", json.dumps({"image": data_uri(png), "labels": LABELS, "templates": ["no slot"]}).encode(), "application/json", 400),
            ("POST", "/v1/classify", json.dumps({"image": data_uri(png), "labels": LABELS, "model": "nope"}).encode(), "application/json", 404),
            ("POST", "/v1/classify", json.dumps({"image": data_uri(png), "labelset": "ls_missing"}).encode(), "application/json", 404),
            ("POST", "/v1/classify", b"--x\r\nbroken", "multipart/form-data; boundary=x", 400),
            ("POST", "/v1/classify", b"--x\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc", "multipart/form-data; boundary=x", 400),
            ("POST", "/v1/classify", b"data", "multipart/form-data", 400),
            ("POST", "/v1/embeddings", json.dumps({"input": []}).encode(), "application/json", 400),
            ("POST", "/v1/embeddings", json.dumps({"input": [1, 2]}).encode(), "application/json", 400),
            ("POST", "/v1/embeddings", json.dumps({"input": ["x"], "modality": "audio"}).encode(), "application/json", 400),
            ("POST", "/v1/embeddings", json.dumps({"input": ["x"], "model": "gpt-4"}).encode(), "application/json", 404),
            ("POST", "/v1/labelsets", json.dumps({"labels": []}).encode(), "application/json", 400),
            ("GET", "/v1/classify", None, None, 405),
            ("GET", "/nope", None, None, 404),
            ("GET", "/v1/stream", None, None, 426),
        ]
        rng = random.Random(14)
        for _ in range(200):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            route = rng.choice(["/v1/classify", "/v1/embeddings", "/v1/labelsets"])
            kind = rng.choice(["application/json", "multipart/form-data; boundary=" + junk[:8].hex(), "text/plain"])
            cases.append(("POST", route, junk, kind, None))
        for method, path, body, kind, expected in cases:
            status, answer = request(url + path, method, body, {"Content-Type": kind} if kind else {})
            if expected is not None:
                self.assertEqual(status, expected, (path, body[:80] if body else None, answer))
            else:
                self.assertGreaterEqual(status, 400, (path, body[:80]))
                self.assertLess(status, 500, (path, body[:80], answer))
            if status >= 400:
                self.assertIn("message", answer["error"])
        # Raw sockets: garbage, truncated requests, lying lengths, oversized bodies.
        raw_cases = [b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                     b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
                     b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n",
                     b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 2000 + b"\r\n"]
        for _ in range(50):
            raw_cases.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
        for raw in raw_cases:
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
                try:
                    s.sendall(raw)
                    s.shutdown(socket.SHUT_WR)
                    s.recv(4096)
                except OSError:
                    pass
        # The body limit (3 MB here) answers 413.
        status, answer = request(url + "/v1/classify", "POST", b"x" * 3100000, {"Content-Type": "application/json"})
        self.assertEqual(status, 413, answer)
        self.assert_answering()
        status, ok = post_json(url + "/v1/classify", {"image": data_uri(png), "labels": LABELS})
        self.assertEqual(status, 200, ok)
        status, metrics = request(url + "/metrics")
        self.assertEqual(status, 200)
        self.assertIn('mclip_http_requests_total{route="/v1/classify",status="400"}', metrics)
        self.assertIn("mclip_batch_size_bucket", metrics)

    def test_stream(self):
        self.wait_for_streams_closed()
        ws = WebSocket(self.server.port)
        self.assertEqual(ws.status, 101, ws.head)
        self.assertEqual(ws.recv_json()["type"], "ready")
        ws.send_text(json.dumps({"labels": LABELS, "top_k": 4, "threshold": 0, "smoothing": 0}))
        config = ws.recv_json()
        self.assertEqual(config["type"], "config", config)
        status, direct = post_json(self.url + "/v1/classify", {"image": data_uri(image_bytes("rocket.jpg")), "labels": LABELS, "top_k": 4, "threshold": 0})
        self.assertEqual(status, 200)
        frame = image_bytes("rocket.jpg")
        seqs = []
        for _ in range(3):
            ws.send_binary(frame)
            result = ws.recv_json()
            self.assertEqual(result["type"], "result", result)
            for key in ("seq", "label", "confidence", "unknown", "top_k", "inference_ms", "latency_ms", "fps", "dropped"):
                self.assertIn(key, result)
            self.assertEqual(result["label"], direct["label"])
            self.assertAlmostEqual(result["confidence"], direct["confidence"], delta=1e-4)
            seqs.append(result["seq"])
        self.assertEqual(seqs, [1, 2, 3])
        # A burst: only the newest waiting frame is kept; the others are counted as dropped.
        for _ in range(10):
            ws.send_binary(frame)
        answered, last = 0, None
        while True:
            last = ws.recv_json()
            answered += 1
            if last["seq"] == 13:
                break
        self.assertEqual(answered + last["dropped"], 10)
        # A new configuration while a frame is being encoded: that frame is still answered (a
        # client that keeps one frame in flight would otherwise wait forever), with the old labels
        # if it was done before the new ones were ready, else with the new ones, never a mix.
        edited = ["banana", "grand piano"]
        ws.send_binary(frame)
        ws.send_text(json.dumps({"labels": edited, "top_k": 2, "threshold": 0}))
        messages = [ws.recv_json(), ws.recv_json()]
        self.assertEqual(sorted(m["type"] for m in messages), ["config", "result"], messages)
        answer = next(m for m in messages if m["type"] == "result")
        self.assertEqual(answer["seq"], 14)
        shown = {score["label"] for score in answer["top_k"]}
        self.assertTrue(shown <= set(edited) or shown <= set(LABELS), answer)
        ws.close()

    def test_bad_stream_messages_end_only_that_stream(self):
        for bad in (lambda ws: ws.send_text("{oops"),
                    lambda ws: ws.send_binary(b"\xff\xd8 not a jpeg"),  # a frame before any configuration
                    lambda ws: (ws.send_text(json.dumps({"labels": LABELS})), ws.recv_json(), ws.send_binary(b"\xff\xd8 junk")),
                    lambda ws: ws.send_text(json.dumps({"labels": LABELS, "smoothing": 5})),
                    lambda ws: ws.send_raw(ws.frame(2, b"abc", fin=False) + ws.frame(0, b"def")),
                    lambda ws: ws.send_raw(bytes(random.Random(1).randrange(256) for _ in range(64)))):
            self.wait_for_streams_closed()
            ws = WebSocket(self.server.port)
            self.assertEqual(ws.status, 101)
            ws.recv_json()
            bad(ws)
            closed = False
            try:
                for _ in range(5):
                    message = ws.recv_json()
                    self.assertIn(message["type"], ("error", "config"))
            except (ConnectionError, OSError):
                closed = True
            self.assertTrue(closed, "the stream should end after a bad message")
            ws.sock.close()
        self.wait_for_streams_closed()
        self.assert_answering()
        ws = WebSocket(self.server.port)
        ws.recv_json()
        ws.send_text(json.dumps({"labels": LABELS}))
        ws.recv_json()
        ws.send_binary(image_bytes("rocket.jpg"))
        self.assertEqual(ws.recv_json()["type"], "result")
        ws.close()

    def test_too_many_streams_get_503(self):
        self.wait_for_streams_closed()
        first, second = WebSocket(self.server.port), WebSocket(self.server.port)
        self.assertEqual((first.status, second.status), (101, 101))
        third = WebSocket(self.server.port)
        self.assertEqual(third.status, 503, third.head)
        third.sock.close()
        first.close()
        second.close()

    def test_stalled_client_times_out(self):
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as s:
            s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
            start = time.time()
            try:
                s.recv(4096)
            except OSError:
                pass
            self.assertLess(time.time() - start, 25)  # --timeout-ms 3000 in this server
        self.assert_answering()


class ServeTlsTest(unittest.TestCase):
    def test_self_signed_https(self):
        server = Server(MCLIP, MODEL, tls=True)
        try:
            self.assertTrue(server.url.startswith("https://"), server.url)
            status, body = request(server.url + "/healthz", context=insecure_context())
            self.assertEqual(status, 200)
            self.assertEqual(body, {"status": "ok"})
            status, page = request(server.url + "/", context=insecure_context())
            self.assertEqual(status, 200)
            self.assertIn("<video", page)
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    MCLIP = sys.argv[1]
    MODEL, FIXTURES = fixture_paths(sys.argv[2], sys.argv[3])
    unittest.main(argv=[sys.argv[0]] + sys.argv[4:], verbosity=2)
