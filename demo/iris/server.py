"""The iris model server: HTTP on the standard library, one decision tree in memory.

    GET  /health            → 200 {"status": "ok", "model": ...}   (the readiness probe)
    GET  /                  → what the model is and how to call it
    POST /predict           {"features": [5.1, 3.5, 1.4, 0.2]}            one row
                            {"features": [[5.1, 3.5, 1.4, 0.2], [...]]}   several rows
                         → {"class": "setosa", "probabilities": {...}}   (or "predictions": [...])

Environment: ``PORT`` (default 8080); ``MODEL_PATH`` (default ``/models/iris/model.json`` if
that file exists — the read-only MLMODELS_DIR mount lets a user swap the model without a new
image — else the model baked into the image at ``/app/model.json``); ``STORAGE`` (default
``/storage`` when it exists): each prediction is appended to ``predictions.jsonl`` there, the
model's only persistence. Logs go to stdout (``docker logs``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model as tree_model

MAX_BODY = 1024 * 1024
MAX_ROWS = 10_000


def _model_path() -> Path:
    configured = os.environ.get("MODEL_PATH")
    if configured:
        return Path(configured)
    mounted = Path("/models/iris/model.json")
    return mounted if mounted.is_file() else Path(__file__).resolve().parent / "model.json"


class BadRequest(ValueError):
    """The request body is not what /predict accepts."""


def _rows(body: Any) -> tuple[list[list[float]], bool]:
    """The feature rows of a request, and whether it sent a single row."""
    features = body.get("features") if isinstance(body, dict) else None
    if not isinstance(features, list) or not features:
        raise BadRequest(
            'send {"features": [sepal_length, sepal_width, petal_length, petal_width]}'
        )
    single = not isinstance(features[0], list)
    rows = [features] if single else features
    if len(rows) > MAX_ROWS:
        raise BadRequest(f"at most {MAX_ROWS} rows per request")
    for row in rows:
        if (
            not isinstance(row, list)
            or len(row) != len(tree_model.FEATURES)
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in row)
        ):
            raise BadRequest(f"each row must be {len(tree_model.FEATURES)} numbers: {row!r}")
    return [[float(x) for x in row] for row in rows], single


class Handler(BaseHTTPRequestHandler):
    server_version = "iris-demo/1"
    model: dict[str, Any] = {}
    log_file: Path | None = None
    lock = threading.Lock()

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(HTTPStatus.OK, {"status": "ok", "model": self.model["name"]})
        elif self.path == "/":
            self._send(
                HTTPStatus.OK,
                {
                    "model": self.model["name"],
                    "features": self.model["features"],
                    "classes": self.model["classes"],
                    "trainingAccuracy": self.model["trainingAccuracy"],
                    "usage": 'POST /predict {"features": [5.1, 3.5, 1.4, 0.2]}',
                },
            )
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path: {self.path}"})

    def do_POST(self) -> None:
        if self.path != "/predict":
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path: {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                raise BadRequest(f"send a JSON body of 1 byte to {MAX_BODY} bytes")
            body = json.loads(self.rfile.read(length))
            rows, single = _rows(body)
        except (BadRequest, ValueError) as error:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(error)})
            return
        answers = []
        for row in rows:
            label, probabilities = tree_model.predict(self.model["tree"], row)
            answers.append({"class": label, "probabilities": probabilities})
        self._record(rows, answers)
        if single:
            self._send(HTTPStatus.OK, {**answers[0], "model": self.model["name"]})
        else:
            self._send(HTTPStatus.OK, {"predictions": answers, "model": self.model["name"]})

    def _record(self, rows: list[list[float]], answers: list[dict[str, Any]]) -> None:
        if self.log_file is None:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = "".join(
            json.dumps({"time": stamp, "features": row, "class": answer["class"]}) + "\n"
            for row, answer in zip(rows, answers, strict=True)
        )
        try:
            with self.lock, self.log_file.open("a", encoding="utf-8") as stream:
                stream.write(lines)
        except OSError as error:  # storage full or read-only: serving matters more
            print(f"could not record predictions: {error}", flush=True)

    def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = (json.dumps(payload) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> int:
    path = _model_path()
    Handler.model = json.loads(path.read_text(encoding="utf-8"))
    storage = Path(os.environ.get("STORAGE", "/storage"))
    if storage.is_dir():
        Handler.log_file = storage / "predictions.jsonl"
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    # docker stop sends SIGTERM; shut down at once instead of waiting for the kill.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"serving {Handler.model['name']} from {path} on port {port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
