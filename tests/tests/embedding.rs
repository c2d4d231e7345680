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
