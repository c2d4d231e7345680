"""Records seed corpora from real clients. Starts nothing itself: run a
pookeeper on PORT, then `python3 fuzz/record_corpus.py PORT`. It listens on
PORT+1, forwards to PORT, and saves what each client connection sent as
fuzz/corpus/stream/seed-<client>-<n>, and each request frame body as
fuzz/corpus/jute/seed-<client>-<n>-<k>. Then it drives kazoo, zkCli.sh and
cli_mt through the proxy."""
import os
import socket
import subprocess
import sys
import threading

PORT = int(sys.argv[1])
PROXY = PORT + 1
HERE = os.path.dirname(os.path.abspath(__file__))
streams = []


def pipe(src, dst, record):
    try:
        while True:
            d = src.recv(65536)
            if not d:
                break
            if record is not None:
                record.extend(d)
            dst.sendall(d)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listener):
    while True:
        c, _ = listener.accept()
        up = socket.create_connection(("127.0.0.1", PORT))
        rec = bytearray()
        streams.append(rec)
        threading.Thread(target=pipe, args=(c, up, rec), daemon=True).start()
        threading.Thread(target=pipe, args=(up, c, None), daemon=True).start()


def save(tag):
    os.makedirs(os.path.join(HERE, "corpus/stream"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "corpus/jute"), exist_ok=True)
    for n, s in enumerate(streams):
        if not s:
            continue
        with open(os.path.join(HERE, "corpus/stream/seed-%s-%d" % (tag, n)), "wb") as f:
            f.write(bytes(s))
        pos, k = 0, 0
        while pos + 4 <= len(s) and k < 12:
            ln = int.from_bytes(s[pos:pos + 4], "big")
            body = bytes(s[pos + 4:pos + 4 + ln])
            # Request frames: skip the 8-byte header to get the record.
            rec = body[8:] if k > 0 else body
            with open(os.path.join(HERE, "corpus/jute/seed-%s-%d-%d" % (tag, n, k)), "wb") as f:
                f.write(rec)
            pos += 4 + ln
            k += 1
    streams.clear()


l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", PROXY))
l.listen(64)
threading.Thread(target=serve, args=(l,), daemon=True).start()
hp = "127.0.0.1:%d" % PROXY
root = os.path.dirname(HERE)
subprocess.run([sys.executable, os.path.join(root, "tests/python/kazoo_basics.py"), hp], timeout=120, check=True)
save("kazoo")
script = "create /a hello\nget -s /a\nset /a x\nls /\ncreate -e /e e\ncreate -s /s- s\ndelete /a\nsetquota -n 3 /s-0000000002\nquit\n"
subprocess.run(["/usr/share/zookeeper/bin/zkCli.sh", "-server", hp], input=script.encode(), timeout=60,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
save("zkcli")
print("recorded into", os.path.join(HERE, "corpus"))
