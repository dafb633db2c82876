"""Communicators: what data-parallel training needs from a communication library.

Every communicator has a ``rank`` (0, 1, ..., ``size`` - 1) and four collective
operations on arrays of the active backend:

=========================  ==============================================================
``allreduce_(buf)``        every rank's ``buf`` becomes the sum of all ranks' ``buf``
``allgather(buf)``         a new array ``(size, *buf.shape)``: row r is rank r's ``buf``
``bcast_(buf, root=0)``    every rank's ``buf`` becomes rank ``root``'s
``barrier()``              returns when every rank has called it
=========================  ==============================================================

plus ``abort(code)``, which ends every process of the job.

* :class:`MPIComm` — MPI through mpi4py (``pip install "nnbook[mpi]"``; start the
  processes with ``mpiexec -n 4 python ...``).  On the GPU backend it stages the
  arrays through host memory.
* :class:`NCCLComm` — NVIDIA's NCCL through CuPy, one process per GPU, on device
  arrays; MPI starts the processes and hands NCCL its rendezvous id.
* :class:`LocalComm` — one process: every operation is the identity.
* :class:`ThreadComm` — ``size`` ranks as threads of one process (see
  :func:`run_threads`), for exercises and tests without MPI.  It also speaks the
  part of mpi4py's buffer interface that the book's allreduce algorithms use
  (``Send``, ``Recv``, ``Sendrecv``, ``Allreduce``, ``Bcast``, ``Allgather``,
  ``Barrier``), so the same function runs under ``mpiexec`` and in a notebook.
"""
from __future__ import annotations

import collections
import contextlib
import sys
import threading
import time
import traceback

import numpy as np

from ..backend import get_xp, to_numpy

__all__ = ["Communicator", "MPIComm", "NCCLComm", "LocalComm", "ThreadComm", "run_threads",
           "DeadlockError", "IN_PLACE", "mpi_available", "abort_on_error"]


def mpi_available():
    """``(True, "")`` if mpi4py imports, else ``(False, why)``."""
    try:
        import mpi4py  # noqa: F401, PLC0415
    except ImportError as e:
        return False, f"mpi4py is not installed ({e}); pip install 'nnbook[mpi]'"
    return True, ""


class Communicator:
    """The interface (see the module docstring); subclasses implement it."""

    name = "?"
    rank = 0
    size = 1
    #: sum in rank order: gather every rank's buffer and add them up 0, 1, 2, ... on
    #: every rank — the same bits everywhere whatever the library's algorithm, for
    #: (p-1)·n received bytes instead of the ring's 2(p-1)/p·n
    ordered = False

    def allreduce_(self, buf):
        """Replace ``buf`` by the sum of every rank's ``buf`` (in place; returns it)."""
        if not self.ordered or self.size == 1:
            return self._allreduce_(buf)
        parts = self.allgather(buf)
        buf[...] = parts[0]
        for part in parts[1:]:
            buf += part
        return buf

    def _allreduce_(self, buf):
        raise NotImplementedError

    def allgather(self, buf):
        raise NotImplementedError

    def bcast_(self, buf, root=0):
        raise NotImplementedError

    def barrier(self):
        raise NotImplementedError

    def abort(self, code=1):
        raise SystemExit(code)

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class LocalComm(Communicator):
    """One process: nothing to exchange."""

    name = "local"

    def _allreduce_(self, buf):
        return buf

    def allgather(self, buf):
        return buf[None].copy()

    def bcast_(self, buf, root=0):
        return buf

    def barrier(self):
        pass


class MPIComm(Communicator):
    """MPI through mpi4py (``comm``: an mpi4py communicator, default ``COMM_WORLD``).
    ``self.mpi`` is the mpi4py communicator itself, for point-to-point code."""

    name = "mpi"

    def __init__(self, comm=None, ordered=False):
        ok, why = mpi_available()
        if not ok:
            raise RuntimeError(why)
        from mpi4py import MPI  # noqa: PLC0415  (initialises MPI)
        self._MPI = MPI
        self.mpi = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.mpi.Get_rank(), self.mpi.Get_size()
        self.ordered = bool(ordered)

    def _host(self, buf):
        return buf if isinstance(buf, np.ndarray) else to_numpy(buf)

    def _back(self, buf, h):
        if h is not buf:                       # a device array: copy the result back
            buf[...] = get_xp().asarray(h)
        return buf

    def _allreduce_(self, buf):
        h = np.ascontiguousarray(self._host(buf))
        self.mpi.Allreduce(self._MPI.IN_PLACE, h, op=self._MPI.SUM)
        return self._back(buf, h)

    def allgather(self, buf):
        h = np.ascontiguousarray(self._host(buf))
        out = np.empty((self.size,) + h.shape, dtype=h.dtype)
        self.mpi.Allgather(h, out)
        return out if isinstance(buf, np.ndarray) else get_xp().asarray(out)

    def bcast_(self, buf, root=0):
        h = np.ascontiguousarray(self._host(buf))
        self.mpi.Bcast(h, root=root)
        return self._back(buf, h)

    def barrier(self):
        self.mpi.Barrier()

    def abort(self, code=1):
        self.mpi.Abort(code)


