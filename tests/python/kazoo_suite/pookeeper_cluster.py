"""A pytest plugin that runs kazoo's own test suite against pookeeper.

kazoo's harness (kazoo.testing.harness) normally starts a cluster of Java
ZooKeeper servers. This plugin replaces that cluster with one pookeeper
process, configured the way the harness configures ZooKeeper (4lw
whitelist *, the harness's superDigest), before any test asks for it.

    POOKEEPER_BIN=target/debug/pookeeper \\
      python3 -m pytest -p pookeeper_cluster --pyargs kazoo.tests

(with this directory on PYTHONPATH). Tests that need more than one server
(a real ensemble) cannot pass against a standalone server; the runner
script deselects them by name.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import kazoo.testing.harness as harness


def _die_with_parent():
    """The server gets SIGTERM if pytest dies (even by SIGKILL)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ManagedPookeeper:
    """The subset of kazoo.testing.common.ManagedZooKeeper the tests use."""

    def __init__(self, binary, port, jaas=None):
        self.binary = binary
        self.jaas = jaas
        self.port = port
        self.host = "127.0.0.1"
        self.data_dir = tempfile.mkdtemp(prefix="pk-kazoo-")
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.process = None

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def secure_address(self):
        return self.address

    @property
    def client_port(self):
        return self.port

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def run(self):
        if self.running:
            return
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--data-dir",
                os.path.join(self.data_dir, "data"),
                "--tick-time",
                "2000",
                "--max-client-cnxns",
                "0",
                "--set",
                "forceSync=no",
                "--set",
                "4lw.commands.whitelist=*",
                "--set",
                "reconfigEnabled=true",
                "--set",
                # The harness's super user: super:test.
                "zookeeper.DigestAuthenticationProvider.superDigest="
                "super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
                "--set",
                "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            ]
            + self._jaas_args(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection((self.host, self.port), 0.5).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("pookeeper exited: see %s" % self.log_path)
                time.sleep(0.05)
        raise RuntimeError("pookeeper did not start listening")

    def _jaas_args(self):
        if not self.jaas:
            return []
        path = os.path.join(self.data_dir, "jaas.conf")
        with open(path, "w") as f:
            f.write(self.jaas)
        return ["--set", "java.security.auth.login.config=" + path]

    def stop(self):
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def reset(self):
        self.stop()
        shutil.rmtree(os.path.join(self.data_dir, "data"), ignore_errors=True)

    def destroy(self):
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def get_logs(self, num_lines=100):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.readlines()[-num_lines:]
        except OSError:
            return []


class PookeeperCluster:
    """Stands in for kazoo.testing.common.ZookeeperCluster."""

    def __init__(self, binary, jaas=None):
        self._servers = [ManagedPookeeper(binary, _free_port(), jaas)]

    def __getitem__(self, k):
        return self._servers[k]

    def __iter__(self):
        return iter(self._servers)

    def __len__(self):
        return len(self._servers)

    def _each(self, method):
        for s in self._servers:
            getattr(s, method)()

    def start(self):
        self._each("run")

    def stop(self):
        self._each("stop")

    def terminate(self):
        self._each("destroy")

    def reset(self):
        self._each("reset")

    def get_logs(self):
        return [s.get_logs() for s in self._servers]


# The JAAS configuration kazoo's harness gives ZooKeeper when a test sets
# ZOOKEEPER_JAAS_AUTH=digest (its SASL tests do).
DIGEST_JAAS = """
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};"""

_CLUSTER = None
_CLUSTER_JAAS = None


def _get_global_cluster():
    """Like the harness: one cluster, rebuilt when the JAAS mode changes."""
    global _CLUSTER, _CLUSTER_JAAS
    mode = os.environ.get("ZOOKEEPER_JAAS_AUTH")
    if _CLUSTER is not None and _CLUSTER_JAAS != mode:
        _CLUSTER.terminate()
        _CLUSTER = None
    if _CLUSTER is None:
        jaas = DIGEST_JAAS if mode == "digest" else None
        _CLUSTER = PookeeperCluster(os.environ["POOKEEPER_BIN"], jaas)
        _CLUSTER_JAAS = mode
        import atexit

        atexit.register(_CLUSTER.terminate)
    return _CLUSTER


def pytest_configure(config):
    harness.get_global_cluster = _get_global_cluster
