"""The kernel: the process in which the agent's Python code runs.

Run by the harness as a plain script with the standard library only (no
site-packages, nothing of the harness), so nothing the harness knows is ever in
this process's memory: ``python -S -s _kernel.py zygote <json>`` once per
harness process, which forks one kernel per sample on request (see
``zygote_main``), or ``python -S -s _kernel.py kernel <json>`` per sample (the
benchmarks' direct-spawn baseline). Either way the kernel goes through the same
``kernel_main``. Its only imports beside the standard library are its siblings
``_confine.py``, ``_wire.py`` (what both ends of the wire agree on) and
``_clock.py`` (the step clock, which the harness reads the same way).

Process layout, per sample::

    harness --channel (SOCK_SEQPACKET)--> zygote Z (pristine launcher, one per harness)
       |                                    | fork, per sample
       +--control (SOCK_SEQPACKET)--> kernel process K (pristine, unprivileged)
       ^                                    | fork
       +-------- step channel (stream) ---- step process C (confined; runs user code)

K never runs user code. It forks a step process C, hands the harness C's end of
a fresh socketpair (SCM_RIGHTS over the control socket), waits for C to end,
kills C's process group and reports how C ended. The persistent runtime runs
every step in one long-lived C; the stateless runtime gives every step a fresh C
forked from the pristine K, so nothing a step does survives it.

Messages on the step channel are 4-byte big-endian length-prefixed UTF-8 JSON.
Host functions are stubs here: each call is a ``tool_call`` message answered by
the harness, which alone holds the real callables.

``python -S -s _kernel.py exec <json> -- cmd...`` confines itself the same way
(with a looser syscall profile) and execs ``cmd``: that is the provider's
``exec()``.
"""

from __future__ import annotations

import _thread
import ast
import builtins
import gc
import io
import json
import linecache
import os
import re
import select
import signal
import socket
import struct
import sys
import time
import traceback
import types

import _clock
import _confine
import _wire

# The user's code may rebind builtins or module attributes (``builtins.len = ...``,
# ``json.dumps = None``); the kernel's own code must keep working, so it binds
# private copies of everything it uses.
globals().update({k: v for k, v in vars(builtins).items() if not k.startswith("__")})
_dumps, _loads = json.dumps, json.loads
_monotonic, _exit, _ModuleType = time.monotonic, os._exit, type(sys)
_sigmask, _setitimer = signal.pthread_sigmask, signal.setitimer
_format_exc, _StackSummary = traceback.TracebackException, traceback.StackSummary
_parse, _Expr, _Expression = ast.parse, ast.Expr, ast.Expression
_next_check = _clock.next_check

_HEADER = _wire.FRAME_HEADER
_cap_names = _wire.cap_names
_KERNEL_FILES = {os.path.abspath(path) for path in (__file__, _clock.__file__, _confine.__file__, _wire.__file__)}
_PREIMPORT = ("json", "math", "itertools", "collections", "functools", "re", "heapq", "bisect", "copy")


class ToolError(Exception):
    """A host function (tool) refused the call; the message says why."""


class ToolCallLimitError(ToolError):
    """This code block made more tool calls than its limit allows."""


class StepTimeout(BaseException):
    """The step ran past its wall-time limit."""


for _cls in (ToolError, ToolCallLimitError, StepTimeout):
    _cls.__module__ = "builtins"


class ProtocolError(Exception):
    pass


CLOCK = _clock.StepClock(_clock.self_cpu)
"""The running step's time (``_clock.py``: the one definition, which the harness reads too);
its schedstat descriptor is opened by each step process before it is confined."""


