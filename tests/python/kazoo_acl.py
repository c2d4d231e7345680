"""kazoo: ACLs and authentication. Usage: kazoo_acl.py HOST:PORT.
Digest ACLs, the auth scheme, world read-only, setACL with aversion,
getACL masking, NoAuth, InvalidACL, failed auth, whoami-like ids."""
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import (AuthFailedError, BadVersionError, InvalidACLError,
                              NoAuthError)
from kazoo.security import (ACL, Id, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Permissions,
                            make_digest_acl)

HP = sys.argv[1]


def client(auth=None):
    c = KazooClient(hosts=HP, timeout=10, auth_data=auth)
    c.start(timeout=10)
    return c


alice = client([("digest", "alice:secret")])
bob = client([("digest", "bob:other")])
anon = client()

acl = make_digest_acl("alice", "secret", all=True)
alice.create("/acl", b"")
alice.create("/acl/alice", b"mine", acl=[acl])
assert alice.get("/acl/alice")[0] == b"mine"
for c in (bob, anon):
    try:
        c.get("/acl/alice")
        raise AssertionError("read without permission")
    except NoAuthError:
        pass
    try:
        c.set("/acl/alice", b"x")
        raise AssertionError("write without permission")
    except NoAuthError:
        pass

# The "auth" scheme expands to the creator's ids; without auth it is invalid.
alice.create("/acl/auth", b"", acl=[ACL(Permissions.ALL, Id("auth", ""))])
got, stat = alice.get_acls("/acl/auth")
assert [(a.id.scheme, a.id.id.split(":")[0]) for a in got] == [("digest", "alice")], got
try:
    anon.create("/acl/bad", b"", acl=[ACL(Permissions.ALL, Id("auth", ""))])
    raise AssertionError("auth ACL without auth accepted")
except InvalidACLError:
    pass

# World read-only; setACL checks aversion.
anon.create("/acl/ro", b"r", acl=READ_ACL_UNSAFE)
assert bob.get("/acl/ro")[0] == b"r"
try:
    bob.set("/acl/ro", b"w")
    raise AssertionError("write to read-only node")
except NoAuthError:
    pass
anon.create("/acl/open", b"", acl=OPEN_ACL_UNSAFE)
st = anon.set_acls("/acl/open", [acl], version=0)
assert st.aversion == 1, st
try:
    alice.set_acls("/acl/open", OPEN_ACL_UNSAFE, version=0)
    raise AssertionError("stale aversion accepted")
except BadVersionError:
    pass
# Without ADMIN, getACL is refused; alice (ADMIN) sees the hash.
try:
    bob.get_acls("/acl/open")
    raise AssertionError("getACL without READ or ADMIN")
except NoAuthError:
    pass
got, _ = alice.get_acls("/acl/open")
assert got[0].id.id.startswith("alice:") and got[0].id.id != "alice:x", got

# An unknown auth scheme fails authentication.
try:
    c = KazooClient(hosts=HP, timeout=10, auth_data=[("kerberos", "x")])
    c.start(timeout=5)
    c.get("/")
    raise AssertionError("unknown scheme accepted")
except (AuthFailedError, Exception):
    pass

for c in (alice, bob, anon):
    c.stop()
print("OK")
