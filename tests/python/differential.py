"""Differential test: one scripted sequence of raw ZooKeeper requests (our own
jute client, independent of the server's code) run against two servers;
every reply (error code, body bytes, notifications) is recorded and compared
after normalising zxids (numbered by first appearance), wall-clock times and
session ids.

Usage: differential.py REFERENCE_PORT CANDIDATE_PORT
Exit 0 when the transcripts agree, except for the documented deliberate
differences listed in KNOWN."""
import re
import socket
import struct
import sys
import time
class C:
    def __init__(s, port, timeout=30000, sid=0, pw=b'\0'*16, ro=True):
        s.s = socket.create_connection(('127.0.0.1', port)); s.s.settimeout(3); s.xid = 0; s.buf=b''
        body = struct.pack('>iqiq', 0, 0, timeout, sid) + struct.pack('>i', len(pw)) + pw + (b'\0' if ro else b'')
        s.s.sendall(struct.pack('>i', len(body)) + body)
        r = s.frame(); s.connect = (len(r),) + struct.unpack('>iiq', r[:16])
        s.pw = r[20:36]
    def frame(s):
        while True:
            if len(s.buf) >= 4:
                n = struct.unpack('>i', s.buf[:4])[0]
                if len(s.buf) >= 4+n:
                    f = s.buf[4:4+n]; s.buf = s.buf[4+n:]; return f
            try: d = s.s.recv(65536)
            except socket.timeout: return None
            if not d: return b'<EOF>'
            s.buf += d
    def call(s, op, body=b'', xid=None):
        if xid is None: s.xid += 1; xid = s.xid
        s.s.sendall(struct.pack('>iii', len(body)+8, xid, op) + body)
        evs = []
        while True:
            f = s.frame()
            if f is None or f == b'<EOF>': return ('NOREPLY' if f is None else 'EOF', evs)
            x, z, e = struct.unpack('>iqi', f[:16])
            if x == -1:
                t, st, pl = struct.unpack('>iii', f[16:28]); evs.append((t, f[28:28+pl].decode())); continue
            return ((x, z, e, f[16:].hex()), evs)
def st(p): return struct.pack('>i', len(p.encode())) + p.encode()
def buf(b): return struct.pack('>i', len(b)) + b
OPEN = struct.pack('>i', 1) + struct.pack('>i', 31) + st('world') + st('anyone')
def create(p, d=b'', f=0, acl=OPEN): return st(p) + buf(d) + acl + struct.pack('>i', f)
def pw(p, w=False): return st(p) + (b'\1' if w else b'\0')
def pv(p, v): return st(p) + struct.pack('>i', v)
def sd(p, d, v): return st(p) + buf(d) + struct.pack('>i', v)
def multi(ops): return b''.join(struct.pack('>i?i', t, False, -1) + b for t, b in ops) + struct.pack('>i?i', -1, True, -1)
def ttl(p, f, t): return create(p, b'', f) + struct.pack('>q', t)


# Deliberate differences from Apache ZooKeeper 3.8.0 (the Debian package):
KNOWN = {
    # ZooKeeper 3.9 (ZOOKEEPER-4026) answers create2 inside a multi with its
    # Stat; 3.8.0 answers it like a plain create. We follow 3.9.
    "multi ok",
    # 3.9's WatcherType Persistent (4) and PersistentRecursive (5): 3.8.0
    # answers MARSHALLINGERROR for them; and 3.9 no longer lets a recursive
    # watch count as a Children watch.
    "checkwatches", "checkwatches none", "removewatches", "removewatches none",
    # 3.9 (ZOOKEEPER-4466) keeps a persistent and a persistent-recursive watch
    # on the same path side by side; in 3.8.0 the second replaces the first.
    "b events 2",
    # ZOOKEEPER-2590 (3.9.2, 3.8.4): exists() on a node needs READ; 3.8.0
    # answers the Stat.
    "b exists noauth",
}

def session_pair(port):
    """Two clients and a recorder that masks their session ids and times."""
    out = []
    a = C(port); b = C(port)
    sids = ['%016x' % (c.connect[3] & (2**64-1)) for c in (a, b)]
    def rec(name, r):
        r = repr(r)
        for i, sid in enumerate(sids): r = r.replace(sid, 'SID%d' % i)
        out.append((name, mask_times(r)))
    return a, b, out, rec


