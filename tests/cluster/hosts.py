"""Machines for Ray's cluster launcher, made on this one: each host a network namespace with its
own SSH server, process table and ``/tmp``, on a private LAN that the test creates.

Each host runs ``sshd`` (key-only, for one unprivileged user) inside ``ip netns exec <host>
unshare --pid --mount``: its processes see only each other (a ``ray stop`` on one host leaves
the others alone), its ``/tmp`` is its own (Ray's session folders), and the user's home and the
shared folder (``/mnt/shared``, as on a lab's NFS) are the same folders on every host. The
hosts' LAN is a bridge in a namespace of its own, with addresses from 198.51.100.0/24 (reserved
for documentation): nothing a host binds or connects to leaves the namespaces. Killing a host's
``sshd``, the first process of its PID namespace, ends every process of that host.

The launcher (``ray up`` and the rest) runs as root in the head's network namespace
(:meth:`Hosts.command`), as a user would run it from a machine on the LAN. The hosts install
Python packages from a wheelhouse prepared outside the namespaces (:func:`prepare_wheelhouse`),
like a lab's package mirror, since they have no way out.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

USER = "dhcluster"
SUBNET = "198.51.100"
WHEELHOUSE = Path("/var/cache/depthhints/cluster-test-wheels")
TOOLS = ("ip", "unshare", "ssh", "ssh-keygen", "rsync", "/usr/sbin/sshd", "/usr/bin/python3.11")

SSHD_CONFIG = """\
ListenAddress {address}
HostKey /tmp/sshd/host_ed25519
PidFile /tmp/sshd/sshd.pid
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {user}
UsePAM no
MaxSessions 64
MaxStartups 64
"""


def missing_tools() -> list[str]:
    """What this machine lacks to make the hosts (root, Debian's openssh-server, rsync, ...)."""
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    return (["root"] if os.geteuid() != 0 else []) + missing


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def prepare_wheelhouse(requirements: Path, log: Path) -> Path:
    """The wheels of ``requirements`` (and of the project's build backend) in :data:`WHEELHOUSE`:
    downloaded the first time, found there offline later."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(WHEELHOUSE),
                "-r", str(requirements), "setuptools>=61", "wheel"]  # fmt: skip
    offline = ["--no-index", "--find-links", str(WHEELHOUSE)]
    with log.open("a") as out:
        if subprocess.run([*download, *offline], stdout=out, stderr=subprocess.STDOUT).returncode:
            subprocess.run(download, check=True, stdout=out, stderr=subprocess.STDOUT)
    return WHEELHOUSE


@dataclass
class Host:
    """One machine: its name, LAN address, network namespace and sshd (started)."""

    name: str
    address: str
    netns: str
    process: subprocess.Popen | None = None


class Hosts:
    """A head and ``workers`` hosts; ``start()`` makes them, ``stop()`` removes every trace
    (processes, namespaces, links) but the user account and the wheelhouse."""

    def __init__(self, workspace: Path, workers: int) -> None:
        self.workspace = workspace
        self.tag = secrets.token_hex(2)  # names of this run's namespaces and links
        self.lan = f"dh{self.tag}-lan"
        names = ["head", *(f"worker{i}" for i in range(1, workers + 1))]
        self.hosts = [
            Host(name, f"{SUBNET}.{i}", f"dh{self.tag}-{name}") for i, name in enumerate(names, 1)
        ]
        self.home = workspace / "home"
        self.shared = workspace / "shared"
        self.key = workspace / "client" / "id_ed25519"
        self.token = workspace / "client" / "auth_token"  # the Ray token the nodes get

    @property
    def head(self) -> Host:
        return self.hosts[0]

    @property
    def workers(self) -> list[Host]:
        return self.hosts[1:]

    def start(self, wheelhouse: Path) -> None:
        self._user(wheelhouse)
        self._network()
        for host in self.hosts:
            self._sshd(host)
        for host in self.hosts:
            self._wait_for_ssh(host)

    def command(self, *args: str) -> list[str]:
        """``args`` run in the head's network namespace (where the launcher runs)."""
        return ["ip", "netns", "exec", self.head.netns, *args]

    def _user(self, wheelhouse: Path) -> None:
        """The SSH user, with a fresh home for this run (mounted over its own on every host)."""
        try:
            pwd.getpwnam(USER)
        except KeyError:
            run("useradd", "--create-home", "--shell", "/bin/bash", USER)
        run("usermod", "--password", "*", USER)  # no password, not locked: key-only sshd
        account = pwd.getpwnam(USER)
        shutil.copytree("/etc/skel", self.home)
        (self.home / ".ssh").mkdir(mode=0o700)
        self.key.parent.mkdir(parents=True)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "launcher", "-f", str(self.key))
        shutil.copy(self.key.with_suffix(".pub"), self.home / ".ssh" / "authorized_keys")
        pip = self.home / ".config" / "pip"
        pip.mkdir(parents=True)  # the lab's package mirror: the hosts have no way out
        (pip / "pip.conf").write_text(f"[global]\nno-index = true\nfind-links = {wheelhouse}\n")
        for path in [self.home, *self.home.rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
        (self.home / ".ssh" / "authorized_keys").chmod(0o600)
        self.home.chmod(0o755)
        self.shared.mkdir()
        os.chown(self.shared, account.pw_uid, account.pw_gid)
        self.token.write_text(secrets.token_hex(32))

    def _network(self) -> None:
        run("ip", "netns", "add", self.lan)
        lan = ["ip", "-n", self.lan]
        run(*lan, "link", "add", "br0", "type", "bridge")
        run(*lan, "link", "set", "br0", "up")
        for i, host in enumerate(self.hosts):
            run("ip", "netns", "add", host.netns)
            near, far = f"dh{self.tag}-{i}a", f"dh{self.tag}-{i}b"
            run("ip", "link", "add", near, "netns", host.netns, "type", "veth", "peer", far,
                "netns", self.lan)  # fmt: skip
            run(*lan, "link", "set", far, "master", "br0", "up")
            net = ["ip", "-n", host.netns]
            run(*net, "link", "set", "lo", "up")
            run(*net, "link", "set", near, "name", "eth0")
            run(*net, "addr", "add", f"{host.address}/24", "dev", "eth0")
            run(*net, "link", "set", "eth0", "up")
            # a default route, so that Ray finds the host's address as on a LAN; nothing
            # answers beyond the bridge
            run(*net, "route", "add", "default", "dev", "eth0")

    def _sshd(self, host: Host) -> None:
        tmp = self.workspace / "hosts" / host.name / "tmp"
        (tmp / "sshd").mkdir(parents=True)
        tmp.chmod(0o1777)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "sshd" / "host_ed25519"))
        (tmp / "sshd" / "sshd_config").write_text(
            SSHD_CONFIG.format(address=host.address, user=USER)
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
        setup = " && ".join(
            [
                "mount -t tmpfs tmpfs /mnt",
                "mkdir /mnt/shared",
                f"mount --bind {self.shared} /mnt/shared",
                f"mount --bind {self.home} {pwd.getpwnam(USER).pw_dir}",
                f"mount --bind {tmp} /tmp",  # last: the workspace is under /tmp
                "exec /usr/sbin/sshd -D -e -f /tmp/sshd/sshd_config",
            ]
        )
        log = (self.workspace / "hosts" / host.name / "sshd.log").open("w")
        host.process = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "unshare", "--pid", "--fork", "--kill-child",
             "--mount-proc", "--mount", "--propagation", "private", "sh", "-c", setup],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def _wait_for_ssh(self, host: Host, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            probe = subprocess.run(
                self.command(*self.ssh(host), "true"), capture_output=True, text=True
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline or host.process.poll() is not None:
                log = (self.workspace / "hosts" / host.name / "sshd.log").read_text()
                raise RuntimeError(f"sshd on {host.name} did not answer: {probe.stderr}{log}")
            time.sleep(0.5)

    def ssh(self, host: Host) -> list[str]:
        """The SSH command that logs in to ``host`` as the launcher does."""
        return ["ssh", "-i", str(self.key), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "BatchMode=yes", f"{USER}@{host.address}"]  # fmt: skip

    def listening(self, netns: str | None = None) -> list[str]:
        """``ss -ltnp`` lines of the sockets that the hosts' user's processes listen on, in
        ``netns`` (None: this machine's own network)."""
        prefix = ["ip", "netns", "exec", netns] if netns else []
        lines = run(*prefix, "ss", "-Hltnp").stdout.splitlines()
        pids = {line.split()[0] for line in self.processes()}
        return [line for line in lines if any(f"pid={pid}," in line for pid in pids)]

    def processes(self) -> list[str]:
        """``pid command`` of every process of the hosts' user but its SSH sessions."""
        listed = subprocess.run(
            ["ps", "-u", USER, "-o", "pid=,args="], capture_output=True, text=True
        ).stdout.splitlines()
        return [line.strip() for line in listed if line.strip() and "sshd" not in line]

    def wait_until_idle(self, timeout_s: float = 60) -> list[str]:
        """:meth:`processes` once there are none, or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(1)
        return left

    def stop(self) -> None:
        for host in self.hosts:
            if host.process and host.process.poll() is None:
                host.process.kill()  # unshare --kill-child: the host's sshd, and with it the host
                host.process.wait(timeout=30)
        for netns in [host.netns for host in self.hosts] + [self.lan]:
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
