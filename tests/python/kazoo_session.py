"""Sessions as kazoo sees them. Usage: kazoo_session.py HOST:PORT MODE [ARGS]
MODE=hold NAME [TIMEOUT]: create an ephemeral /sess/NAME (session timeout
  TIMEOUT s, default 4), print
  "SESSION <id hex> <password hex>", then hang (the test kills this process:
  the client vanishes without closing its session).
MODE=check-expired NAME: /sess/NAME exists, then disappears (session expiry).
MODE=resume NAME SID PASSWD: reconnect to that session with its id and
  password; the session and its ephemeral are still there; a wrong password
  is refused."""
import sys
import time

from kazoo.client import KazooClient

HP, MODE = sys.argv[1], sys.argv[2]

if MODE == "hold":
    zk = KazooClient(hosts=HP, timeout=float(sys.argv[4]) if len(sys.argv) > 4 else 4)
    zk.start(timeout=10)
    zk.create("/sess/" + sys.argv[3], ephemeral=True, makepath=True)
    sid, passwd = zk.client_id
    print("SESSION %x %s" % (sid, passwd.hex()), flush=True)
    time.sleep(3600)
elif MODE == "check-expired":
    path = "/sess/" + sys.argv[3]
    zk = KazooClient(hosts=HP)
    zk.start(timeout=10)
    assert zk.exists(path) is not None, "ephemeral missing before expiry"
    deadline = time.time() + 30
    while zk.exists(path) is not None:
        assert time.time() < deadline, "ephemeral of a vanished client never expired"
        time.sleep(0.2)
    zk.stop()
    print("OK")
elif MODE == "resume":
    path, sid, passwd = "/sess/" + sys.argv[3], int(sys.argv[4], 16), bytes.fromhex(sys.argv[5])
    # A wrong password is refused as an expired session: kazoo then starts
    # a new session, so it must not end up with the old id.
    bad = KazooClient(hosts=HP, client_id=(sid, b"\x00" * 16), timeout=4)
    try:
        bad.start(timeout=10)
        assert bad.client_id is None or bad.client_id[0] != sid, "wrong password accepted"
    except AssertionError:
        raise
    except Exception:
        pass
    finally:
        bad.stop()
    b = KazooClient(hosts=HP, client_id=(sid, passwd), timeout=20)
    b.start(timeout=10)
    assert b.client_id[0] == sid, (hex(b.client_id[0]), hex(sid))
    st = b.exists(path)
    assert st is not None and st.ephemeralOwner == sid, st
    b.stop()
    print("OK")
else:
    raise SystemExit("unknown mode " + MODE)
