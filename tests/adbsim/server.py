"""A simulated Android device that the real ``adb`` client connects to over TCP.

It speaks the adb *device* side as adbd does at AOSP ``platform/system/core`` tag
platform-tools-29.0.6:

- handshake: ``adb/adb.cpp`` (``handle_packet``: CNXN answered by CNXN, or by AUTH TOKEN
  when authentication is required; ``get_connection_string`` for the banner);
- streams: ``adb/protocol.txt`` and ``adb/sockets.cpp`` (OPEN → OKAY, WRTE acked by OKAY
  with one outstanding write per direction, CLSE; messages for unknown ids are ignored);
- services: ``adb/daemon/services.cpp`` (``shell[,args]:``, ``exec:``, ``sync:``),
  ``adb/daemon/shell_service.cpp`` and ``adb/shell_protocol.h`` (shell protocol v2),
  ``adb/daemon/file_sync_service.cpp`` with ``adb/SYNC.TXT`` and
  ``adb/file_sync_protocol.h`` (STAT, STA2, LST2, LIST, LIS2, SEND, RECV, QUIT).

Shell commands run on the host with ``/bin/sh -c`` inside the sandbox (``sandbox.py``);
properties, CPU, thermal and battery facts come from a ``phone.Phone``. ``Faults``
holds the hooks tests use to make the device misbehave. Threads: one accept loop, one
reader per connection, one worker per stream (plus pipe pumps for shell commands).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.adbsim import protocol as p
from tests.adbsim.phone import Phone, build_sandbox, pixel_like
from tests.adbsim.sandbox import OutputUnmapper, PathRefused, Sandbox
from tests.adbsim.thermal import ThermalState

DEFAULT_FEATURES: tuple[str, ...] = ("shell_v2", "cmd", "stat_v2", "ls_v2", "fixed_push_mkdir")


@dataclass
class Faults:
    """Ways to make the device misbehave; tests may change them while it runs."""

    auth: bool = False  # answer CNXN with AUTH and never accept a key → "unauthorized"
    cnxn_delay_s: float = 0.0  # wait this long before answering CNXN
    drop_after_bytes: int | None = None  # cut TCP once a sync stream moved this many bytes
    send_failure: str | None = None  # errno text for a failing SEND, e.g. "No space left on device"


class _StreamClosed(Exception):
    pass


class _Stream:
    """One adb stream (a service instance) on one connection."""

    def __init__(self, conn: _Connection, dev_id: int, host_id: int, service: str) -> None:
        self.conn = conn
        self.dev_id = dev_id
        self.host_id = host_id
        self.service = service
        self._inbuf = bytearray()
        self._cond = threading.Condition()
        self._can_send = threading.Event()
        self._can_send.set()  # the OPEN implies the host is ready for our first WRTE
        self.closed = False
        self.on_close: Callable[[], None] | None = None
        self.moved_bytes = 0

    # input side
    def feed(self, data: bytes) -> None:
        with self._cond:
            self._inbuf += data
            self._cond.notify_all()

    def read_exact(self, size: int) -> bytes:
        with self._cond:
            while len(self._inbuf) < size:
                if self.closed:
                    raise _StreamClosed
                self._cond.wait(0.5)
            data = bytes(self._inbuf[:size])
            del self._inbuf[:size]
            return data

    # output side
    def ready(self) -> None:
        self._can_send.set()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            chunk = bytes(view[: self.conn.max_payload])
            view = view[len(chunk) :]
            while not self._can_send.wait(0.5):
                if self.closed:
                    raise _StreamClosed
            if self.closed:
                raise _StreamClosed
            self._can_send.clear()
            self.conn.send(p.Message(p.A_WRTE, self.dev_id, self.host_id, chunk))
            if self.service == "sync":
                self.conn.count_transfer(len(chunk))

    # lifetime
    def close(self) -> None:
        """Close from the device side (sends CLSE once)."""
        if self.closed:
            return
        self._mark_closed()
        self.conn.send(p.Message(p.A_CLSE, self.dev_id, self.host_id))

    def remote_closed(self) -> None:
        self._mark_closed()

    def _mark_closed(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        self._can_send.set()
        self.conn.forget(self.dev_id)
        if self.on_close is not None:
            self.on_close()


class _Connection:
    """One TCP connection from an adb server."""

    def __init__(self, sim: AdbSimulator, sock: socket.socket) -> None:
        self.sim = sim
        self.sock = sock
        self.max_payload = p.DEVICE_MAX_PAYLOAD
        self._send_lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._streams_lock = threading.Lock()
        self._next_id = 1
        self._online = False
        self._transfer_bytes = 0
        self.dead = False
        self.thread = threading.Thread(target=self._run, name="adbsim-conn", daemon=True)

    def send(self, message: p.Message) -> None:
        if self.dead:
            raise _StreamClosed
        try:
            with self._send_lock:
                self.sock.sendall(message.encode())
        except OSError:
            self.drop()
            raise _StreamClosed from None

    def forget(self, dev_id: int) -> None:
        with self._streams_lock:
            self._streams.pop(dev_id, None)

    def count_transfer(self, size: int) -> None:
        limit = self.sim.faults.drop_after_bytes
        self._transfer_bytes += size
        if limit is not None and self._transfer_bytes >= limit:
            self.drop()

    def drop(self) -> None:
        """Cut the TCP connection (also the fault hook's way of dropping mid-transfer)."""
        if self.dead:
            return
        self.dead = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with self._streams_lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.remote_closed()

    def _recv_exact(self, size: int) -> bytes:
        buf = bytearray()
        while len(buf) < size:
            chunk = self.sock.recv(size - len(buf))
            if not chunk:
                raise _StreamClosed
            buf += chunk
        return bytes(buf)

    def _run(self) -> None:
        try:
            while not self.dead:
                header = self._recv_exact(p.HEADER.size)
                command, arg0, arg1, length, _check, magic = p.HEADER.unpack(header)
                if magic != command ^ 0xFFFFFFFF or length > p.MAX_PAYLOAD:
                    break
                payload = self._recv_exact(length) if length else b""
                self._handle(p.Message(command, arg0, arg1, payload))
        except (_StreamClosed, OSError):
            pass
        finally:
            self.drop()
            self.sock.close()

    def _handle(self, msg: p.Message) -> None:
        if msg.command == p.A_CNXN:
            self._on_connect(msg)
        elif msg.command == p.A_AUTH and self.sim.faults.auth:
            # adbd answers a rejected signature with a fresh token; once the host runs out
            # of keys it sends its public key and shows the device as "unauthorized" while
            # the phone would display the RSA prompt (adb.cpp handle_packet, A_AUTH).
            if msg.arg0 == p.AUTH_SIGNATURE:
                self.send(p.Message(p.A_AUTH, p.AUTH_TOKEN, 0, secrets.token_bytes(20)))
        elif not self._online:
            return  # before CNXN everything else is ignored (protocol.txt)
        elif msg.command == p.A_OPEN:
            self._on_open(msg)
        else:
            with self._streams_lock:
                stream = self._streams.get(msg.arg1)
            if stream is None or stream.host_id != msg.arg0:
                return  # unknown or already closed stream: ignore
            if msg.command == p.A_OKAY:
                stream.ready()
            elif msg.command == p.A_WRTE:
                if stream.service == "sync":
                    self.count_transfer(len(msg.payload))
                    if self.dead:
                        return
                stream.feed(msg.payload)
                self.send(p.Message(p.A_OKAY, stream.dev_id, stream.host_id))
            elif msg.command == p.A_CLSE:
                stream.remote_closed()

    def _on_connect(self, msg: p.Message) -> None:
        faults = self.sim.faults
        self.max_payload = min(msg.arg1 or p.MAX_PAYLOAD, p.DEVICE_MAX_PAYLOAD, p.MAX_PAYLOAD)
        if faults.cnxn_delay_s:
            time.sleep(faults.cnxn_delay_s)
        if faults.auth:
            self.send(p.Message(p.A_AUTH, p.AUTH_TOKEN, 0, secrets.token_bytes(20)))
            return
        self._online = True
        banner = self.sim.phone.banner(self.sim.features)
        self.send(p.Message(p.A_CNXN, p.A_VERSION, p.DEVICE_MAX_PAYLOAD, banner))

    def _on_open(self, msg: p.Message) -> None:
        name = msg.payload.rstrip(b"\0").decode("utf-8", "replace")
        target = self.sim.service_for(name)
        if target is None or msg.arg0 == 0:
            self.send(p.Message(p.A_CLSE, 0, msg.arg0))
            return
        kind, runner = target
        with self._streams_lock:
            dev_id = self._next_id
            self._next_id += 1
            stream = _Stream(self, dev_id, msg.arg0, kind)
            self._streams[dev_id] = stream
        self.send(p.Message(p.A_OKAY, dev_id, msg.arg0))
        worker = threading.Thread(
            target=self._serve, args=(stream, runner), name=f"adbsim-{kind}", daemon=True
        )
        self.sim.track(worker)
        worker.start()

    @staticmethod
    def _serve(stream: _Stream, runner: Callable[[_Stream], None]) -> None:
        with contextlib.suppress(_StreamClosed):
            runner(stream)
            stream.close()


class AdbSimulator:
    """A fake phone listening on 127.0.0.1; connect with ``adb connect 127.0.0.1:PORT``."""

    def __init__(
        self,
        root: Path,
        phone: Phone | None = None,
        features: tuple[str, ...] = DEFAULT_FEATURES,
        faults: Faults | None = None,
    ) -> None:
        self.phone = phone if phone is not None else pixel_like()
        self.features = features
        self.faults = faults if faults is not None else Faults()
        self.sandbox = Sandbox(Path(root).resolve())
        build_sandbox(self.phone, self.sandbox.root)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._connections: list[_Connection] = []
        self._threads: list[threading.Thread] = []
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept_loop, name="adbsim", daemon=True)
        self.thermal: ThermalState | None = None
        if self.phone.thermal is not None:
            self.thermal = ThermalState(
                self.phone.thermal,
                self.sandbox.root,
                self.phone.thermal_zones,
                tuple(core.max_khz for core in self.phone.cores),
                tuple(core.cur_khz for core in self.phone.cores),
                self._sessions,
            )

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        """The host directory behind the device's ``/data/local/tmp``."""
        return self.sandbox.root / "data" / "local" / "tmp"

    def start(self) -> AdbSimulator:
        self._acceptor.start()
        if self.thermal is not None:
            self.thermal.start()
        return self

    def _sessions(self) -> set[int]:
        """Session ids of the running shell commands (each starts a session of its own)."""
        with self._lock:
            return {proc.pid for proc in self._procs}

    def drop_connections(self) -> int:
        """Cut every TCP connection now (the phone's cable was pulled); how many."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.drop()
        return len(connections)

    def close(self) -> None:
        self._stopping.set()
        if self.thermal is not None:
            self.thermal.stop()
        if self._acceptor.is_alive():
            self._acceptor.join()
        self._listener.close()
        self.drop_connections()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            _kill_group(proc)
        with self._lock:
            threads = [c.thread for c in self._connections] + list(self._threads)
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=10)

    def __enter__(self) -> AdbSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def track(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, sock)
            with self._lock:
                self._connections = [c for c in self._connections if c.thread.is_alive()]
                self._connections.append(conn)
            conn.thread.start()

    # services ------------------------------------------------------------------------

    def service_for(self, name: str) -> tuple[str, Callable[[_Stream], None]] | None:
        if name.startswith("shell:") or name.startswith("shell,"):
            args_text, _, command = name.partition(":")
            args = args_text.split(",")[1:]
            v2 = "v2" in args and "shell_v2" in self.features
            return "shell", lambda s: self._shell(s, command, v2=v2)
        if name.startswith("exec:"):
            command = name[len("exec:") :]
            return "exec", lambda s: self._shell(s, command, v2=False, raw_output=True)
        if name == "sync:":
            return "sync", self._sync
        return None

    def _shell(self, stream: _Stream, command: str, v2: bool, raw_output: bool = False) -> None:
        if not command.strip():
            message = b"adbsim: interactive shells are not supported\n"
            if v2:
                stream.write(p.shell_packet(p.SHELL_STDERR, message))
                stream.write(p.shell_packet(p.SHELL_EXIT, b"\x01"))
            else:
                stream.write(message)
            return
        env = self.sandbox.shell_env()
        proc = subprocess.Popen(
            ["/bin/sh", "-c", self.sandbox.rewrite_command(command)],
            cwd=self.sandbox.root,
            env=env,
            stdin=subprocess.PIPE if v2 else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if v2 else subprocess.STDOUT,
            start_new_session=True,
        )
        with self._lock:
            self._procs.add(proc)
        stream.on_close = lambda: _kill_group(proc)
        pumps: list[threading.Thread] = []
        try:
            pumps.append(self._pump(stream, proc.stdout, p.SHELL_STDOUT, v2, raw_output))
            if v2:
                pumps.append(self._pump(stream, proc.stderr, p.SHELL_STDERR, v2, raw_output))
                stdin_thread = threading.Thread(
                    target=_feed_stdin, args=(stream, proc), name="adbsim-stdin", daemon=True
                )
                self.track(stdin_thread)
                stdin_thread.start()
            for pump in pumps:
                pump.join()
            rc = proc.wait()
        finally:
            _kill_group(proc)
            for pump in pumps:
                pump.join()
            _reap(proc)
            with self._lock:
                self._procs.discard(proc)
        if stream.closed:
            return
        if v2:
            status = rc if rc >= 0 else 128 - rc
            stream.write(p.shell_packet(p.SHELL_EXIT, bytes([status & 0xFF])))

    def _pump(
        self,
        stream: _Stream,
        pipe: object,
        packet_id: int,
        v2: bool,
        raw_output: bool,
    ) -> threading.Thread:
        assert pipe is not None
        fd = pipe.fileno()  # type: ignore[attr-defined]
        unmapper = None if raw_output else OutputUnmapper(self.sandbox.root)

        def emit(data: bytes) -> None:
            if data:
                stream.write(p.shell_packet(packet_id, data) if v2 else data)

        def run() -> None:
            with contextlib.suppress(_StreamClosed):
                while True:
                    chunk = os.read(fd, 64 * 1024)
                    if not chunk:
                        break
                    emit(unmapper.feed(chunk) if unmapper else chunk)
                if unmapper:
                    emit(unmapper.flush())
            # keep draining so the process never blocks on a full pipe
            while os.read(fd, 64 * 1024):
                pass

        thread = threading.Thread(target=run, name="adbsim-pump", daemon=True)
        self.track(thread)
        thread.start()
        return thread

    def _sync(self, stream: _Stream) -> None:
        while True:
            raw = stream.read_exact(p.SYNC_REQUEST.size)
            ident, length = p.SYNC_REQUEST.unpack(raw)
            if ident == b"QUIT":
                return
            if length > 1024:
                _sync_fail(stream, "path too long")
                return
            path = stream.read_exact(length).decode("utf-8", "surrogateescape")
            if ident == b"STAT":
                stream.write(self._stat_v1(path))
            elif ident in (b"STA2", b"LST2"):
                stream.write(self._stat_v2(ident, path))
            elif ident in (b"LIST", b"LIS2"):
                self._list(stream, ident, path)
            elif ident == b"SEND":
                if not self._send(stream, path):
                    return
            elif ident == b"RECV":
                if not self._recv(stream, path):
                    return
            else:
                _sync_fail(stream, f"unknown command {int.from_bytes(ident, 'little'):08x}")
                return

    def _lookup(self, path: str) -> os.stat_result | None:
        try:
            return os.lstat(self.sandbox.host_path(path, write=False))
        except (OSError, PathRefused):
            return None

    def _stat_v1(self, path: str) -> bytes:
        st = self._lookup(path)
        if st is None:
            return p.STAT_V1.pack(b"STAT", 0, 0, 0)
        return p.STAT_V1.pack(b"STAT", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime))

    def _stat_v2(self, ident: bytes, path: str) -> bytes:
        try:
            host = self.sandbox.host_path(path, write=False)
            st = os.lstat(host) if ident == b"LST2" else os.stat(host)
        except PathRefused:
            return p.STAT_V2.pack(ident, errno.ENOENT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        except OSError as exc:
            return p.STAT_V2.pack(ident, exc.errno or errno.EIO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return _pack_stat_v2(ident, st)

    def _list(self, stream: _Stream, ident: bytes, path: str) -> None:
        v2 = ident == b"LIS2"
        try:
            host = self.sandbox.host_path(path, write=False)
            names = sorted(os.listdir(host))
        except (OSError, PathRefused):
            names = []
            host = self.sandbox.root
        for name in names:
            try:
                st = os.lstat(host / name)
            except OSError:
                continue
            encoded = name.encode("utf-8", "surrogateescape")
            if v2:
                head = _pack_stat_v2(b"DNT2", st)
                stream.write(head + len(encoded).to_bytes(4, "little") + encoded)
            else:
                stream.write(
                    p.DENT_V1.pack(
                        b"DENT", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(encoded)
                    )
                    + encoded
                )
        size = p.DENT_V2.size if v2 else p.DENT_V1.size
        stream.write(b"DONE" + bytes(size - 4))

    def _send(self, stream: _Stream, spec: str) -> bool:
        path, _, mode_text = spec.rpartition(",")
        try:
            mode = int(mode_text)
        except ValueError:
            path, mode = spec, 0o100644
        failure: str | None = None
        host: Path | None = None
        tmp: Path | None = None
        out = None
        try:
            host = self.sandbox.host_path(path, write=True)
            host.parent.mkdir(parents=True, exist_ok=True)
            tmp = host.with_name(f".{host.name}.adbsim-part")
            out = open(tmp, "wb")  # noqa: SIM115 - closed below on every path
        except PathRefused as exc:
            failure = f"couldn't create file: {exc}"
        except OSError as exc:
            failure = f"couldn't create file: {exc.strerror}"
        if failure is None and self.faults.send_failure:
            failure = f"write failed: {self.faults.send_failure}"
        if failure is not None:
            _sync_fail(stream, failure)
        mtime = 0
        try:
            while True:
                ident, size = p.SYNC_REQUEST.unpack(stream.read_exact(p.SYNC_REQUEST.size))
                if ident == b"DONE":
                    mtime = size
                    break
                if ident != b"DATA":
                    if failure is None:
                        _sync_fail(stream, "invalid data message")
                    return False
                if size > p.SYNC_DATA_MAX:
                    if failure is None:
                        _sync_fail(stream, "oversize data message")
                    return False
                data = stream.read_exact(size)
                if out is not None and failure is None:
                    out.write(data)
        finally:
            if out is not None:
                out.close()
            if (failure is not None or out is None) and tmp is not None:
                tmp.unlink(missing_ok=True)
        if failure is not None or host is None or tmp is None:
            return False
        perms = mode & 0o777
        perms |= (perms >> 3) & 0o070
        perms |= (perms >> 3) & 0o007
        os.chmod(tmp, perms)
        os.utime(tmp, (mtime, mtime))
        if host.is_dir():
            tmp.unlink()
            _sync_fail(stream, "couldn't create file: Is a directory")
            return False
        os.replace(tmp, host)
        stream.write(b"OKAY" + bytes(4))
        return True

    def _recv(self, stream: _Stream, path: str) -> bool:
        try:
            host = self.sandbox.host_path(path, write=False)
            handle = open(host, "rb")  # noqa: SIM115 - closed by the with below
        except PathRefused as exc:
            _sync_fail(stream, f"open failed: {exc}")
            return False
        except OSError as exc:
            _sync_fail(stream, f"open failed: {exc.strerror}")
            return False
        with handle:
            while True:
                data = handle.read(p.SYNC_DATA_MAX)
                if not data:
                    break
                stream.write(b"DATA" + len(data).to_bytes(4, "little") + data)
        stream.write(b"DONE" + bytes(4))
        return True


def _pack_stat_v2(ident: bytes, st: os.stat_result) -> bytes:
    return p.STAT_V2.pack(
        ident,
        0,
        st.st_dev,
        st.st_ino,
        st.st_mode,
        st.st_nlink,
        st.st_uid,
        st.st_gid,
        st.st_size,
        int(st.st_atime),
        int(st.st_mtime),
        int(st.st_ctime),
    )


def _sync_fail(stream: _Stream, message: str) -> None:
    encoded = message.encode()
    stream.write(b"FAIL" + len(encoded).to_bytes(4, "little") + encoded)


def _feed_stdin(stream: _Stream, proc: subprocess.Popen[bytes]) -> None:
    """Shell v2 packets from the host: stdin data, close-stdin, window size (ignored)."""
    stdin = proc.stdin
    assert stdin is not None
    try:
        while True:
            packet_id, length = p.SHELL_PACKET.unpack(stream.read_exact(p.SHELL_PACKET.size))
            data = stream.read_exact(length) if length else b""
            if packet_id == p.SHELL_STDIN and not stdin.closed:
                with contextlib.suppress(OSError, ValueError):
                    stdin.write(data)
                    stdin.flush()
            elif packet_id == p.SHELL_CLOSE_STDIN:
                break
    except _StreamClosed:
        pass
    finally:
        with contextlib.suppress(OSError, ValueError):
            stdin.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command and everything it started (its own session)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    if proc.stdin is not None:
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()