def script(port):
    a, b, out, rec = session_pair(port)
    out.append(('connect', a.connect[0], a.connect[2]))
    rec('create /a', a.call(1, create('/a', b'hello')))
    rec('create2 /a/b', a.call(15, create('/a/b', b'x')))
    rec('create dup', a.call(1, create('/a')))
    rec('create nonode', a.call(1, create('/x/y')))
    rec('create rel', a.call(1, create('x')))
    rec('create trailing', a.call(1, create('/a/')))
    rec('create trailing noparent', a.call(1, create('/q/')))
    rec('create seq P/', a.call(1, create('/a/', b'', 2)))
    rec('create bad flags', a.call(1, create('/f', b'', 9)))
    rec('create null acl', a.call(1, st('/n') + buf(b'') + struct.pack('>i', -1) + struct.pack('>i', 0)))
    rec('create empty acl', a.call(1, st('/n') + buf(b'') + struct.pack('>i', 0) + struct.pack('>i', 0)))
    rec('create auth acl', a.call(1, create('/n', b'', 0, struct.pack('>i', 1) + struct.pack('>i', 31) + st('auth') + st(''))))
    rec('create world other', a.call(1, create('/n', b'', 0, struct.pack('>i', 1) + struct.pack('>i', 31) + st('world') + st('x'))))
    rec('create ip acl', a.call(1, create('/ipn', b'', 0, struct.pack('>i', 1) + struct.pack('>i', 31) + st('ip') + st('10.0.0.0/8'))))
    rec('get ipn', a.call(4, pw('/ipn')))
    rec('getacl ipn', a.call(6, st('/ipn')))
    rec('create eph', a.call(1, create('/e', b'', 1)))
    rec('create under eph', a.call(1, create('/e/c')))
    rec('exists w b', b.call(3, pw('/a', True)))
    rec('exists missing w', b.call(3, pw('/zz', True)))
    rec('exists nul', b.call(3, pw('/z\0z')))
    rec('exists bad', b.call(3, pw('/z/')))
    rec('get nul', b.call(4, pw('/z\0z')))
    rec('getdata w', b.call(4, pw('/a', True)))
    rec('getchildren w', b.call(8, pw('/a', True)))
    rec('getchildren2 root', b.call(12, pw('/')))
    rec('set', a.call(5, sd('/a', b'new', 0)))
    rec('set badv', a.call(5, sd('/a', b'new', 0)))
    rec('set badpath', a.call(5, sd('/a/', b'new', -1)))
    rec('set missing', a.call(5, sd('/nope', b'new', -1)))
    rec('b events after set', b.call(11, b'', -2))
    rec('delete notempty', a.call(2, pv('/a', -1)))
    rec('delete badv', a.call(2, pv('/a/b', 5)))
    rec('delete rel', a.call(2, pv('a', -1)))
    rec('delete zookeeper', a.call(2, pv('/zookeeper', -1)))
    rec('delete root', a.call(2, pv('/', -1)))
    rec('delete ok', a.call(2, pv('/a/b', 0)))
    rec('sync', a.call(9, st('/whatever/')))
    # A lone check (not in a multi) is left out: 3.8.0 never answers it (a
    # NullPointerException on the server), while it still uses a zxid; we
    # answer it with the node's Stat (see core's server tests).
    rec('check alone bad', a.call(13, pv('/a', 7)))
    rec('multi ok', a.call(14, multi([(1, create('/m')), (15, create('/m/c')), (5, sd('/m', b'v', 0)), (13, pv('/m', 1)), (2, pv('/m/c', 0))])))
    rec('multi fail', a.call(14, multi([(1, create('/m2')), (13, pv('/m', 7)), (1, create('/m3'))])))
    rec('multi empty', a.call(14, multi([])))
    rec('multiread', a.call(22, multi([(4, st('/a')), (8, st('/a')), (4, st('/nope'))])))
    rec('getacl', a.call(6, st('/a')))
    rec('getacl config', a.call(6, st('/zookeeper/config')))
    rec('get config', a.call(4, pw('/zookeeper/config')))
    rec('get quota', a.call(4, pw('/zookeeper/quota')))
    rec('getallchildren /', a.call(104, st('/')))
    rec('getallchildren missing', a.call(104, st('/nope')))
    rec('getephemerals', a.call(103, st('/')))
    rec('whoami', a.call(107))
    rec('addwatch', b.call(106, st('/m') + struct.pack('>i', 1)))
    rec('checkwatches', b.call(17, st('/m') + struct.pack('>i', 5)))
    rec('checkwatches none', b.call(17, st('/m') + struct.pack('>i', 1)))
    rec('set m', a.call(5, sd('/m', b'x', -1)))
    rec('removewatches', b.call(18, st('/m') + struct.pack('>i', 5)))
    rec('removewatches none', b.call(18, st('/m') + struct.pack('>i', 5)))
    rec('ttl', a.call(21, ttl('/t', 5, 10000)))
    pass
    rec('ttl zero', a.call(21, ttl('/t2', 5, 0)))
    rec('create ttl flags', a.call(1, create('/t3', b'', 5)))
    rec('container', a.call(19, create('/c', b'', 4)))
    rec('create flags4', a.call(1, create('/c4', b'', 4)))
    rec('exists c4', a.call(3, pw('/c4')))
    rec('auth digest', a.call(100, struct.pack('>i', 0) + st('digest') + buf(b'bob:secret'), -4))
    rec('whoami2', a.call(107))
    rec('setacl', a.call(7, st('/a') + struct.pack('>i', 1) + struct.pack('>i', 31) + st('digest') + st('bob:fyVmFCwVbTJYrznoSu1koqYEYF0=') + struct.pack('>i', 0)))
    rec('setacl badv', a.call(7, st('/a') + OPEN + struct.pack('>i', 0)))
    rec('b get noauth', b.call(4, pw('/a')))
    rec('b getacl masked', b.call(6, st('/a')))
    rec('b exists noauth', b.call(3, pw('/a')))
    rec('b set noauth', b.call(5, sd('/a', b'z', -1)))
    rec('b create under noauth', b.call(1, create('/a/k')))
    rec('a get auth', a.call(4, pw('/a')))
    rec('sasl', a.call(102, buf(b'')))
    rec('reconfig', a.call(16, st('') + st('') + st('') + struct.pack('>q', -1)))
    rec('deleteContainer from a client', a.call(20, b'/c'))
    rec('close a', a.call(-11))
    rec('b events', b.call(11, b'', -2))
    rec('unknown op', b.call(99))
    rec('after unknown', b.call(11, b'', -2))
    return out