class Channel:
    """The step process's end of its step channel to the harness."""

    def __init__(self, sock: socket.socket, max_bytes: int) -> None:
        self.sock = sock
        self.max_bytes = max_bytes
        self.lock = _thread.allocate_lock()
        self.next_id = 0

    def send(self, obj: dict) -> None:
        try:
            data = _dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: escape it as text, never an invalid frame
            data = _dumps(_escape_surrogates(obj), ensure_ascii=False).encode("utf-8")
        self.sock.sendall(_HEADER.pack(len(data)) + data)

    def _read_exact(self, n: int) -> bytes | None:
        chunks = []
        while n:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def recv(self) -> dict | None:
        head = self._read_exact(_HEADER.size)
        if head is None:
            return None
        (size,) = _HEADER.unpack(head)
        if size > self.max_bytes:
            raise ProtocolError(f"message of {size} bytes exceeds the limit")
        body = self._read_exact(size)
        if body is None:
            return None
        return _loads(body)

    def recv_op(self, op: str, call_id: int | None = None) -> dict | None:
        while True:
            msg = self.recv()
            if msg is None or (msg.get("op") == op and (call_id is None or msg.get("id") == call_id)):
                return msg

    def call(self, name: str, args: tuple, kwargs: dict) -> object:
        try:
            payload_args = _loads(_dumps(list(args)))
            payload_kwargs = _loads(_dumps(kwargs))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}(): arguments must be JSON values (str, int, float, bool, None, list, dict): {exc}") from None
        # The alarm must not cut a message in half: hold it until the answer is in.
        # The round trip is the harness's time, not the step's: the clock is paused from
        # the moment the call is sent to the harness's answer (``answered_at``), as the
        # harness counts it; one call at a time (the lock), so no moment is paused twice.
        _sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        reply = None
        try:
            with self.lock:
                self.next_id += 1
                call_id = self.next_id
                sent_at = CLOCK.call_sent = _monotonic()
                try:
                    self.send({"type": _wire.TOOL_CALL, "id": call_id, "name": name, "args": payload_args,
                               "kwargs": payload_kwargs, "sent_at": sent_at})
                    reply = self.recv_op(_wire.TOOL_RESULT, call_id)
                finally:
                    answered_at = reply.get("answered_at") if reply is not None else None
                    CLOCK.pause(sent_at, answered_at if isinstance(answered_at, float) else None)
        finally:
            _sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
        if reply is None:
            _exit(0)  # the harness hung up: nothing more to do
        if reply.get("ok"):
            return reply.get("value")
        error_cls = ToolCallLimitError if reply.get("limit") else ToolError
        raise error_cls(str(reply.get("error", "tool call failed")))


class Capture(io.TextIOBase):
    """stdout/stderr of a step: keeps the head and the tail, counts what it cut."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head: list[str] = []
        self.head_len = 0
        self.tail: list[str] = []
        self.tail_len = 0
        self.total = 0

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        n = len(s)
        self.total += n
        room = self.head_limit - self.head_len
        if room > 0:
            self.head.append(s[:room])
            self.head_len += min(room, n)
            s = s[room:]
        if s:
            self.tail.append(s)
            self.tail_len += len(s)
            if self.tail_len > 2 * self.tail_limit + 4096:
                joined = "".join(self.tail)[-self.tail_limit :] if self.tail_limit else ""
                self.tail = [joined]
                self.tail_len = len(joined)
        return n

    def result(self) -> tuple[str, int]:
        tail = "".join(self.tail)
        if self.tail_limit:
            tail = tail[-self.tail_limit :]
        else:
            tail = ""
        cut = self.total - self.head_len - len(tail)
        head = "".join(self.head)
        if cut <= 0:
            return head + tail, 0
        return f"{head}\n... [output truncated: {cut} characters cut] ...\n{tail}", cut


def _escape_surrogates(obj):
    """Lone surrogates (``"\\udc80"``) cannot be UTF-8: write them as their escape text."""
    if isinstance(obj, str):
        return obj.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(obj, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_escape_surrogates(v) for v in obj]
    return obj


def _bound(text: str, limit: int) -> str:
    """Head and tail of ``text`` within ``limit`` characters, with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    head = limit // 2
    cut = len(text) - limit
    return f"{text[:head]}\n... [truncated: {cut} characters cut] ...\n{text[len(text) - (limit - head):]}"


def make_stub(name: str, doc: str | None, channel: Channel):
    def stub(*args, **kwargs):
        return channel.call(name, args, kwargs)

    stub.__name__ = stub.__qualname__ = name
    stub.__doc__ = doc
    stub.__module__ = "tools"
    return stub


def _strip_kernel_frames(te: traceback.TracebackException, seen: set[int]) -> None:
    if id(te) in seen:
        return
    seen.add(id(te))
    te.stack = _StackSummary.from_list([f for f in te.stack if f.filename not in _KERNEL_FILES])
    for sub in (te.__cause__, te.__context__):
        if sub is not None:
            _strip_kernel_frames(sub, seen)


def describe_error(exc: BaseException, type_name: str | None = None, message: str | None = None) -> dict:
    name = type_name or type(exc).__name__
    try:
        text = str(exc) if message is None else message
    except Exception:
        text = "<unprintable>"
    try:
        te = _format_exc.from_exception(exc)
        _strip_kernel_frames(te, set())
        lines = list(te.format())
        if type_name or message is not None:
            lines[-1] = f"{name}: {text}\n"
        tb_text = "".join(lines)
    except BaseException:  # formatting itself may fail (e.g. out of memory)
        tb_text = f"{name}: {text}\n"
    return {"type": name, "message": text, "traceback": tb_text}


_IDENTIFIER = re.compile(r"[^\W\d]\w*")

