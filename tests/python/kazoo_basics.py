"""kazoo against a ZooKeeper-compatible server: CRUD, DataWatch, ChildrenWatch,
transactions, ephemeral cleanup after stop(), and the Lock recipe with two
contending clients. Usage: kazoo_basics.py HOST:PORT. Exit 0 on success."""
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError, RolledBackError
from kazoo.recipe.lock import Lock

HP = sys.argv[1]


def client():
    c = KazooClient(hosts=HP, timeout=10)
    c.start(timeout=10)
    return c


def wait_for(pred, what, limit=10.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


zk = client()

# CRUD and Stat.
zk.create("/k/a", b"hello", makepath=True)
data, stat = zk.get("/k/a")
assert data == b"hello" and stat.version == 0 and stat.dataLength == 5, (data, stat)
stat2 = zk.set("/k/a", b"x")
assert stat2.version == 1 and stat2.mzxid > stat.mzxid, stat2
try:
    zk.set("/k/a", b"y", version=0)
    raise AssertionError("expected BadVersionError")
except BadVersionError:
    pass
try:
    zk.create("/k/a")
    raise AssertionError("expected NodeExistsError")
except NodeExistsError:
    pass
seq = zk.create("/k/s-", sequence=True)
assert seq.startswith("/k/s-") and len(seq) == len("/k/s-") + 10, seq
assert sorted(zk.get_children("/k")) == sorted(["a", seq.split("/")[-1]])
zk.delete(seq)
try:
    zk.get("/k/missing")
    raise AssertionError("expected NoNodeError")
except NoNodeError:
    pass

# DataWatch and ChildrenWatch.
seen = []
zk.DataWatch("/k/a")(lambda data, stat: seen.append(data))
zk.set("/k/a", b"w1")
wait_for(lambda: seen[-1:] == [b"w1"], "DataWatch to see w1")
kids = []
zk.ChildrenWatch("/k")(lambda c: kids.append(sorted(c)))
zk.create("/k/c1")
wait_for(lambda: kids and kids[-1] == ["a", "c1"], "ChildrenWatch to see c1")

# Transactions: commit and all-or-nothing failure.
t = zk.transaction()
t.create("/k/t1", b"1")
t.check("/k/a", 2)
t.set_data("/k/a", b"t")
res = t.commit()
assert res[0] == "/k/t1" and res[1] is True, res
t = zk.transaction()
t.create("/k/t2", b"1")
t.check("/k/a", 99)
res = t.commit()
assert isinstance(res[0], RolledBackError) and isinstance(res[1], BadVersionError), res
assert zk.exists("/k/t2") is None

# Ephemeral cleanup after stop(), seen from another client.
other = client()
other.create("/k/eph", ephemeral=True)
assert zk.exists("/k/eph").ephemeralOwner == other.client_id[0]
gone = threading.Event()
zk.exists("/k/eph", watch=lambda ev: gone.set())
other.stop()
other.close()
assert gone.wait(10), "no NodeDeleted event for the ephemeral"
assert zk.exists("/k/eph") is None

# Lock recipe: the second client acquires only after the first releases.
c2 = client()
l1, l2 = Lock(zk, "/k/lock", "one"), Lock(c2, "/k/lock", "two")
assert l1.acquire(timeout=10)
got = []
th = threading.Thread(target=lambda: (l2.acquire(timeout=20), got.append(time.time())))
th.start()
time.sleep(1.0)
assert not got, "second client got the lock while the first held it"
assert sorted(l1.contenders()) == ["one", "two"], l1.contenders()
released = time.time()
l1.release()
th.join(20)
assert got and got[0] >= released, "second client never got the lock"
l2.release()
c2.stop()

zk.delete("/k", recursive=True)
zk.stop()
print("OK")