def nullbuf(): return struct.pack('>i', -1)
def acl1(perms, scheme, ident): return struct.pack('>ii', 1, perms) + st(scheme) + st(ident)


def script2(port):
    """Null data, path and ACL validation, odd create flags, multi edge
    cases, persistent watches, setWatches."""
    a, b, out, rec = session_pair(port)
    rec('create null', a.call(1, st('/nd') + nullbuf() + OPEN + struct.pack('>i', 0)))
    rec('get null', a.call(4, pw('/nd')))
    rec('multi create null', a.call(14, multi([(1, st('/nd2') + nullbuf() + OPEN + struct.pack('>i', 0)), (5, st('/nd') + nullbuf() + struct.pack('>i', -1))])))
    rec('multiread null', a.call(22, multi([(4, st('/nd2')), (4, st('/nd'))])))
    rec('seq under root', a.call(1, create('/', b'', 2)))
    rec('seq under root2', a.call(1, create('/s', b'', 2)))
    for p in ['/a/./b', '/a/../b', '/.', '/..', '/a/.', '//', '/a//b', '/\u0001', '/\u007f', '/\u0085', '/\ud7ff', '/\ue000', '/\ufff0', '/é', '/a b', '/zookeeper/x', '/zookeeper/quota/x', '/zookeeper/config/x']:
        try:
            rec('create %r' % p, a.call(1, create(p)))
        except Exception as e:
            rec('create %r' % p, str(e))
    rec('ls zookeeper', a.call(8, pw('/zookeeper')))
    rec('delete zk/x', a.call(2, pv('/zookeeper/x', -1)))
    rec('set zk/config', a.call(5, sd('/zookeeper/config', b'x', -1)))
    rec('set zk', a.call(5, sd('/zookeeper', b'x', -1)))
    rec('set zk/quota', a.call(5, sd('/zookeeper/quota', b'x', -1)))
    rec('setacl zk/config', a.call(7, st('/zookeeper/config') + OPEN + struct.pack('>i', -1)))
    rec('setacl root', a.call(7, st('/') + OPEN + struct.pack('>i', -1)))
    rec('set root', a.call(5, sd('/', b'r', -1)))
    rec('get root', a.call(4, pw('/')))
    rec('acl perms 0', a.call(1, create('/p0', b'', 0, acl1(0, 'world', 'anyone'))))
    rec('get p0', a.call(4, pw('/p0')))
    rec('acl perms 99', a.call(1, create('/p99', b'', 0, acl1(99, 'world', 'anyone'))))
    rec('getacl p99', a.call(6, st('/p99')))
    rec('acl two', a.call(1, create('/p2', b'', 0, struct.pack('>i', 2) + struct.pack('>i', 1) + st('world') + st('anyone') + struct.pack('>i', 2) + st('world') + st('anyone'))))
    rec('getacl p2', a.call(6, st('/p2')))
    rec('acl digest bad', a.call(1, create('/pd', b'', 0, acl1(31, 'digest', 'nocolon'))))
    rec('acl ip bad', a.call(1, create('/pi', b'', 0, acl1(31, 'ip', '1.2.3.4/33'))))
    rec('acl ip v6', a.call(1, create('/pi6', b'', 0, acl1(31, 'ip', '::1/128'))))
    rec('acl unknown scheme', a.call(1, create('/pu', b'', 0, acl1(31, 'foo', 'bar'))))
    rec('acl auth no auth', a.call(1, create('/pa', b'', 0, acl1(31, 'auth', ''))))
    rec('ttl big', a.call(21, ttl('/tb', 5, 2**62)))
    rec('ttl neg', a.call(21, ttl('/tn', 5, -5)))
    rec('ttl flag6', a.call(21, ttl('/t6', 6, 1000)))
    rec('ttl flag0', a.call(21, ttl('/t0', 0, 1000)))
    rec('ttl flag2', a.call(21, ttl('/t2', 2, 1000)))
    rec('container seq', a.call(19, create('/cs', b'', 2)))
    rec('container flag0', a.call(19, create('/c0', b'', 0)))
    rec('create flag 3 eseq', a.call(1, create('/es', b'', 3)))
    rec('create2 container flag', a.call(15, create('/c15', b'', 4)))
    rec('create flag -1', a.call(1, create('/fm', b'', -1)))
    rec('create flag 7', a.call(1, create('/f7', b'', 7)))
    rec('ephemeral under container', a.call(1, create('/c0/e', b'', 1)))
    rec('multi check missing', a.call(14, multi([(13, pv('/nope', -1))])))
    rec('multi delete then create', a.call(14, multi([(1, create('/mm')), (2, pv('/mm', -1)), (1, create('/mm'))])))
    rec('multi bad op', a.call(14, multi([(4, pw('/mm'))])))
    rec('multiread write op', a.call(22, multi([(1, create('/zz'))])))
    rec('multi seq', a.call(14, multi([(1, create('/ms', b'', 2)), (1, create('/ms', b'', 2))])))
    rec('multi sync op', a.call(14, multi([(9, st('/'))])))
    rec('exists w missing', b.call(3, pw('/wm', True)))
    rec('getdata w missing', b.call(4, pw('/wm', True)))
    rec('getchildren w missing', b.call(8, pw('/wm', True)))
    rec('create wm', a.call(1, create('/wm')))
    rec('b events 1', b.call(11, b'', -2))
    rec('addwatch recursive', b.call(106, st('/wm') + struct.pack('>i', 1)))
    rec('addwatch persistent', b.call(106, st('/wm') + struct.pack('>i', 0)))
    rec('addwatch bad mode', b.call(106, st('/wm') + struct.pack('>i', 7)))
    rec('create wm/c', a.call(1, create('/wm/c')))
    rec('create wm/c/d', a.call(1, create('/wm/c/d')))
    rec('set wm/c/d', a.call(5, sd('/wm/c/d', b'1', -1)))
    rec('delete wm/c/d', a.call(2, pv('/wm/c/d', -1)))
    rec('b events 2', b.call(11, b'', -2))
    rec('getephemerals /e', a.call(103, st('/e')))
    rec('getephemerals prefix', a.call(103, st('/es')))
    rec('sync missing', a.call(9, st('/nothere')))
    rec('sync rel', a.call(9, st('rel')))
    rec('exists empty path', a.call(3, pw('')))
    rec('get empty path', a.call(4, pw('')))
    rec('setwatches', b.call(101, struct.pack('>q', 1) + struct.pack('>i', 1) + st('/wm') + struct.pack('>i', 1) + st('/gone') + struct.pack('>i', 1) + st('/wm'), -8))
    rec('b events 3', b.call(11, b'', -2))
    rec('setwatches2', b.call(105, struct.pack('>q', 1) + struct.pack('>i', 1) + st('/wm') + struct.pack('>i', 0) + struct.pack('>i', 1) + st('/wm/c') + struct.pack('>i', 1) + st('/') + struct.pack('>i', 1) + st('/wm'), -8))
    rec('b events 4', b.call(11, b'', -2))
    rec('mk', a.call(1, create('/x1')))
    rec('w [getData]', a.call(14, multi([(4, pw('/x1'))])))
    rec('after2', a.call(3, pw('/x1')))
    rec('w [create, getData]', a.call(14, multi([(1, create('/x2')), (4, pw('/x1'))])))
    rec('after2', a.call(3, pw('/x2')))
    rec('w [getData, create]', a.call(14, multi([(4, pw('/x1')), (1, create('/x3'))])))
    rec('after2', a.call(3, pw('/x3')))
    rec('w [getChildren]', a.call(14, multi([(8, pw('/x1'))])))
    rec('r [create]', a.call(22, multi([(1, create('/x4'))])))
    rec('r [create, delete]', a.call(22, multi([(1, create('/x4')), (2, pv('/x1', -1))])))
    rec('r [getData, create]', a.call(22, multi([(4, pw('/x1')), (1, create('/x4'))])))
    rec('r [create, getData]', a.call(22, multi([(1, create('/x4')), (4, pw('/x1'))])))
    rec('r [check]', a.call(22, multi([(13, pv('/x1', -1))])))
    rec('after2', a.call(3, pw('/x4')))
    rec('w [bad type 99]', a.call(14, multi([(99, pw('/x1'))])))
    rec('r [bad type 99]', a.call(22, multi([(99, pw('/x1'))])))
    rec('w [create bad flags 9]', a.call(14, multi([(1, create('/x5', b'', 9))])))
    rec('r [getData bad flags]', a.call(22, multi([(4, pw('/x1')), (1, create('/x5', b'', 9))])))
    rec('w trunc', a.call(14, struct.pack('>i?i', 1, False, -1) + st('/x6')))
    rec('alive after trunc', a.call(3, pw('/x1')))
    rec('addauth bad scheme', a.call(100, struct.pack('>i', 0) + st('foo') + buf(b'x'), -4))
    rec('after bad auth', a.call(11, b'', -2))
    return out


