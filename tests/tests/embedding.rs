//! Embedding: an in-process server started inside a test suite (like
//! Curator's TestingServer), used by a real client, then stopped.

use pookeeper_mio::TestingServer;
use std::time::Duration;
use zookeeper_client as zk;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testing_server_in_process() {
    let server = TestingServer::start().expect("start");
    let client = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(6))
        .connect(&server.connect_string())
        .await
        .expect("connect");
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client.create("/embedded", b"yes", &opts).await.unwrap();
    assert_eq!(client.get_data("/embedded").await.unwrap().0, b"yes");
    drop(client);
    let addr = server.addr();
    // Two servers side by side do not interfere.
    let other = TestingServer::start().expect("second server");
    assert_ne!(other.addr(), addr);
    server.stop().expect("clean stop");
    // The port is closed once stopped.
    assert!(std::net::TcpStream::connect(addr).is_err());
    drop(other);
}

/// The tokio embedding example (`tests/examples/tokio_embedding.rs`),
/// built and run as a process: a real client creates, watches and reads
/// through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_embedding_example_serves_a_real_client() {
    use std::io::BufRead;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "pookeeper-tests",
            "--example",
            "tokio_embedding",
        ])
        .current_dir(pookeeper_tests::workspace())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the example failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| pookeeper_tests::workspace().join("target"));
    let mut child = std::process::Command::new(target.join("debug/examples/tokio_embedding"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the example");
    // Killed whatever happens below.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the example prints its address");
    let _guard = Kill(child);
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .expect("an address")
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "printed {line:?}");
    let client = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(6))
        .connect(&addr)
        .await
        .expect("connect");
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client.create("/tokio", b"one", &opts).await.unwrap();
    let (data, stat, watcher) = client.get_and_watch_data("/tokio").await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"one"[..], 0));
    client.set_data("/tokio", b"two", None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watcher.changed())
        .await
        .expect("the data watch fires");
    assert_eq!(event.event_type, zk::EventType::NodeDataChanged);
    assert_eq!(client.get_data("/tokio").await.unwrap().0, b"two");
}
