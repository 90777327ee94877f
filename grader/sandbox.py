"""The sandbox a learner's kernel runs in: bubblewrap, an allow-list of read-only folders, no privileges.

What it promises (docs/grading.md, "What the sandbox guarantees"):

- The kernel and everything it starts run as an unprivileged user with no capabilities and no way to gain
  any (``no_new_privs``). When the grader runs as root, bubblewrap builds the mounts and then starts the
  kernel as a dedicated uid (``setpriv``), one per parallel slot, with an empty capability bounding set, so
  root-only files stay unreadable and ``umount``/``mount`` are refused; otherwise the kernel runs as the
  instructor's uid inside a user namespace of its own, without capabilities.
- Its filesystem is an empty one with, read-only, only the system's programs and libraries (``/usr``,
  ``/etc`` …), the Python environment, the course's modules, the data sets and the torch weights cache;
  and, writable, one fresh scratch folder (its ``TMPDIR``, ``HOME`` and working folder). The checkout (its
  ``.git``, solutions, tests, grader), the submissions, the grades, ``$HOME`` and the host's ``/tmp`` are
  not there at all.
- No network (a namespace with loopback only), its own process tree (every process dies with the kernel),
  limits on address space, file size and (as root) the number of processes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt")
FIRST_UID = 3_000_000  # uids of the sandboxes when the grader runs as root: one per parallel slot


@dataclass(frozen=True)
class Limits:
    """What one learner's notebook may use."""

    memory_bytes: int = 10 * 2**30  # the whole sandbox's (cgroup), and each process's address space
    file_bytes: int = 2 * 2**30
    processes: int = 512  # the whole sandbox's (cgroup), or its uid's (the grader runs as root)
    shm_bytes: int = 2**30  # its /dev/shm, a tmpfs of its own (DataLoader workers share tensors there)
    cell_seconds: int = 600
    notebook_seconds: int = 1800


@dataclass(frozen=True)
class Sandbox:
    """One learner's sandbox: a short scratch folder, the same path inside and out."""

    scratch: Path
    readonly: tuple[Path, ...]
    symlinks: tuple[tuple[str, str], ...] = ()  # (target, link): /bin → usr/bin on merged-/usr systems
    uid: int | None = None  # the dedicated uid when the grader is root; None: the caller's own
    limits: Limits = field(default_factory=Limits)
    environment: dict[str, str] = field(default_factory=dict)
    enabled: bool = True  # False: limits and a clean environment only (`--no-sandbox`, trusted code)
    cgroups: tuple[str, ...] = ()  # its own cgroup folders (memory, pids), made by :func:`confined`

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the sandbox: (its cgroups) → prlimit → bwrap → (as root: setpriv to the sandbox's
        uid) → argv."""
        return [*self._confine(), *self._command(argv)]

    def _confine(self) -> list[str]:
        """The command's prefix that puts it, before it starts anything, into the sandbox's own cgroups."""
        if not self.cgroups:
            return []
        if self.cgroups[0] == SYSTEMD:
            memory, processes = self.limits.memory_bytes, self.limits.processes
            scope = ["systemd-run", "--scope", "--quiet", "--collect"]
            return [*scope, f"-pMemoryMax={memory}", "-pMemorySwapMax=0", f"-pTasksMax={processes}", "--"]
        moves = " && ".join(f'echo $$ > "${n + 1}/cgroup.procs"' for n in range(len(self.cgroups)))
        return ["sh", "-c", f'{moves} && shift {len(self.cgroups)} && exec "$@"', "sh", *self.cgroups]

    def _command(self, argv: list[str]) -> list[str]:
        limits = [f"--as={self.limits.memory_bytes}", f"--fsize={self.limits.file_bytes}"]
        if not self.enabled:
            variables = [f"{name}={value}" for name, value in sorted(self.environment.items())]
            return [
                "prlimit",
                *limits,
                "--",
                "env",
                "-i",
                f"--chdir={self.scratch / 'work'}",
                *variables,
                *argv,
            ]
        args = [
            "bwrap",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]
        args += ["--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL"]
        drop: list[str] = []
        if self.uid is None:  # the caller's own uid, mapped into a user namespace of its own
            args += ["--unshare-user"]
        else:  # root builds the mounts, then the kernel runs as a uid of its own without any privilege
            limits.append(f"--nproc={self.limits.processes}")
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
            drop = [
                shutil.which("setpriv") or "/usr/bin/setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        # The folders above each mount, created traversable (bubblewrap would make them root's alone).
        above = sorted({str(a) for p in (*self.readonly, self.scratch) for a in p.parents if a != Path("/")})
        for folder in above:
            args += ["--perms", "0755", "--dir", folder]
        for path in self.readonly:
            args += ["--ro-bind", str(path), str(path)]
        for target, link in self.symlinks:
            args += ["--symlink", target, link]
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "1777", "--size", str(self.limits.shm_bytes), "--tmpfs", "/dev/shm"]
        args += ["--bind", str(self.scratch), str(self.scratch)]
        for private in ("work", "home"):  # the kernel's own files: in memory, sized, never on the host's disk
            args += [
                "--perms",
                "1777",
                "--size",
                str(self.limits.file_bytes),
                "--tmpfs",
                str(self.scratch / private),
            ]
        # The sandbox's own root (a tmpfs holding the folders above the mounts) read-only: as a normal user
        # the kernel's uid owns those folders and could otherwise write into them (harmless, but confusing).
        args += ["--remount-ro", "/"]
        for name, value in sorted(self.environment.items()):
            args += ["--setenv", name, value]
        work = [
            shutil.which("env") or "/usr/bin/env",
            f"--chdir={self.scratch / 'work'}",
        ]  # as the sandbox's uid: the scratch is its alone
        return ["prlimit", *limits, "--", *args, "--", *drop, *work, *argv]


def course_paths() -> list[Path]:
    """What the kernel needs of the machine: the interpreter, the environment, the course's modules."""
    import course

    paths = [Path(p) for p in SYSTEM]
    paths += [Path(sys.base_prefix), Path(sys.prefix)]
    paths += [course.ROOT / name for name in (*course.MODULES, "checks")]
    return paths