BOB = acl1(31, 'digest', 'bob:fyVmFCwVbTJYrznoSu1koqYEYF0=')  # bob:secret


def script3(port):
    """Watch events are delivered only with READ on the node (CVE-2024-23944,
    fixed in 3.8.4/3.9.2 and in Debian's 3.8.0-11+deb12u2): an owner (digest
    bob) and unauthenticated watchers with one-shot (b), persistent (c) and
    persistent-recursive (d) watches; then negative ACL vector counts."""
    a, b, out, rec = session_pair(port)
    c = C(port); d = C(port)
    def events(tag):
        for name, x in (('b', b), ('c', c), ('d', d)):
            rec('acl events %s %s' % (tag, name), x.call(11, b'', -2))
    rec('acl auth bob', a.call(100, struct.pack('>i', 0) + st('digest') + buf(b'bob:secret'), -4))
    for p in ['/w', '/w/sec', '/w/pub']:
        rec('acl create ' + p, a.call(1, create(p)))
    rec('acl b exists sec', b.call(3, pw('/w/sec', True)))
    rec('acl b get sec', b.call(4, pw('/w/sec', True)))
    rec('acl b ls sec', b.call(8, pw('/w/sec', True)))
    rec('acl b exists new', b.call(3, pw('/w/sec/new', True)))
    rec('acl b exists pub', b.call(3, pw('/w/pub', True)))
    rec('acl c persistent', c.call(106, st('/w/sec') + struct.pack('>i', 0)))
    rec('acl d recursive', d.call(106, st('/w') + struct.pack('>i', 1)))
    rec('acl setacl sec bob', a.call(7, st('/w/sec') + BOB + struct.pack('>i', -1)))
    rec('acl set sec', a.call(5, sd('/w/sec', b'1', -1)))
    rec('acl create new', a.call(1, create('/w/sec/new', b'', 0, BOB)))
    rec('acl set pub', a.call(5, sd('/w/pub', b'1', -1)))
    events(1)
    rec('acl setacl sec open', a.call(7, st('/w/sec') + OPEN + struct.pack('>i', -1)))
    rec('acl set sec 2', a.call(5, sd('/w/sec', b'2', -1)))
    rec('acl create o', a.call(1, create('/w/sec/o')))
    rec('acl delete new', a.call(2, pv('/w/sec/new', -1)))
    events(2)
    rec('acl setacl sec bob 2', a.call(7, st('/w/sec') + BOB + struct.pack('>i', -1)))
    rec('acl delete o', a.call(2, pv('/w/sec/o', -1)))
    rec('acl set sec 3', a.call(5, sd('/w/sec', b'3', -1)))
    events(3)
    # setWatches' catch-up events go out without an ACL check.
    rec('acl b setwatches', b.call(101, struct.pack('>q', 1) + struct.pack('>i', 1) + st('/w/sec') + struct.pack('>i', 0) + struct.pack('>i', 1) + st('/w/sec'), -8))
    rec('acl create p2', a.call(1, create('/w/sec/p2', b'', 0, BOB)))
    rec('acl setacl p2 open', a.call(7, st('/w/sec/p2') + OPEN + struct.pack('>i', -1)))
    rec('acl delete p2', a.call(2, pv('/w/sec/p2', -1)))
    rec('acl delete sec', a.call(2, pv('/w/sec', -1)))
    events(4)
    # An ACL vector count below -1 reads as an empty vector (jute's
    # BinaryIndex), then fails as INVALIDACL; -1 is a null vector.
    for n in (-1, -2, -7, -2**31):
        body = st('/an') + buf(b'') + struct.pack('>i', n) + struct.pack('>i', 0)
        rec('acl count %d create' % n, a.call(1, body))
        rec('acl count %d create2' % n, a.call(15, body))
        rec('acl count %d multi' % n, a.call(14, multi([(1, body)])))
        rec('acl count %d setacl' % n, a.call(7, st('/w') + struct.pack('>ii', n, -1)))
    rec('acl alive', a.call(3, pw('/w')))
    return out