class NCCLComm(Communicator):
    """NCCL through CuPy (``cupy.cuda.nccl``), one process per GPU.

    MPI starts the processes (``mpiexec -n 4 python ...``) and broadcasts NCCL's
    unique id from rank 0; each process then takes the GPU ``local rank mod
    device count`` and joins the NCCL communicator.  The buffers must be CuPy
    arrays (the ``cupy`` backend); operations run on the current stream and
    are waited for before returning, so the results can be used at once."""

    name = "nccl"

    def __init__(self, mpi_comm=None, ordered=False):
        boot = MPIComm(mpi_comm)
        self.ordered = bool(ordered)
        try:
            import cupy  # noqa: PLC0415
            from cupy.cuda import nccl  # noqa: PLC0415
        except ImportError as e:
            raise RuntimeError(f"NCCL needs CuPy with NCCL ({e}); pip install -e '.[gpu]'") from None
        if not nccl.available:
            raise RuntimeError("CuPy was built without NCCL (cupy.cuda.nccl.available is False)")
        self._cupy, self._nccl = cupy, nccl
        self.boot, self.rank, self.size = boot, boot.rank, boot.size
        node = boot.mpi.Split_type(boot._MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = node.Get_rank()
        node.Free()
        ndev = cupy.cuda.runtime.getDeviceCount()
        self.device = self.local_rank % ndev
        cupy.cuda.Device(self.device).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = boot.mpi.bcast(uid, root=0)
        self.nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
        self._types = {np.dtype(np.float32): nccl.NCCL_FLOAT32,
                       np.dtype(np.float64): nccl.NCCL_FLOAT64,
                       np.dtype(np.int32): nccl.NCCL_INT32, np.dtype(np.int64): nccl.NCCL_INT64}

    def _check(self, buf):
        if not isinstance(buf, self._cupy.ndarray) or not buf.flags.c_contiguous:
            raise TypeError("buf: NCCL needs a C-contiguous CuPy array (use nb.use('cupy'))")
        if buf.dtype not in self._types:
            raise TypeError(f"buf: NCCL here takes {sorted(map(str, self._types))}, got {buf.dtype}")
        return self._types[buf.dtype]

    def _sync(self, stream):
        stream.synchronize()

    def _allreduce_(self, buf):
        t = self._check(buf)
        s = self._cupy.cuda.get_current_stream()
        self.nccl.allReduce(buf.data.ptr, buf.data.ptr, buf.size, t, self._nccl.NCCL_SUM, s.ptr)
        self._sync(s)
        return buf

    def allgather(self, buf):
        t = self._check(buf)
        out = self._cupy.empty((self.size,) + buf.shape, dtype=buf.dtype)
        s = self._cupy.cuda.get_current_stream()
        self.nccl.allGather(buf.data.ptr, out.data.ptr, buf.size, t, s.ptr)
        self._sync(s)
        return out

    def bcast_(self, buf, root=0):
        t = self._check(buf)
        s = self._cupy.cuda.get_current_stream()
        self.nccl.bcast(buf.data.ptr, buf.size, t, root, s.ptr)
        self._sync(s)
        return buf

    def barrier(self):
        self.boot.barrier()

    def abort(self, code=1):
        with contextlib.suppress(Exception):
            self.nccl.abort()
        self.boot.abort(code)


@contextlib.contextmanager
def abort_on_error(comm, file=None):
    """Run the body; if it raises, print the traceback (each line prefixed with the
    rank) and end the *whole job* with ``comm.abort(1)``.  Without this, a rank that
    stops with an error leaves the others waiting for it in their next collective
    operation forever.  With one process the exception simply propagates."""
    try:
        yield comm
    except BaseException as e:
        if comm.size == 1 or (isinstance(e, SystemExit) and e.code in (0, None)):
            raise
        out = file or sys.stderr
        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        out.write("".join(f"[rank {comm.rank}] {line}\n" for line in text.splitlines()))
        out.flush()
        comm.abort(1)
        raise


# ------------------------------------------------------------------------ ranks as threads
IN_PLACE = object()        #: ``ThreadComm.Allreduce(IN_PLACE, buf)``, as ``MPI.IN_PLACE``


class DeadlockError(RuntimeError):
    """Every rank of a :class:`ThreadComm` group waits for another: none can go on."""


class _Aborted(RuntimeError):
    pass


class _Group:
    """State shared by the ranks of one :func:`run_threads` call.  The ranks take
    turns: a rank runs only while it holds ``cond`` and lets go of it only while it
    waits for another rank, so their code never runs at the same time (no races in
    nnbook's module state, and the same interleaving on every run)."""

    def __init__(self, size, timeout):
        self.size, self.timeout = size, timeout
        self.cond = threading.Condition()
        self.mail = collections.defaultdict(collections.deque)   # (src, dst, tag) -> messages
        self.colls = {}                                          # collective number -> slots
        self.waiting = {}                                        # rank -> (predicate, what)
        self.done = set()
        self.error = None                                        # (rank, exception)
        self.deadline = time.monotonic() + timeout

    def wait_until(self, rank, ready, what):
        self.cond.notify_all()
        while not ready():
            if self.error is not None:
                r, e = self.error
                raise _Aborted(f"rank {rank} stopped: rank {r} failed ({type(e).__name__}: {e})")
            self.waiting[rank] = (ready, what)
            stuck = all(r in self.waiting or r in self.done for r in range(self.size))
            if stuck and not any(p() for p, _ in self.waiting.values()):
                detail = "; ".join(f"rank {r} in {w}" for r, (_, w) in sorted(self.waiting.items()))
                err = DeadlockError(
                    f"deadlock: every rank waits for another ({detail}"
                    + (f"; ranks {sorted(self.done)} have returned" if self.done else "") + "). "
                    "A Send completes only when its Recv has started: if every rank sends "
                    "first, none receives — use Sendrecv, or alternate by rank parity")
                self.error = (rank, err)
                self.cond.notify_all()
                del self.waiting[rank]
                raise err
            left = self.deadline - time.monotonic()
            if left <= 0:
                err = TimeoutError(f"rank {rank}: no progress in {self.timeout} s ({what})")
                self.error = (rank, err)
                self.cond.notify_all()
                del self.waiting[rank]
                raise err
            self.cond.wait(min(left, 1.0))
            self.waiting.pop(rank, None)


class ThreadComm(Communicator):
    """Rank ``rank`` of a group of threads made by :func:`run_threads`.

    Point-to-point messages follow MPI's strictest legal behaviour: ``Send``
    returns only once the matching ``Recv`` has taken the message (as
    ``MPI_Ssend``), so code that would deadlock under MPI for large messages
    deadlocks here too — and is reported as a :class:`DeadlockError` instead of
    hanging.  Collective results are summed in rank order, the same on every rank.
    """

    name = "threads"

    def __init__(self, group, rank, ordered=False, collectives=True):
        self._g, self.rank, self.size = group, rank, group.size
        self._ncoll = 0
        self.ordered = bool(ordered)
        self.collectives = bool(collectives)
        self.sent = 0             # elements this rank has sent point-to-point

    # mpi4py's spelling -----------------------------------------------------------------
    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def _peer(self, r, what):
        if not isinstance(r, (int, np.integer)) or not 0 <= r < self.size:
            raise ValueError(f"{what}: expected a rank in 0..{self.size - 1}, got {r!r}")
        if r == self.rank:
            raise ValueError(f"{what}: rank {r} cannot send to or receive from itself here")
        return int(r)

    def _post(self, buf, dest, tag):
        msg = {"data": np.array(to_numpy(buf), copy=True), "taken": False}
        self.sent += msg["data"].size
        self._g.mail[(self.rank, dest, tag)].append(msg)
        return msg

    def Send(self, buf, dest, tag=0):
        dest = self._peer(dest, "dest")
        msg = self._post(buf, dest, tag)
        self._g.wait_until(self.rank, lambda: msg["taken"], f"Send to rank {dest}")

    def Recv(self, buf, source, tag=0):
        source = self._peer(source, "source")
        box = self._g.mail[(source, self.rank, tag)]
        self._g.wait_until(self.rank, lambda: bool(box), f"Recv from rank {source}")
        msg = box.popleft()
        data = msg["data"].reshape(-1)
        flat = buf.reshape(-1)
        if data.size > flat.size:
            msg["taken"] = True
            raise ValueError(f"Recv: message of {data.size} elements from rank {source} does not "
                             f"fit the buffer of {flat.size} (MPI: message truncated)")
        if not np.shares_memory(flat, buf) and flat.size:
            raise ValueError("buf: expected a contiguous array to receive into")
        flat[:data.size] = data
        msg["taken"] = True
        self._g.cond.notify_all()

    def Sendrecv(self, sendbuf, dest, sendtag=0, recvbuf=None, source=None, recvtag=None):
        dest = self._peer(dest, "dest")
        if recvbuf is None or source is None:
            raise ValueError("Sendrecv: give recvbuf= and source= (this communicator has no "
                             "ANY_SOURCE)")
        msg = self._post(sendbuf, dest, sendtag)
        self.Recv(recvbuf, source, sendtag if recvtag is None else recvtag)
        self._g.wait_until(self.rank, lambda: msg["taken"], f"Sendrecv to rank {dest}")

    def _exchange(self, value, what):
        """Every rank's ``value``, in rank order (the one collective primitive)."""
        if not self.collectives:
            raise RuntimeError(f"{what}: collective operations are switched off here; build "
                               f"it from point-to-point messages (Send, Recv, Sendrecv)")
        g, k = self._g, self._ncoll
        self._ncoll += 1
        slot = g.colls.setdefault(k, {"vals": {}, "read": 0})
        slot["vals"][self.rank] = value
        g.wait_until(self.rank, lambda: len(slot["vals"]) == self.size, what)
        vals = [slot["vals"][r] for r in range(self.size)]
        slot["read"] += 1
        if slot["read"] == self.size:
            del g.colls[k]
        return vals

    def Allreduce(self, sendbuf, recvbuf, op=None):
        if op not in (None, "sum"):
            raise ValueError(f"op: only the sum is supported here, got {op!r}")
        src = recvbuf if sendbuf is IN_PLACE else sendbuf
        vals = self._exchange(np.array(to_numpy(src), copy=True), "Allreduce")
        total = vals[0].copy()
        for v in vals[1:]:
            total += v
        recvbuf[...] = total

    def Bcast(self, buf, root=0):
        vals = self._exchange(np.array(to_numpy(buf), copy=True) if self.rank == root else None,
                              "Bcast")
        buf[...] = vals[root]

    def Allgather(self, sendbuf, recvbuf):
        vals = self._exchange(np.array(to_numpy(sendbuf), copy=True), "Allgather")
        recvbuf[...] = np.stack(vals).reshape(recvbuf.shape)

    def Barrier(self):
        self._exchange(None, "Barrier")

    # the Communicator interface ------------------------------------------------------------
    def _allreduce_(self, buf):
        h = to_numpy(buf).copy()
        self.Allreduce(IN_PLACE, h)
        buf[...] = get_xp().asarray(h) if not isinstance(buf, np.ndarray) else h
        return buf

    def allgather(self, buf):
        out = np.empty((self.size,) + tuple(buf.shape), dtype=buf.dtype)
        self.Allgather(buf, out)
        return out if isinstance(buf, np.ndarray) else get_xp().asarray(out)

    def bcast_(self, buf, root=0):
        h = to_numpy(buf).copy()
        self.Bcast(h, root)
        buf[...] = get_xp().asarray(h) if not isinstance(buf, np.ndarray) else h
        return buf

    def barrier(self):
        self.Barrier()

    def abort(self, code=1):
        raise _Aborted(f"rank {self.rank} called abort({code})")


def run_threads(fn, size, args=None, timeout=60.0, ordered=False, collectives=True):
    """Run ``fn(comm, *args[r])`` as rank r = 0..size-1 of a :class:`ThreadComm`
    group and return the ranks' results in rank order.  If a rank raises, the
    others stop at their next wait and the first error is raised again here
    (as ``comm.Abort`` would end an MPI job); ``ordered``: see
    :attr:`Communicator.ordered`; ``collectives=False`` leaves only point-to-point
    messages (the collectives raise); a deadlock raises
    :class:`DeadlockError`, and no progress for ``timeout`` seconds TimeoutError."""
    size = int(size)
    if size < 1:
        raise ValueError(f"size: expected at least 1 rank, got {size}")
    args = [()] * size if args is None else [tuple(a) for a in args]
    if len(args) != size:
        raise ValueError(f"args: expected one tuple per rank ({size}), got {len(args)}")
    g = _Group(size, timeout)
    results, errors = [None] * size, [None] * size

    def body(r):
        with g.cond:
            try:
                results[r] = fn(ThreadComm(g, r, ordered, collectives), *args[r])
            except BaseException as e:  # noqa: BLE001 - handed back to the caller
                errors[r] = e
                if g.error is None and not isinstance(e, _Aborted):
                    g.error = (r, e)
            finally:
                g.done.add(r)
                g.cond.notify_all()

    threads = [threading.Thread(target=body, args=(r,), daemon=True, name=f"rank-{r}")
               for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if g.error is not None:
        raise g.error[1]
    for e in errors:
        if e is not None:
            raise e
    return results