_PREBOUND: dict = {}
"""The step process's pre-bound modules, by global name (see step_process_main)."""


def user_names(ns: dict, stubs: dict) -> list:
    """The user's global names, sorted: no dunders, tool stubs, or untouched pre-bound modules.

    What the interpreter can serve a later step (``bound_at_start``): any value,
    ``None`` and modules included. A name is left out only when it is the very
    stub or pre-bound module the kernel put there, tested by membership first,
    so a name the user bound to ``None`` is never mistaken for a missing one.
    """
    return sorted(
        k for k, v in ns.items()
        if isinstance(k, str)
        and not (k.startswith("__") and k.endswith("__"))
        and not (k in stubs and stubs[k] is v)
        and not (k in _PREBOUND and _PREBOUND[k] is v)
    )


def listed_names(ns: dict, names: list) -> list:
    """The names the persistent runtime's Globals line shows, as the paper's list does.

    The paper's interpreter leaves out imported modules and names that start
    with ``__``; ``bound_at_start`` still counts them (a module imported in an
    earlier step is state the interpreter serves).
    """
    return [k for k in names if not k.startswith("__") and not issubclass(type(ns.get(k)), _ModuleType)]


def _undefined_name(exc: NameError) -> str | None:
    """The name Python could not find (``NameError.name``), as the exception itself carries it.

    Read from the exception, never from its message; the user's code may have
    raised it itself or set ``name`` to anything, so only a string passes."""
    try:
        name = exc.name
    except BaseException:
        return None
    return _bound(name, 200) if isinstance(name, str) else None


def _on_alarm(signum, frame):
    remaining = CLOCK.remaining()
    if remaining > 0.001:  # not yet: look again before the step's time can reach its limit
        _setitimer(signal.ITIMER_REAL, _next_check(remaining))
        return
    raise StepTimeout()


def run_step(msg: dict, ns: dict, channel: Channel, persistent: bool, stubs: dict, echo: bool = False) -> dict:
    code = msg["code"]
    filename = f"<step {msg.get('step', 0)}>"
    timeout = float(msg["timeout"])  # the harness always sends the step's limit
    capture = Capture(int(msg["max_output_chars"]))
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    for name, stub in list(stubs.items()):
        if ns.get(name) is stub:
            del ns[name]
    stubs.clear()
    for tool in msg.get("tools", []):
        stubs[tool["name"]] = ns[tool["name"]] = make_stub(tool["name"], tool.get("doc"), channel)
    # What this interpreter can serve the step from earlier steps: the user's
    # names bound now, before the code runs (a fresh stateless one has none).
    # Only the names the code mentions: a superset of what it reads, bounded by
    # the code's size however large the namespace grows.
    mentioned = set(_IDENTIFIER.findall(code))
    bound_at_start = [name for name in user_names(ns, stubs) if name in mentioned]
    error = None
    is_name_error = False
    undefined_name = None
    timed_out = False
    sys.stdout = sys.stderr = capture
    CLOCK.start(timeout)
    _setitimer(signal.ITIMER_REAL, _next_check(timeout))
    try:
        tree = _parse(code, filename)
        # The paper's interpreter only executes; a notebook's echo of a bare final
        # expression is the runtime's echo_last_expression option.
        last = tree.body.pop() if echo and tree.body and isinstance(tree.body[-1], _Expr) else None
        exec(compile(tree, filename, "exec"), ns)
        if last is not None:
            value = eval(compile(_Expression(last.value), filename, "eval"), ns)
            if value is not None:
                capture.write(repr(value) + "\n")
    except StepTimeout as exc:
        timed_out = True
        error = describe_error(exc, "StepTimeout", f"step exceeded the {timeout:g} s time limit")
    except BaseException as exc:
        error = describe_error(exc)
        if isinstance(exc, NameError):  # UnboundLocalError too (a subclass; Python gives it no name)
            is_name_error = True
            undefined_name = _undefined_name(exc)
    finally:
        _setitimer(signal.ITIMER_REAL, 0)
        sys.stdout = sys.__stdout__
        sys.stderr = sys.__stderr__
    stdout, cut = capture.result()
    limit = int(msg["max_output_chars"])
    if error is not None:
        error["message"] = _bound(error["message"], limit)
        error["traceback"] = _bound(error["traceback"], limit)
        error["type"] = _bound(error["type"], 200)
    user_globals = None
    omitted = 0
    if persistent:
        user_globals, omitted = _cap_names(listed_names(ns, user_names(ns, stubs)), limit)
    return {
        "type": _wire.RESULT,
        "stdout": stdout,
        "error": error,
        "is_name_error": is_name_error,
        "undefined_name": undefined_name,
        "globals": user_globals,
        "bound_at_start": bound_at_start,
        "timed_out": timed_out,
        "truncated_chars": cut,
        "globals_omitted": omitted,
    }