def mask_times(text):
    """Replaces 8-byte big-endian values within a minute of now (ctime and
    mtime, in ms since the epoch) by TIME, wherever they sit in the hex."""
    now = int(time.time() * 1000)
    lo, hi = now - 600_000, now + 600_000

    def fix(h):
        out, i = [], 0
        while i < len(h):
            chunk = h[i:i + 16]
            if len(chunk) == 16 and i % 2 == 0 and all(c in "0123456789abcdef" for c in chunk) \
                    and lo <= int(chunk, 16) <= hi:
                out.append("TIME")
                i += 16
            else:
                out.append(h[i])
                i += 1
        return "".join(out)

    return re.sub(r"'([0-9a-f]*)'", lambda m: "'%s'" % fix(m.group(1)), text)


ZXID = re.compile(r"\((-?\d+), (\d+), (-?\d+), '")


def normalise(transcript):
    """Numbers reply zxids by order of first appearance (times and session
    ids were masked when recorded)."""
    zxids = {}

    def number(m):
        v = int(m.group(2))
        if v > 0:
            v = zxids.setdefault(v, "Z%d" % len(zxids))
        return "(%s, %s, %s, '" % (m.group(1), v, m.group(3))

    return [(e[0], tuple(ZXID.sub(number, x) if isinstance(x, str) else x for x in e[1:]))
            for e in transcript]


def main():
    ref, cand = (normalise(script(int(p)) + script2(int(p)) + script3(int(p))) for p in sys.argv[1:3])
    bad = 0
    for (name, *x), (_, *y) in zip(ref, cand):
        if x != y and name not in KNOWN:
            bad += 1
            print("DIFF %s\n  reference: %s\n  candidate: %s" % (name, x, y))
    if len(ref) != len(cand):
        bad += 1
        print("transcripts differ in length: %d vs %d" % (len(ref), len(cand)))
    print("%d requests compared, %d differences" % (len(ref), bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