def system_links() -> tuple[tuple[str, str], ...]:
    """The system folders that are symbolic links (merged /usr): recreated as links in the sandbox."""
    return tuple((os.readlink(p), p) for p in SYSTEM if os.path.islink(p))


def readonly(extra: Iterable[Path]) -> tuple[Path, ...]:
    """The allow-list: existing paths, resolved, nested ones dropped (their parent is bound already)."""
    paths = [p for p in [*course_paths(), *extra] if not (str(p) in SYSTEM and os.path.islink(p))]
    found = sorted({Path(p).resolve() for p in paths if Path(p).exists()})
    kept: list[Path] = []
    for path in found:
        if not any(path.is_relative_to(parent) for parent in kept):
            kept.append(path)
    return tuple(kept)


def make_scratch(uid: int | None) -> Path:
    """A fresh, short scratch folder (so AF_UNIX socket paths stay under 108 bytes): work/ (the working folder
    and TMPDIR) and home/, where the sandbox mounts tmpfs of its own, and kernel/, the kernel's sockets; as
    root, only kernel/ (and those mount points) belong to the sandbox's uid."""
    scratch = Path(tempfile.mkdtemp(prefix="pytorch-grade-"))
    for name in ("work", "home", "kernel"):
        (scratch / name).mkdir()
    if uid is not None:  # the sandbox writes its sockets in kernel/; work/ and home/ are tmpfs of its own
        for path in scratch.iterdir():
            os.chown(path, uid, uid)
        scratch.chmod(0o755)
    return scratch


def remove_scratch(scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)


