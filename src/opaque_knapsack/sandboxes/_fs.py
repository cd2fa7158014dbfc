"""The harness's file operations on kernel working directories, safe against what the kernel did to them.

The kernel's uid owns its working directory and may have filled it with
anything: hundreds of thousands of files, directories nested thousands of
levels deep, symlinks to files the harness (perhaps root) may read, modes that
lock out its owner. So:

- ``remove_tree``/``clear_directory`` work iteratively through directory
  descriptors (no recursion, no symlink followed, at most ``_CHOP_DEPTH`` + a
  few descriptors open: deeper directories are moved up to the top and removed
  from there). They block, so callers run them off the event loop.
- ``open_beneath`` opens a path relative to a descriptor of the working
  directory with ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)``, or, where
  the kernel lacks openat2, one component at a time with ``O_NOFOLLOW``: no
  swap of a directory for a symlink, however timed, leads outside.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import stat
from collections.abc import Callable

_CHOP_DEPTH = 48
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_SYS_OPENAT2 = 437  # the same number on every architecture (the unified syscall table)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_openat2_missing = False


_RENAME_EXCHANGE = 2
_renameat2 = getattr(_libc, "renameat2", None)
_AT_FDCWD = -100


def exchange(first: str, second: str) -> bool:
    """Swap two paths atomically (``renameat2(RENAME_EXCHANGE)``); False where the C library or
    the file system cannot, and nothing was changed."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), first)


def _open_dir(name: str, dir_fd: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:  # a mode that locks out its owner (the unprivileged harness shares the uid)
        os.chmod(name, 0o700, dir_fd=dir_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _unlink(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except PermissionError:
        os.fchmod(dir_fd, 0o700)
        os.unlink(name, dir_fd=dir_fd)


def _first_subdir(fd: int) -> str | None:
    """Unlink every non-directory in ``fd``; return the name of a subdirectory left, if any."""
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            _unlink(entry.name, fd)
    return None


def clear_directory(root_fd: int) -> None:
    """Remove everything inside the directory ``root_fd`` (which stays), iteratively."""
    stack: list[tuple[int, str]] = [(root_fd, "")]
    try:
        while stack:
            fd, _name = stack[-1]
            subdir = _first_subdir(fd)
            if subdir is None:
                stack.pop()
                if stack:
                    os.close(fd)
                    try:
                        os.rmdir(_name, dir_fd=stack[-1][0])
                    except PermissionError:
                        os.fchmod(stack[-1][0], 0o700)
                        os.rmdir(_name, dir_fd=stack[-1][0])
                continue
            if len(stack) > _CHOP_DEPTH:
                # Too deep to hold a descriptor per level: move it to the top, clear it from there.
                os.rename(subdir, f".ok-chop-{secrets.token_hex(8)}", src_dir_fd=fd, dst_dir_fd=root_fd)
                continue
            stack.append((_open_dir(subdir, fd), subdir))
    finally:
        for fd, _name in stack[1:]:
            os.close(fd)


def remove_tree(path: str) -> None:
    """Delete the directory ``path`` and everything in it (no recursion, no symlink followed)."""
    parent, name = os.path.split(os.path.abspath(path))
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = _open_dir(name, parent_fd)
        except FileNotFoundError:
            return
        _empty_and_remove(fd, name, parent_fd)
    finally:
        os.close(parent_fd)


def _empty_and_remove(fd: int, name: str, parent_fd: int) -> None:
    """Clear the directory ``fd`` (``name`` in ``parent_fd``), close it, and remove it."""
    try:
        clear_directory(fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)


def scrub(path: str, keep: str, mode: int, times_ns: tuple[int, int]) -> None:
    """Reset the directory ``path`` to what the harness made: only ``keep`` in it, ``mode``,
    no extended attributes, ``times_ns`` as atime and mtime."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        os.fchmod(fd, mode)
        with os.scandir(fd) as entries:
            names = [entry.name for entry in entries if entry.name != keep]
        for name in names:
            try:
                child = _open_dir(name, fd)
            except OSError:  # not a directory (or gone): unlink it
                _unlink(name, fd)
                continue
            _empty_and_remove(child, name, fd)
        for attr in os.listxattr(fd):
            os.removexattr(fd, attr)
        os.utime(fd, ns=times_ns)
    finally:
        os.close(fd)


def is_empty(path: str) -> bool:
    """True if ``path`` has no entries (reads one directory block at most)."""
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except FileNotFoundError:
        return True


# ---- opening beneath a directory --------------------------------------------------


def _openat2(dir_fd: int, path: str, flags: int, mode: int) -> int:
    mode = mode if flags & os.O_CREAT else 0  # openat2 refuses a mode it would not use
    how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(_SYS_OPENAT2, ctypes.c_int(dir_fd), os.fsencode(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def _open_component(dir_fd: int, name: str, flags: int, mode: int = 0) -> int:
    global _openat2_missing
    if not _openat2_missing:
        try:
            return _openat2(dir_fd, name, flags, mode)
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            _openat2_missing = True
    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)


def split_beneath(root: str, file: str) -> list[str]:
    """The components of ``file`` (absolute, or relative to ``root``) below ``root``; PermissionError outside it."""
    relative = os.path.relpath(file, root) if os.path.isabs(file) else file
    normal = os.path.normpath(relative)
    if normal == ".":
        return []
    parts = normal.split(os.sep)
    if os.path.isabs(normal) or parts[0] == "..":
        raise PermissionError(errno.EACCES, "outside the sandbox working directory", file)
    return parts


def open_beneath(
    root_fd: int,
    parts: list[str],
    flags: int,
    mode: int = 0o644,
    make_parents: bool = False,
    on_created_dir: Callable[[int], None] | None = None,
) -> int:
    """Open ``parts`` below the directory ``root_fd`` without following any symlink.

    Each directory is opened relative to the previous one's descriptor, so
    nothing the kernel swaps in meanwhile (a symlink for a directory) can lead
    outside; with ``make_parents`` missing directories are created on the way
    and passed (as descriptors) to ``on_created_dir``, e.g. to change their owner.
    """
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "Is a directory", ".")
    fd = os.dup(root_fd)
    try:
        for name in parts[:-1]:
            try:
                nxt = _open_component(fd, name, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                if not make_parents:
                    raise
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                    created = True
                except FileExistsError:
                    created = False
                nxt = _open_component(fd, name, os.O_RDONLY | os.O_DIRECTORY)
                if created and on_created_dir is not None:
                    on_created_dir(nxt)
            os.close(fd)
            fd = nxt
        return _open_component(fd, parts[-1], flags, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EXDEV):
            raise PermissionError(errno.EACCES, "a symlink or a path outside the sandbox working directory", os.sep.join(parts)) from None
        raise
    finally:
        os.close(fd)


def is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)