_IMPORT_FDS: dict[str, int] = {}


def _rules(paths: list[str], rights: int) -> list[tuple[str | int, int]]:
    return [(_IMPORT_FDS.get(p, p), rights) for p in paths]


_PREPARED: dict = {}


def _prepare_confinement(cfg: dict) -> None:
    """What every step process needs, made once in K before any fork.

    A freshly forked step process pays a page copy for nearly every object it
    touches, so it is handed ready-made objects: the Landlock ruleset, the
    seccomp program (``PreparedFilter``, with no_new_privs set here: it is
    inherited: the zygote sets it once), whether there are capabilities to drop
    at all (none where K dropped to its uid as root: ``drop_privileges``), and
    the user's builtins module (the zygote makes it once).
    """
    base = _PREPARED.pop("base_ruleset", None)
    if cfg["landlock"]:
        writable = [(p, _confine.READ_WRITE) for p in cfg["read_write_paths"]]
        if base is not None and base[0] == cfg["read_only_paths"]:
            _PREPARED["ruleset"] = _confine.landlock_ruleset(writable, into=base[1])
        else:
            _PREPARED["ruleset"] = _confine.landlock_ruleset(_rules(cfg["read_only_paths"], _confine.READ_ONLY) + writable)
        if _PREPARED["ruleset"] < 0:
            _exit(70)
    if base is not None and _PREPARED.get("ruleset") != base[1]:
        os.close(base[1])
    if cfg["seccomp"]:
        if not _PREPARED.get("no_new_privs"):
            _PREPARED["no_new_privs"] = _confine.set_no_new_privs()
        if not isinstance(_PREPARED.get("seccomp"), _confine.PreparedFilter):
            _PREPARED["seccomp"] = _confine.PreparedFilter(strict=True)
    _PREPARED["capabilities"] = cfg.get("uid") is None  # a user namespace's, or none to drop
    if "user_builtins" not in _PREPARED:
        _PREPARED["user_builtins"] = _user_builtins()


def _user_builtins() -> types.ModuleType:
    """The user's code gets its own builtins module (``import builtins`` finds it):
    rebinding a builtin changes the user's world, not the kernel's protocol code.
    Made before any fork, the pristine copy stays in K (and the zygote): each step
    process gets it copied on write."""
    user_builtins = type(sys)("builtins")
    vars(user_builtins).update(vars(builtins))
    user_builtins.ToolError = ToolError
    user_builtins.ToolCallLimitError = ToolCallLimitError
    return user_builtins


def _confine_step_process(cfg: dict) -> None:
    if _PREPARED["capabilities"]:
        _confine.drop_capabilities()  # those the kernel's user namespace granted
    if cfg["landlock"]:
        if not _confine.restrict_self(_PREPARED["ruleset"], _PREPARED.get("no_new_privs", False)):
            _exit(70)
        os.close(_PREPARED["ruleset"])
    if cfg["seccomp"]:
        if not _PREPARED["no_new_privs"]:
            _confine.set_no_new_privs()
        if not _PREPARED["seccomp"].install():
            _exit(71)


def step_process_main(sock: socket.socket, cfg: dict, kernel_pid: int) -> None:
    os.setpgid(0, 0)
    _confine.set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != kernel_pid:  # K died before the death signal was armed
        _exit(0)
    # K is undumpable so no step process can open /proc/<K>/mem; a step process
    # must be dumpable itself, or /proc/self/fd (its import path) turns root-owned.
    _confine.set_dumpable(True)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    try:  # opened before Landlock: the step clock subtracts time spent waiting for a CPU
        CLOCK.schedstat_fd = open_proc("self/schedstat")
    except OSError:
        CLOCK.schedstat_fd = -1
    _close_dir(_DIRS, "proc")
    fresh_per_step = cfg["fresh_workdir_per_step"]
    if not fresh_per_step:
        _enter_workdir()
    _confine_step_process(cfg)
    if cfg["seccomp"]:
        CLOCK.read_cpu = _clock.own_threads_cpu  # no children to count: fork is denied
    channel = Channel(sock, cfg["max_message_bytes"])
    user_builtins = _PREPARED["user_builtins"]
    sys.modules["builtins"] = user_builtins
    signal.signal(signal.SIGALRM, _on_alarm)
    persistent = bool(cfg["persists_state"])
    echo = bool(cfg.get("echo_last_expression", False))
    # ``import __main__`` gives the user's own namespace, as in a script, not this
    # kernel module (whatever the code does to the kernel's objects, the harness
    # and K end the step process when its step ends).
    user_main = type(sys)("__main__")
    sys.modules["__main__"] = user_main
    ns: dict = vars(user_main)
    ns["__builtins__"] = user_builtins
    # Pre-bound modules (the paper binds json): a stateless step process is
    # fresh from the pristine kernel, so they are bound afresh at every step.
    for module_name in cfg.get("prebound_modules", ()):
        try:
            _PREBOUND[module_name.split(".")[0]] = __import__(module_name)
        except BaseException:
            pass
    ns.update(_PREBOUND)
    stubs: dict = {}
    if not persistent:
        _warm_up(channel)
    while True:
        try:
            msg = channel.recv_op(_wire.STEP)
        except Exception:
            _exit(72)
        if msg is None:
            _exit(0)
        if fresh_per_step:
            _enter_workdir()  # made for this step, after the previous step's process was gone
        result = run_step(msg, ns, channel, persistent, stubs, echo)
        try:
            channel.send(result)
        except Exception:
            _exit(73)
        if not persistent:
            _exit(0)
        CLOCK.idle()  # what runs from now on counts toward the next step, as the harness counts it


