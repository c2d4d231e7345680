//! Driving `pookeeper_core::Server` from someone else's runtime: tokio owns
//! the sockets, one task owns the server, and the loop follows the core's
//! contract (drain after every input, durability reported after each
//! drain — this example keeps no log on disk, like an in-memory server).
//!
//! cargo run -p pookeeper-tests --example tokio_embedding
//! then point a ZooKeeper client at the printed address.

use pookeeper_core::{Config, ConnId, Input, Output, Server};
use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

enum Event {
    Accepted(tokio::net::TcpStream, std::net::SocketAddr),
    Data(ConnId, Vec<u8>),
    Closed(ConnId),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("embedded server listening on {}", listener.local_addr()?);
    let (events, mut inbox) = mpsc::unbounded_channel();
    let acceptor = events.clone();
    tokio::spawn(async move {
        while let Ok((s, peer)) = listener.accept().await {
            if acceptor.send(Event::Accepted(s, peer)).is_err() {
                break;
            }
        }
    });
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut server = Server::new(Config::default(), Instant::now(), wall).unwrap();
    let mut writers: HashMap<ConnId, mpsc::UnboundedSender<Option<bytes::Bytes>>> = HashMap::new();
    loop {
        let deadline = server.poll_timeout();
        let event = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), inbox.recv())
                .await
                .ok()
                .flatten(),
            None => inbox.recv().await,
        };
        let now = Instant::now();
        let mut fed = None;
        match event {
            Some(Event::Accepted(stream, peer)) => {
                let id = server.accept(now, Some(peer));
                let (mut rd, mut wr) = stream.into_split();
                let (tx, mut rx) = mpsc::unbounded_channel::<Option<bytes::Bytes>>();
                writers.insert(id, tx);
                let ev = events.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0; 65536];
                    loop {
                        match rd.read(&mut buf).await {
                            Ok(0) | Err(_) => {
                                let _ = ev.send(Event::Closed(id));
                                break;
                            }
                            Ok(n) => {
                                let _ = ev.send(Event::Data(id, buf[..n].to_vec()));
                            }
                        }
                    }
                });
                tokio::spawn(async move {
                    while let Some(Some(b)) = rx.recv().await {
                        if wr.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                    let _ = wr.shutdown().await;
                });
            }
            Some(Event::Data(id, bytes)) => {
                fed = Some(id);
                server.handle(
                    now,
                    Input::Received {
                        conn: id,
                        bytes: &bytes,
                    },
                )
            }
            Some(Event::Closed(id)) => {
                writers.remove(&id);
                server.handle(now, Input::PeerClosed { conn: id });
            }
            None => server.handle(now, Input::Tick),
        }
        // The contract: drain after every input; report durability (here at
        // once, there is no disk) and drain again.
        loop {
            let mut durable = None;
            while let Some(out) = server.poll_output() {
                match out {
                    Output::Transmit { conn, data } => {
                        if let Some(w) = writers.get(&conn) {
                            let _ = w.send(Some(data));
                        }
                    }
                    Output::Close { conn, .. } => {
                        if let Some(w) = writers.remove(&conn) {
                            let _ = w.send(None);
                        }
                    }
                    Output::Append { zxid, .. } => durable = Some(zxid),
                }
            }
            match durable {
                Some(zxid) => server.handle(now, Input::Durable { zxid }),
                // One input yields a bounded amount of replies; requests
                // past that wait in the core until fed an empty input (a
                // runtime with backpressure does so once its queue drains).
                None => match fed {
                    Some(id) if server.has_pending_input(id) => server.handle(
                        now,
                        Input::Received {
                            conn: id,
                            bytes: &[],
                        },
                    ),
                    _ => break,
                },
            }
        }
    }
}
