"""Helpers for the `mclip serve` tests: start a server, HTTP and WebSocket clients, .npy reading."""
import base64
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

SKIP = 77  # ctest SKIP_RETURN_CODE


def skip_or_fail(reason):
    """Missing reference data: skip on a user's checkout, fail under CI (CI=true)."""
    if os.environ.get("CI", "").lower() == "true":
        print(f"FAIL: {reason} (required under CI)")
        sys.exit(1)
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def fixture_paths(default_models, default_fixtures):
    models = os.environ.get("MCLIP_TEST_MODELS") or default_models
    fixtures = os.environ.get("MCLIP_FIXTURES") or default_fixtures
    model = os.path.join(models, "mobileclip_s0.gguf")
    if not os.path.isdir(os.path.join(fixtures, "images")):
        skip_or_fail(f"reference fixtures not found in {fixtures} (set MCLIP_FIXTURES)")
    if not os.path.exists(model):
        skip_or_fail(f"fixture model {model} not found (ctest runs make_fixture_models first; or set MCLIP_TEST_MODELS)")
    return model, fixtures


class Server:
    """`mclip serve` on a free loopback port, stopped with SIGTERM."""

    def __init__(self, mclip, model, *extra, tls=False, precision="f32", threads="2"):
        args = [mclip, "serve", "--model", model, "--precision", precision, "--threads", threads, "--port", "0", "--no-cache"]
        if tls:
            args.append("--tls-self-signed")
        args += list(extra)
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr = []
        self.readers = [threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True)]
        self.readers[0].start()
        deadline = time.time() + 120
        self.port = None
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if "listening on" in line:
                self.url = line.split("listening on ")[1].strip().rstrip("/")
                self.port = int(self.url.rsplit(":", 1)[1])
                break
        if self.port is None:
            self.process.kill()
            raise RuntimeError("mclip serve did not start: " + "".join(self.stderr))
        self.readers.append(threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True))
        self.readers[1].start()

    def stop(self):
        self.process.terminate()
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise RuntimeError("mclip serve did not stop on SIGTERM")
        for reader in self.readers:
            reader.join()
        self.process.stdout.close()
        self.process.stderr.close()
        return code

    def alive(self):
        return self.process.poll() is None


def request(url, method="GET", body=None, headers=None, context=None, timeout=60):
    """(status, parsed JSON or text) for one HTTP request; errors are answers, not exceptions."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            status, raw, kind = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, kind = e.code, e.read(), e.headers.get("Content-Type", "")
    if kind.startswith("application/json"):
        return status, json.loads(raw)
    return status, raw.decode("utf-8", "replace")


def post_json(url, doc, **kw):
    return request(url, "POST", json.dumps(doc), {"Content-Type": "application/json"}, **kw)


def multipart(fields, files):
    """(body, content type) of a multipart/form-data form: fields {name: str}, files [(field, filename, bytes)]."""
    boundary = "mclip" + uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for field, filename, data in files:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def data_uri(data, kind="image/png"):
    return f"data:{kind};base64," + base64.b64encode(data).decode()


def read_npy(path):
    """float32 rows of a 2-D little-endian .npy file, as lists."""
    with open(path, "rb") as f:
        raw = f.read()
    assert raw[:6] == b"\x93NUMPY", path
    header_len = struct.unpack("<H", raw[8:10])[0] if raw[6] == 1 else struct.unpack("<I", raw[8:12])[0]
    start = (10 if raw[6] == 1 else 12) + header_len
    header = eval(raw[start - header_len:start].decode("latin1"))  # a Python dict literal by the format's definition
    assert header["descr"] == "<f4" and not header["fortran_order"], header
    rows, dim = header["shape"]
    values = struct.unpack(f"<{rows * dim}f", raw[start:start + 4 * rows * dim])
    return [list(values[r * dim:(r + 1) * dim]) for r in range(rows)]


class WebSocket:
    """A minimal RFC 6455 client: enough to drive /v1/stream and to send it malformed frames."""

    def __init__(self, port, path="/v1/stream", timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            buf += chunk
        head, _, self.buffer = buf.partition(b"\r\n\r\n")
        self.status = int(head.split()[1]) if head else 0
        self.head = head.decode("latin1")

    def send_raw(self, data):
        self.sock.sendall(data)

    def frame(self, opcode, payload, fin=True, mask=True):
        header = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        m = 0x80 if mask else 0
        if n < 126:
            header += bytes([m | n])
        elif n < 65536:
            header += bytes([m | 126]) + struct.pack(">H", n)
        else:
            header += bytes([m | 127]) + struct.pack(">Q", n)
        if not mask:
            return header + payload
        key = os.urandom(4)
        # XOR as one big integer: a per-byte Python loop costs ~1 µs a byte, 50 ms for a camera
        # frame, which a benchmark client would then spend between frames.
        if n == 0:
            return header + key
        mask_bytes = (key * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "little") ^ int.from_bytes(mask_bytes, "little")).to_bytes(n, "little")
        return header + key + masked

    def send_text(self, text):
        self.sock.sendall(self.frame(1, text.encode()))

    def send_binary(self, data):
        self.sock.sendall(self.frame(2, data))

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv(self):
        """(opcode, payload) of the next frame from the server."""
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        return b0 & 0x0F, self._read(n)

    def recv_json(self):
        while True:
            opcode, payload = self.recv()
            if opcode == 1:
                return json.loads(payload)
            if opcode == 8:
                raise ConnectionError("closed by the server")

    def close(self):
        try:
            self.sock.sendall(self.frame(8, b"\x03\xe8"))
        except OSError:
            pass
        self.sock.close()


def insecure_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
