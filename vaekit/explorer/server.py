"""The explorer's web server: a Starlette app over one Space, served by uvicorn.

It serves its own page and assets (vaekit/explorer/static) and a small JSON API, nothing else: the run folder
is read once, at start, and no path of a request ever reaches the file system outside the static folder
(Starlette's StaticFiles refuses what resolves outside it). Every request body is bounded, JSON is parsed with
NaN and infinity refused, and every field is checked, so bad input gets a 4xx naming the problem. The model
runs under one lock, in a worker thread, so the event loop keeps answering while a decode runs.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import VaekitError
from .space import Space

STATIC = Path(__file__).with_name("static")
MAX_BODY = 64 * 1024  # bytes: a latent vector of a few thousand numbers, far below anything that strains memory
MAX_ITEMS = 64  # decoded items per request (samples, interpolation steps, neighbours)
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; object-src 'none'")]


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class BodyLimit:
    """ASGI middleware: a body over max_bytes gets 413 without being read into memory, whether its
    Content-Length says so or it streams past the limit; every answer gets the security headers."""

    def __init__(self, app, max_bytes: int = MAX_BODY):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _plain(send, 413, f"request body over {self.max_bytes} bytes")
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BadRequest(413, f"request body over {self.max_bytes} bytes")
            return message

        async def with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        try:
            await self.app(scope, limited_receive, with_headers)
        except BadRequest as e:
            if not started:
                await _plain(send, e.status, str(e))


async def _plain(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def create_app(space: Space, allowed_hosts: list[str] | None = None) -> Starlette:
    """The explorer's app for space. allowed_hosts: the Host headers it answers (DNS rebinding guard)."""
    lock = threading.Lock()

    async def run(fn, *args):
        def locked():
            with lock:
                return fn(*args)

        try:
            return await run_in_threadpool(locked)
        except (ValueError, VaekitError) as e:
            raise BadRequest(422, str(e)) from None

    async def index(request: Request):
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def info(request: Request):
        return JSONResponse(await run(space.info))

    async def decode(request: Request):
        doc = await _json(request)
        z = _field(doc, "z", space.check_code)
        return JSONResponse(await run(space.decode, z))

    async def point(request: Request):
        doc = await _json(request)
        u, v = _number(doc, "u"), _number(doc, "v")
        k = _int(doc, "k", 0, MAX_ITEMS, 8)

        def at():
            z = [round(float(x), 4) for x in space.point(u, v)]  # the page shows and keeps this code: decode it
            code = space.check_code(z)
            return {"z": z, **space.decode(code), "neighbours": space.neighbours(code, k)}

        return JSONResponse(await run(at))

    async def example(request: Request):
        i = request.path_params["index"]
        if not 0 <= i < len(space.codes):
            raise BadRequest(404, f"example {i} does not exist: the map holds examples 0 to {len(space.codes) - 1}")
        return JSONResponse(await run(space.example, i))

    async def neighbours(request: Request):
        doc = await _json(request)
        z = _field(doc, "z", space.check_code)
        k = _int(doc, "k", 1, MAX_ITEMS, 8)
        return JSONResponse({"neighbours": await run(space.neighbours, z, k)})

    async def interpolate(request: Request):
        doc = await _json(request)
        n = len(space.codes) - 1
        a, b = _int(doc, "a", 0, n), _int(doc, "b", 0, n)
        steps = _int(doc, "steps", 2, MAX_ITEMS, 8)
        method = doc.get("method", "linear")
        if method not in ("linear", "spherical"):
            raise BadRequest(422, "method must be 'linear' or 'spherical'")
        return JSONResponse({"items": await run(space.interpolate, a, b, steps, method)})

    async def sample(request: Request):
        doc = await _json(request)
        n = _int(doc, "n", 1, MAX_ITEMS, 8)
        seed = _int(doc, "seed", 0, 2 ** 31 - 1, 0)
        conditions = doc.get("conditions") or {}
        if not isinstance(conditions, dict) or len(conditions) > 8:
            raise BadRequest(422, "conditions must be an object of at most 8 column: value pairs")
        return JSONResponse({"items": await run(space.sample, n, seed, conditions)})

    async def bad_request(request: Request, exc: BadRequest):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/decode", decode, methods=["POST"]),
        Route("/api/point", point, methods=["POST"]),
        Route("/api/example/{index:int}", example),
        Route("/api/neighbours", neighbours, methods=["POST"]),
        Route("/api/interpolate", interpolate, methods=["POST"]),
        Route("/api/sample", sample, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(BodyLimit)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={BadRequest: bad_request, HTTPException: http_error})


async def _json(request: Request) -> dict:
    body = await request.body()
    try:
        doc = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise BadRequest(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BadRequest(400, "the body must be a JSON object")
    return doc


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _field(doc: dict, name: str, check):
    if name not in doc:
        raise BadRequest(422, f"'{name}' is missing")
    try:
        return check(doc[name])
    except ValueError as e:
        raise BadRequest(422, str(e)) from None


def _number(doc: dict, name: str) -> float:
    v = doc.get(name)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not abs(v) < 1e6:
        raise BadRequest(422, f"'{name}' must be a finite number of magnitude under 1e6")
    return float(v)


def _int(doc: dict, name: str, low: int, high: int, default: int | None = None) -> int:
    v = doc.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
        raise BadRequest(422, f"'{name}' must be an integer from {low} to {high}")
    return v


LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Explorer:
    """The explorer bound to host:port (port 0: a free one): run() serves in this thread until Ctrl-C (the
    command line); start() serves in a background thread and stop() ends it (tests, benchmarks)."""

    def __init__(self, space: Space, host: str = "127.0.0.1", port: int = 8765, log_level: str = "warning"):
        import socket

        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that name it, and without it each
        # answer (headers, then body) waits ~40 ms on the client's delayed ACK
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as e:
            self.socket.close()
            raise VaekitError(f"cannot listen on {host}:{port} ({e.strerror}): pass another --port, or 0 for any "
                              f"free one") from None
        self.socket.listen(128)
        self.space, self.host, self.port = space, host, self.socket.getsockname()[1]
        wildcard = host in ("0.0.0.0", "::", "")
        # the URL to open here: a wildcard address listens everywhere, but browsers will not open it
        shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
        self.url = f"http://{shown}:{self.port}/"
        hosts = ["*"] if wildcard else [*LOOPBACK, host, f"{host}:{self.port}"]
        config = uvicorn.Config(create_app(space, hosts), log_level=log_level, access_log=False,
                                limit_concurrency=64, timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024)
        self.server = uvicorn.Server(config)
        self._thread = None

    def run(self) -> None:
        self.server.run(sockets=[self.socket])

    def start(self, timeout: float = 30.0) -> Explorer:
        import time

        self._thread = threading.Thread(target=self.run, name="vaekit-explorer", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:  # uvicorn sets started once it accepts connections
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise VaekitError("the explorer's server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.socket.close()

    def __enter__(self) -> Explorer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