_WARM_UP = {"op": _wire.STEP, "step": 0, "code": "None", "timeout": 1.0, "max_output_chars": 64, "tools": []}


def _warm_up(channel: Channel) -> None:
    """A throwaway step, in a scratch namespace, while a stateless step process waits for its step.

    Fresh from K, the process shares every page with it, and the first write to
    each (a reference count will do) costs a page copy: running the step path
    once for the first time cost about a quarter of a trivial step. The warm-up
    pays for those copies before the step is sent. It is the same fixed code in
    every step process, so it carries nothing from one step to another.
    """
    scratch = {"__builtins__": _PREPARED["user_builtins"]}
    result = run_step(_loads(_dumps(_WARM_UP)), scratch, channel, False, {}, False)
    _dumps(result, ensure_ascii=False).encode("utf-8")
    linecache.cache.pop("<step 0>", None)


_DIRS: dict[str, int] = {}
"""Descriptors a kernel holds for its step processes: ``proc`` (/proc, opened before a
private root hides it), ``container`` (the container as the kernel sees it), and,
where the kernel renews stateless working directories itself, ``host`` (the
container on the host). A step process closes them before the user's code runs."""


def open_proc(name: str) -> int:
    """Open a /proc file of the calling process (``"self/schedstat"``): there is no /proc
    in a private root, so step processes open theirs, before Landlock, through the
    kernel's descriptor of it."""
    return os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=_DIRS.get("proc", -1))


def _close_dir(dirs: dict[str, int], name: str) -> None:
    fd = dirs.pop(name, -1)
    if fd >= 0:
        os.close(fd)


def _enter_workdir() -> None:
    """Change into the container's working directory, by name: a fresh one for every
    stateless step. The container's descriptor goes with it, before the user's code."""
    fd = os.open(_wire.WORKDIR_NAME, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=_DIRS["container"])
    try:
        os.fchdir(fd)
    finally:
        os.close(fd)
        _close_dir(_DIRS, "container")


def _enter_shared_root(cfg: dict) -> None:
    """The part of a private root every kernel shares: built once, by the zygote.

    A mount namespace (and, unprivileged, a user namespace) whose root is a
    read-only tmpfs with the Python install and system libraries (read-only),
    /dev/null and /dev/urandom, and the temp directory, where the kernels'
    containers are; the host's root is dropped (``pivot_into``), so a kernel's
    namespace, a copy of this one, holds only these few mounts. /proc is kept as
    a descriptor (``open_proc``).
    """
    temp = cfg["temp_dir"]
    _DIRS["proc"] = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    _confine.enter_namespaces(user=cfg["user_namespace"], ipc=False)
    host_temp = os.open(temp, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _confine.mount_view(temp, cfg["read_only_paths"], [(host_temp, temp), ("/dev/null", "/dev/null")])
    finally:
        os.close(host_temp)
    _confine.pivot_into(temp)
    _PREPARED["shared_root"] = True


def _enter_kernel_view(cfg: dict) -> None:
    """The kernel's own part: its IPC and mount namespaces, and the temp directory covered
    by a view that holds only its container: as root the container itself (root-owned,
    so the working directory the harness renews for every stateless step is seen live);
    in a user namespace only the working directory, bound by the kernel (it owns the
    container there, which its steps must not reach)."""
    temp, container = cfg["temp_dir"], cfg["container"]
    user = cfg["user_namespace"]
    _confine.enter_namespaces(user=False, ipc=True)  # inside the zygote's user namespace, if any
    host = os.open(container, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    below = "/" + os.path.relpath(container, temp)
    if user:
        work = os.open(_wire.WORKDIR_NAME, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=host)
        writable = [(work, os.path.join(below, _wire.WORKDIR_NAME))]
    else:
        work = -1
        writable = [(host, below)]
    try:
        _confine.mount_view(temp, [], writable)
    finally:
        if work >= 0:
            os.close(work)
    os.chdir("/")
    if cfg["kernel_renews_workdir"]:
        _DIRS["host"] = host
    else:
        os.close(host)


def _renew_workdir(container: str, pid: int) -> None:
    """In a user namespace: a fresh working directory once a stateless step process is gone.

    The old one is renamed for the harness to delete; a new one is made in the
    container on the host and bound where the step processes find it by name.
    """
    host = _DIRS["host"]
    name = _wire.WORKDIR_NAME
    os.rename(name, f"{_wire.RETIRED_PREFIX}{pid}", src_dir_fd=host, dst_dir_fd=host)
    os.mkdir(name, 0o700, dir_fd=host)
    fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=host)
    try:
        target = os.path.join(container, name)
        _confine.unmount(target)
        _confine.bind(fd, target, read_only=False, recursive=False)
    finally:
        os.close(fd)


def _status(status: int) -> dict:
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1}


