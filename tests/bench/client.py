"""The load client: thousands of websockets spread over several processes.

A websocket here is a bare asyncio Protocol (handshake, frame parsing, pong), not a
full client library: a library's per-socket tasks and buffers would make the client
the bottleneck, and the server is what we measure. Each worker process holds a share
of the sockets and stamps arrivals with the system-wide monotonic clock, so times from
different processes compare directly.

Frames to the server are masked with a zero key (legal, RFC 6455 5.3; XOR with zero is a
no-op), so sending costs nothing per byte.
"""

import asyncio
import base64
import contextlib
import multiprocessing
import os
import resource
import struct
from collections import defaultdict
from multiprocessing import resource_tracker
from time import monotonic

HANDSHAKE_TIMEOUT = 15


def raise_open_files_limit():
    """Soft RLIMIT_NOFILE up to the hard one: each worker holds thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def text_frame(text):
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
    return header + b"\0\0\0\0" + payload


def pong_frame(payload):
    return struct.pack("!BB", 0x8A, 0x80 | len(payload)) + b"\0\0\0\0" + payload


class ClientProtocol(asyncio.Protocol):
    """A client websocket as a bare protocol: sends ``request`` (the handshake), then parses
    frames, answering pings. Subclasses get ``opened()``, ``text(payload, now)`` and
    ``closed(code)`` (None: dropped without a close frame)."""

    def __init__(self, request):
        self.request = request
        self.transport = None
        self.buffer = bytearray()
        self.open = False
        self.close_code = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc):
        was_open, self.open = self.open, False
        self.closed(self.close_code if was_open else None, was_open)

    def data_received(self, data):
        now = monotonic()
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[:12])
            del self.buffer[: end + 4]
            if status != b"HTTP/1.1 101":
                self.transport.close()
                return
            self.open = True
            self.opened()
        self.read_frames(now)

    def read_frames(self, now):
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
            start = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            if opcode == 0x1:
                self.text(payload, now)
            elif opcode == 0x9:
                self.transport.write(pong_frame(payload))
            elif opcode == 0x8:
                if len(payload) >= 2:
                    self.close_code = struct.unpack_from("!H", payload)[0]
                self.transport.close()

    def send_text(self, text):
        self.transport.write(text_frame(text))

    def opened(self):
        pass

    def text(self, payload, now):
        pass

    def closed(self, code, was_open):
        pass


class Socket(ClientProtocol):
    """One bench websocket; records when a text frame containing ``marker`` arrives."""

    def __init__(self, request, opened, worker):
        super().__init__(request)
        self.open_future = opened  # True once the 101 arrives
        self.worker = worker
        self.arrived = None

    def opened(self):
        self.open_future.set_result(True)

    def closed(self, code, was_open):
        if not self.open_future.done():
            self.open_future.set_result(False)

    def text(self, payload, now):
        self.worker.text_arrived(self, payload, now)


def handshake_request(host, port, path, origin, headers=()):
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n{extra}\r\n"
    ).encode()


class Worker:
    """The sockets of one client process, and the commands the orchestrator sends it."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.sets = defaultdict(list)  # name → sockets: one set per target and purpose
        self.marker = None
        self.pending = 0
        self.all_arrived = None

    # -- commands (each returns a picklable result) ---------------------------------------

    async def open(self, name, host, port, path, count, concurrency, headers=()):
        """Open ``count`` more sockets to ``path`` in set ``name`` (with extra handshake
        ``headers``): (opened, failed, seconds)."""
        limit = asyncio.Semaphore(concurrency)
        request_origin = f"http://{host}:{port}"
        started = monotonic()

        async def one():
            async with limit:
                return await self.connect(host, port, path, request_origin, headers)

        results = await asyncio.gather(*(one() for _ in range(count)))
        opened = [sock for sock in results if sock is not None]
        self.sets[name] += opened
        return len(opened), count - len(opened), monotonic() - started

    async def connect(self, host, port, path, origin, headers=()):
        opened = self.loop.create_future()
        request = handshake_request(host, port, path, origin, headers)
        transport = None
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                transport, sock = await self.loop.create_connection(
                    lambda: Socket(request, opened, self), host, port
                )
                if await opened:
                    return sock
        except (OSError, TimeoutError):
            pass
        if transport is not None:
            transport.close()
        return None

    async def handshakes(self, host, port, path, count, concurrency):
        """Open and drop ``count`` sockets: (succeeded, failed)."""
        limit = asyncio.Semaphore(concurrency)
        origin = f"http://{host}:{port}"

        async def one():
            async with limit:
                sock = await self.connect(host, port, path, origin)
                if sock is not None:
                    sock.transport.close()
                return sock is not None

        results = await asyncio.gather(*(one() for _ in range(count)))
        return sum(results), count - sum(results)

    async def arm(self, name, marker):
        """Expect a text frame containing ``marker`` on every open socket of set ``name``."""
        self.marker = marker.encode()
        self.pending = 0
        for sock in self.sets[name]:
            sock.arrived = None
            self.pending += sock.open
        self.all_arrived = self.loop.create_future()
        if not self.pending:
            self.all_arrived.set_result(None)
        return len(self.sets[name])

    def text_arrived(self, sock, payload, now):
        if sock.arrived is None and self.marker is not None and self.marker in payload:
            sock.arrived = now
            self.pending -= 1
            if self.pending == 0 and not self.all_arrived.done():
                self.all_arrived.set_result(None)

    async def send(self, name, index, text):
        """Send a text frame from the first open socket from ``index`` on in set ``name``
        (a dropped one is a lost member, not a reason to stop); the time just before."""
        sender = next(sock for sock in self.sets[name][index:] if sock.open)
        started = monotonic()
        sender.send_text(text)
        return started

    async def collect(self, name, timeout):
        """Arrival times of the armed marker, None where it never came."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.all_arrived)
        except TimeoutError:
            pass
        self.marker = None
        return [sock.arrived for sock in self.sets[name]]

    async def close(self, name):
        for sock in self.sets.pop(name, []):
            sock.transport.close()
        return True

    async def shutdown(self):
        for name in list(self.sets):
            await self.close(name)

    async def push(self, host, port, ws_path, ws_headers, requests, rate, timeout):
        """Open-loop pushes at ``rate``/s: requests[i] is raw HTTP whose push carries
        the marker "push-<i>"; one socket receives. Latencies in seconds (None: lost)."""
        opened, _, _ = await self.open("push", host, port, ws_path, 1, 1, ws_headers)
        if not opened:
            raise RuntimeError(f"could not open {ws_path}")
        sent, arrived = {}, {}
        original = self.text_arrived

        def record(_sock, payload, now):
            start = payload.find(b"push-")
            if start >= 0:
                digits = payload[start + 5 : start + 12].split(b'"')[0]
                arrived.setdefault(int(digits), now)

        self.text_arrived = record
        try:

            async def post(i, request):
                sent[i] = monotonic()
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                await reader.read()  # Connection: close
                writer.close()

            tasks, begin = [], monotonic()
            for i, request in enumerate(requests):
                await asyncio.sleep(max(0.0, begin + i / rate - monotonic()))
                tasks.append(asyncio.create_task(post(i, request)))
            await asyncio.gather(*tasks)
            deadline = monotonic() + timeout
            while len(arrived) < len(requests) and monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            self.text_arrived = original
            await self.close("push")
        return [arrived[i] - sent[i] if i in arrived else None for i in range(len(requests))]


def _serve(connection, worker_class):
    raise_open_files_limit()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # the client still works, a little slower
        runner = asyncio.run
    runner(_worker_main(connection, worker_class))


async def _worker_main(connection, worker_class):
    """Run commands as they come; several may be in flight (each answers when done)."""
    worker = worker_class()
    loop = asyncio.get_running_loop()
    tasks = set()

    async def run(name, args):
        try:
            result = ("ok", await getattr(worker, name)(*args))
        except Exception as error:  # noqa: BLE001 - reported to the orchestrator
            result = ("error", repr(error))
        connection.send(result)

    # The pipe is read in a thread: an event loop would make its fd non-blocking, and a
    # large command would then arrive in pieces.
    while (command := await loop.run_in_executor(None, connection.recv))[0] != "exit":
        task = loop.create_task(run(*command))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await worker.shutdown()


class ClientPool:
    """Several worker processes; each command goes to all (or one) and waits for answers.

    ``worker_class`` (importable, so a spawned process can find it) runs in each: its
    async methods are the commands.
    """

    open_pools = 0  # in this process: the resource tracker stops with the last one

    def __init__(self, processes, worker_class=Worker):
        ClientPool.open_pools += 1
        context = multiprocessing.get_context("spawn")
        self.connections, self.processes = [], []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, worker_class), daemon=True)
            process.start()
            self.connections.append(parent)
            self.processes.append(process)

    def __len__(self):
        return len(self.connections)

    def call(self, name, *args, worker=None, per_worker=None):
        """Run a command on every worker (or one); per_worker[i] gives each its own args."""
        targets = range(len(self)) if worker is None else [worker]
        for i in targets:
            self.connections[i].send((name, per_worker[i] if per_worker else args))
        results = []
        for i in targets:
            status, value = self.connections[i].recv()
            if status != "ok":
                raise RuntimeError(f"client worker {i} failed in {name}: {value}")
            results.append(value)
        return results if worker is None else results[0]

    def split(self, total):
        """``total`` spread over the workers as evenly as possible."""
        share, extra = divmod(total, len(self))
        return [share + (i < extra) for i in range(len(self))]

    def close(self):
        for connection, process in zip(self.connections, self.processes, strict=True):
            with contextlib.suppress(OSError):  # a worker that died already
                connection.send(("exit", ()))
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
        # Spawning started multiprocessing's resource tracker, a helper process that would
        # live until this process ends: stop it with the last pool's workers (nothing is
        # left to track). Not before: it ends only once every worker holding its pipe has.
        ClientPool.open_pools -= 1
        if ClientPool.open_pools == 0:
            resource_tracker._resource_tracker._stop()