def available() -> str:
    """'' when bubblewrap can build this sandbox here, else why not."""
    if not shutil.which("bwrap"):
        return "bubblewrap is not installed (`make sandbox`, or apt-get install bubblewrap)"
    uid = FIRST_UID if os.geteuid() == 0 else None
    scratch = make_scratch(uid)
    try:
        probe = Sandbox(scratch, readonly([]), system_links(), uid).command(["/bin/true"])
        result = subprocess.run(probe, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return f"bubblewrap cannot start here: {result.stderr.strip()[:300]}"
    finally:
        remove_scratch(scratch)
    return ""


SYSTEMD = "systemd-run"  # the sandbox in a transient scope of systemd's, its limits set by systemd
CGROUP_PREFIX = "intro-pytorch-grader-"


def confinement() -> str:
    """How this machine limits a whole sandbox's memory and processes: "systemd-run" (cgroup v2 or v1 through
    systemd, as root), "cgroup v1" (the memory and pids hierarchies, writable: as root in most containers),
    or "" (none: each process's address space only, and as root the uid's process count)."""
    if os.geteuid() != 0:
        return ""
    if shutil.which("systemd-run") and Path("/run/systemd/system").is_dir():
        return SYSTEMD
    return "cgroup v1" if _v1_folders() else ""


def _v1_folders() -> list[Path]:
    """This process's own cgroup folders in the memory and pids hierarchies of cgroup v1, when both are
    there and writable; else []."""
    own = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                own[controller] = path
    except (OSError, ValueError):
        return []
    folders = [Path("/sys/fs/cgroup") / c / own.get(c, "/").lstrip("/") for c in ("memory", "pids")]
    if all((f / "cgroup.procs").is_file() and os.access(f, os.W_OK) for f in folders):
        return folders
    return []


@contextlib.contextmanager
def confined(limits: Limits) -> Iterator[tuple[str, ...]]:
    """Cgroups of the sandbox's own for the time it runs, with its memory and process limits (what
    :attr:`Sandbox.cgroups` takes): systemd makes its scope itself; under cgroup v1 they are made here, in
    this process's own cgroups, and removed afterwards with anything left in them; () where neither is
    possible."""
    kind = confinement()
    if kind != "cgroup v1":
        yield (SYSTEMD,) if kind == SYSTEMD else ()
        return
    memory, pids = (f / f"{CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}" for f in _v1_folders())
    made = []
    try:
        for folder, settings in (
            (memory, {"memory.limit_in_bytes": limits.memory_bytes, "memory.swappiness": 0}),
            (pids, {"pids.max": limits.processes}),
        ):
            folder.mkdir()
            made.append(folder)
            for name, value in settings.items():
                if (folder / name).exists():
                    (folder / name).write_text(str(value))
        yield tuple(str(f) for f in made)
    finally:
        for folder in made:
            _remove_cgroup(folder)


def _remove_cgroup(folder: Path) -> None:
    """A cgroup folder of the sandbox's, every process still in it killed first."""
    for _ in range(50):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # busy: processes are still in it
            with contextlib.suppress(OSError):
                for pid in (folder / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.1)


def protections(limits: Limits, sandboxed: bool) -> dict[str, str]:
    """What protected one notebook, in words: for its record and the class's summary."""
    kind = confinement()
    if os.geteuid() == 0:
        who = "a uid of its own, no capabilities"
    else:
        who = "your uid in a user namespace, no capabilities"
    memory = f"{limits.memory_bytes / 2**30:g} GiB"
    if kind:
        whole = f"{memory} for the whole sandbox and at most {limits.processes} processes ({kind}), "
    elif os.geteuid() == 0:
        whole = f"no whole-sandbox limit (no cgroups here), at most {limits.processes} processes (its uid), "
    else:
        whole = "no whole-sandbox limit (no cgroups for a normal user), "
    return {
        "time limits": f"{limits.cell_seconds} s per cell, {limits.notebook_seconds} s per notebook",
        "memory limit": f"{whole}{memory} address space per process",
        "shared memory": f"{limits.shm_bytes / 2**20:g} MiB /dev/shm of its own",
        "sandbox": f"on (bubblewrap: {who}; reads only the environment and the data)"
        if sandboxed
        else "OFF (--no-sandbox: the learners' code ran as the grader, with its files and network)",
        "network": "off (own network namespace)" if sandboxed else "NOT blocked (--no-sandbox)",
        "verdicts": "judged by the grader outside the kernel, on hidden inputs drawn from its secret",
    }