def _prepare_process(cfg: dict, parent_pid: int) -> None:
    """Shared by kernels and exec'd commands: namespaces, identity, limits, import paths."""
    import_paths = cfg.get("import_paths", [])
    private_root = cfg.get("private_root", False)
    if private_root:
        try:  # as root, before the uid drop: it resolves the host's paths
            if not _PREPARED.get("shared_root"):  # spawned directly, not forked by a zygote that did it
                _enter_shared_root(cfg)
            _enter_kernel_view(cfg)
        except OSError as exc:
            sys.stderr.write(f"could not enter the private root: {exc}\n")
            _exit(77)
        dirfds = []
    else:
        dirfds = [os.open(p, os.O_PATH | os.O_DIRECTORY) for p in import_paths]
        _IMPORT_FDS.update(zip(import_paths, dirfds, strict=True))
    if "container" in cfg:  # O_PATH: the container is searchable, not readable, by the kernel's uid
        _DIRS["container"] = os.open(cfg["container"], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if cfg.get("uid") is not None:
        if not _confine.drop_privileges(cfg["uid"], cfg["gid"]):
            sys.stderr.write("could not drop privileges\n")
            _exit(74)
    _confine.set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        _exit(75)
    _confine.set_limits(cfg["rlimits"])
    # The Python install may sit below a directory the kernel's uid cannot
    # traverse (/root): reach it through descriptors opened before the drop
    # (a private root's own directories are traversable: the paths themselves).
    sys.path[:] = list(import_paths) if private_root else [f"/proc/self/fd/{fd}" for fd in dirfds]


def _preload() -> None:
    """Everything a kernel imports or precomputes before it reads its cfg (the zygote does it once)."""
    if _PREPARED.get("preloaded"):
        return  # forked from the zygote, which did it
    for name in _PREIMPORT:
        __import__(name)
    if _confine.seccomp_available():
        _PREPARED["seccomp"] = _confine.PreparedFilter(strict=True)
        _PREPARED["no_new_privs"] = _confine.set_no_new_privs()  # inherited by every kernel
    _PREPARED["user_builtins"] = _user_builtins()
    _PREPARED["preloaded"] = True


def kernel_main(cfg: dict, parent_pid: int) -> None:
    ctl = socket.socket(fileno=cfg["control_fd"])
    _preload()
    if "proc" not in _DIRS:  # (a zygote in a private root passes its own)
        _DIRS["proc"] = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    _prepare_process(cfg, parent_pid)
    _confine.set_dumpable(False)
    _prepare_confinement(cfg)
    children: set[int] = set()

    kernel_pid = os.getpid()

    def spawn() -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            try:
                ctl.close()
                theirs.close()
                _close_dir(_DIRS, "host")  # the container on the host: never in a step process
                step_process_main(ours, cfg, kernel_pid)
            finally:
                _exit(76)
        ours.close()
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        children.add(pid)
        # A pidfd, opened before K can reap the child: the harness kills the step
        # process through it when the step ends, and never hits a reused pid.
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = -1
        fds = [theirs.fileno()] + ([pidfd] if pidfd >= 0 else [])
        try:
            socket.send_fds(ctl, [_dumps({"type": _wire.READY, "pid": pid}).encode()], fds)
        except OSError:
            _exit(0)
        theirs.close()
        exits.watch(pid, pidfd)  # K's copy: its wait (see _ChildExits)

    exits = _ChildExits()
    # The stateless runtime keeps a spare step process ready (forked and
    # confined) while the current one runs, so a step never waits for a fork.
    for _ in range(1 if cfg["persists_state"] else 2):
        spawn()
    while True:
        pid, status = exits.next()
        if pid not in children:
            continue
        children.discard(pid)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        if "host" in _DIRS:
            try:
                _renew_workdir(cfg["container"], pid)
            except OSError:
                _exit(78)  # no fresh working directory for the next step: no next step
        try:
            ctl.send(_dumps({"type": _wire.EXIT, "pid": pid, "status": _status(status)}).encode())
        except OSError:
            _exit(0)
        spawn()


class _ChildExits:
    """K's wait for its step processes' ends, on their pidfds.

    A pidfd turns readable when its process ends, and only then, whereas a
    ``waitpid`` sleeper is woken whenever a child stops or continues as well:
    each step of a persistent kernel stops and resumes its step process
    (``StepProcess.stop``), which would wake K twice a step for nothing.
    Where a child has no pidfd, K waits with ``waitpid`` alone.
    """

    def __init__(self) -> None:
        self.poller = select.poll()
        self.fds: dict[int, int] = {}  # pid -> its pidfd
        self.pidfds = True

    def watch(self, pid: int, pidfd: int) -> None:
        """Wait for ``pid`` on ``pidfd`` (closed once ``pid`` is reaped); -1: no pidfd."""
        if pidfd < 0:
            self.pidfds = False
            return
        self.fds[pid] = pidfd
        self.poller.register(pidfd, select.POLLIN)

    def next(self) -> tuple[int, int]:
        """The next child to end, reaped: (pid, wait status)."""
        while True:
            if self.pidfds and self.fds:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if not pid:
                    self.poller.poll()
                    continue
            else:
                pid, status = os.waitpid(-1, 0)
            fd = self.fds.pop(pid, -1)
            if fd >= 0:
                self.poller.unregister(fd)
                os.close(fd)
            return pid, status


def exec_main(cfg: dict, argv: list[str]) -> None:
    _prepare_process(cfg, cfg["harness_pid"])
    rules = _rules(cfg["read_only_paths"], _confine.READ_EXEC)
    rules += [(p, _confine.READ_WRITE | _confine.FS_EXECUTE) for p in cfg["read_write_paths"]]
    if cfg["landlock"] and not _confine.apply_landlock(rules):
        _exit(70)
    if cfg["seccomp"] and not _confine.apply_seccomp(strict=False):
        _exit(71)
    try:
        os.execvpe(argv[0], argv, dict(os.environ))
    except OSError as exc:
        sys.stderr.write(f"{argv[0]}: {exc.strerror}\n{_wire.EXEC_ERROR_MARKER}{exc.errno}\n")
        sys.stderr.flush()
        _exit(126 if exc.errno == 13 else 127)


# ---- the zygote: a pristine launcher that forks kernels ----------------------

_PR_SET_CHILD_SUBREAPER = 36


def zygote_main(cfg: dict) -> None:
    """Serve kernel start requests from the harness until it hangs up.

    Started once per harness process (``python -S -s _kernel.py zygote``) with a
    scrubbed environment, before anything sample-specific exists. It preloads
    what a kernel needs and then only forks: a request is a kernel's start-up
    message plus the kernel's end of its control socket (SCM_RIGHTS); the reply
    is the new kernel's pid plus a pidfd for it. The zygote never parses a
    request (the child does), and wipes the request buffer after each fork, so
    no kernel inherits anything of another.
    """
    channel = socket.socket(fileno=cfg["channel_fd"])
    _preload()
    if cfg.get("private_root"):
        try:
            _enter_shared_root(cfg)
        except OSError as exc:
            sys.stderr.write(f"could not enter the shared private root: {exc}\n")
            _exit(77)
    _confine.set_parent_death_signal(signal.SIGKILL)  # after the namespaces: a new user namespace clears it
    if os.getppid() != cfg["harness_pid"]:
        _exit(75)
    _confine.set_dumpable(False)
    # Kernels are reaped here as they end (their CPU time adds up in ours, and
    # so in the harness's children once it reaps us); so are step processes
    # orphaned by a dying kernel, instead of by pid 1.
    _confine._prctl(_PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGCHLD, _reap_children)
    _make_base_ruleset(cfg)
    gc.collect()
    gc.freeze()  # forked kernels share these pages instead of copying them on the next collection
    zygote_pid = os.getpid()
    buf = bytearray(_wire.MAX_ZYGOTE_REQUEST)
    zeros = bytes(_wire.MAX_ZYGOTE_REQUEST)
    reply = bytearray(_wire.ZYGOTE_REPLY.size)
    fd_space = socket.CMSG_SPACE(4 * 4)
    while True:
        try:
            nbytes, ancdata, flags, _addr = channel.recvmsg_into([buf], fd_space)
        except InterruptedError:
            continue
        except OSError:
            _exit(0)
        fds = []
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += struct.unpack(f"{len(data) // 4}i", data[: len(data) - len(data) % 4])
        if nbytes == 0 and not fds:
            _exit(0)  # the harness hung up
        request_id = _wire.ZYGOTE_REQUEST.unpack_from(buf)[0] if nbytes >= _wire.ZYGOTE_REQUEST.size else 0
        pid = -22  # EINVAL
        pidfd = -1
        # SIGCHLD held until the pidfd is open: a kernel that dies at once stays a
        # zombie till then, so its pid cannot have been reused under us.
        _sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            if len(fds) == 1 and nbytes > _wire.ZYGOTE_REQUEST.size and not flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                try:
                    pid = os.fork()
                except OSError as exc:
                    pid = -(exc.errno or 11)
                if pid == 0:
                    try:
                        _zygote_child(channel, buf, nbytes, fds[0], zygote_pid)
                    finally:
                        _exit(76)
            if pid > 0:
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    pidfd = -1
        finally:
            _sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        buf[:nbytes] = zeros[:nbytes]
        for fd in fds:
            os.close(fd)
        _wire.ZYGOTE_REPLY.pack_into(reply, 0, request_id, pid)
        try:
            if pidfd >= 0:
                channel.sendmsg([reply], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", pidfd))])
            else:
                channel.send(reply)
        except OSError:
            _exit(0)
        finally:
            if pidfd >= 0:
                os.close(pidfd)
        if pid > 0:
            _make_base_ruleset(cfg)  # the kernel has this one: a new one for the next


def _make_base_ruleset(cfg: dict) -> None:
    """In the zygote: a Landlock ruleset with the read-only paths, for the next kernel.

    The kernel adds its own directories to it (``_prepare_confinement``) when
    its read-only paths are these. Built in a freshly forked kernel, the whole
    ruleset cost about a tenth of its start; here it is made while no kernel
    starts. Each kernel gets a new one, and the zygote keeps no copy of a
    kernel's: rules added to a ruleset cannot be taken out.
    """
    old = _PREPARED.pop("base_ruleset", None)
    if old is not None:
        os.close(old[1])
    paths = cfg.get("read_only_paths")
    if not paths or _confine.landlock_abi() <= 0:
        return
    fd = _confine.landlock_ruleset([(p, _confine.READ_ONLY) for p in paths])
    if fd >= 0:
        _PREPARED["base_ruleset"] = (list(paths), fd)


def _reap_children(signum, frame) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _zygote_child(channel: socket.socket, buf: bytearray, nbytes: int, control_fd: int, zygote_pid: int) -> None:
    """In the fork: become a fresh kernel, as if started by the harness with this request."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    channel.close()
    # the control socket, /proc where the zygote hides it, and the ruleset made for this kernel
    base = _PREPARED.get("base_ruleset")
    keep = sorted({control_fd, *_DIRS.values(), *([base[1]] if base is not None else [])})
    for low, high in zip([2, *keep], [*keep, 1 << 20], strict=True):
        os.closerange(low + 1, high)
    os.setpgid(0, 0)
    _confine.set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != zygote_pid:
        _exit(75)
    start = _loads(bytes(buf[_wire.ZYGOTE_REQUEST.size : nbytes]))
    buf[:] = bytes(len(buf))
    sys.argv[1:] = ["kernel"]
    os.chdir(start["cwd"])
    os.environ.clear()
    os.environ.update(start["env"])
    cfg = start["cfg"]
    cfg["control_fd"] = control_fd
    kernel_main(cfg, zygote_pid)


def probe_main(cfg: dict) -> None:
    """Enter a private root as a kernel would (``cfg``: its start-up cfg's namespace part);
    print whether it worked and hides the host. The harness runs it once to learn
    whether the machine allows namespaces."""
    try:
        _enter_shared_root(cfg)
        _enter_kernel_view(cfg)
        hidden = not os.path.lexists("/etc") and os.listdir(cfg["container"]) == [_wire.WORKDIR_NAME]
    except OSError as exc:
        sys.stdout.write(_dumps({"private_root": False, "error": str(exc)}))
        return
    sys.stdout.write(_dumps({"private_root": hidden}))


def main() -> None:
    mode, cfg = sys.argv[1], _loads(sys.argv[2])
    if mode == "kernel":
        kernel_main(cfg, cfg["harness_pid"])
    elif mode == "zygote":
        zygote_main(cfg)
    elif mode == "exec":
        exec_main(cfg, sys.argv[4:])
    elif mode == "probe":
        probe_main(cfg)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
