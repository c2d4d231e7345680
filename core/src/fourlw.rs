//! The four-letter words: plain-text admin commands sent raw (no frame) on
//! the client port, answered with text, after which the connection closes.
//! Output follows Apache ZooKeeper's line shapes so monitoring scripts that
//! parse ZooKeeper's answers parse ours.

use crate::Server;
use std::fmt::Write as _;

/// Every word ZooKeeper knows (`FourLetterCommands`), recognised even when
/// not whitelisted (the answer then says so).
const KNOWN: [&str; 20] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srst",
    "srvr", "stat", "stmk", "wchc", "wchp", "wchs", "rcvr", "csnp",
];

/// ZooKeeper 3.8 standalone `mntr` counters that stay 0 here (no
/// throttling, learners, TLS or response caches).
const ZERO_COUNTERS: [&str; 44] = [
    "watch_bytes",
    "outstanding_changes_removed",
    "throttled_ops",
    "stale_requests_dropped",
    "large_requests_rejected",
    "insecure_admin_count",
    "cnxn_closed_without_zk_server_running",
    "sessionless_connections_expired",
    "looking_count",
    "dead_watchers_queued",
    "stale_requests",
    "connection_drop_count",
    "learner_proposal_received_count",
    "digest_mismatches_count",
    "dead_watchers_cleared",
    "response_packet_cache_hits",
    "bytes_received_count",
    "add_dead_watcher_stall_time",
    "request_throttle_wait_count",
    "requests_not_forwarded_to_commit_processor",
    "response_packet_cache_misses",
    "ensemble_auth_success",
    "prep_processor_request_queued",
    "learner_commit_received_count",
    "stale_replies",
    "response_bytes",
    "ensemble_auth_fail",
    "diff_count",
    "response_packet_get_children_cache_misses",
    "connection_revalidate_count",
    "quit_leading_due_to_disloyal_voter",
    "snap_count",
    "unrecoverable_error_count",
    "unsuccessful_handshake",
    "commit_count",
    "stale_sessions_expired",
    "response_packet_get_children_cache_hits",
    "sync_processor_request_queued",
    "outstanding_changes_queued",
    "revalidate_count",
    "request_commit_queued",
    "ensemble_auth_skip",
    "skip_learner_request_to_next_processor_count",
    "tls_handshake_exceeded",
];

/// Server version string reported by `srvr`, `stat` and `mntr`.
pub(crate) const VERSION: &str = concat!(
    "3.8.0-pookeeper-",
    env!("CARGO_PKG_VERSION"),
    ", built on 1970-01-01 00:00 UTC"
);

/// A latency average as ZooKeeper prints it: rounded half-up to four
/// decimals, then Java's `Double.toString` (shortest form, at least one
/// decimal: `0.0`, `2.2703`, `12.5`).
pub(crate) fn java_avg(v: f64) -> String {
    let r = (v * 10_000.0).round() / 10_000.0;
    let s = format!("{r}");
    if s.contains('.') || s.contains('e') || !r.is_finite() {
        s
    } else {
        format!("{s}.0")
    }
}

/// ZooKeeper's node count: its DataTree keys the root twice ("" and "/"),
/// so `srvr`, `stat` and `mntr` report one more than there are znodes.
fn zookeeper_node_count(server: &Server) -> usize {
    server.znode_count() + 1
}

/// The word in the first four bytes of a connection, if they are one.
pub(crate) fn recognise(head: &[u8; 4]) -> Option<&'static str> {
    let s = std::str::from_utf8(head).ok()?;
    KNOWN.iter().copied().find(|k| *k == s)
}

/// The text answer to an allowed word.
pub(crate) fn answer(server: &Server, cmd: &str) -> String {
    let mut o = String::new();
    let st = server.stats();
    let cfg = server.config();
    match cmd {
        "ruok" => o.push_str("imok"),
        "isro" => o.push_str("rw"),
        "srvr" | "stat" => {
            let _ = writeln!(o, "Zookeeper version: {VERSION}");
            if cmd == "stat" {
                o.push_str("Clients:\n");
                for l in server.connection_lines(true) {
                    let _ = writeln!(o, "{l}");
                }
                o.push('\n');
            }
            let avg = if st.latency_count == 0 {
                0.0
            } else {
                st.latency_total_ms as f64 / st.latency_count as f64
            };
            let _ = writeln!(
                o,
                "Latency min/avg/max: {}/{}/{}",
                st.latency_min_ms,
                java_avg(avg),
                st.latency_max_ms
            );
            let _ = writeln!(o, "Received: {}", st.packets_received);
            let _ = writeln!(o, "Sent: {}", st.packets_sent);
            let _ = writeln!(o, "Connections: {}", server.connection_count());
            let _ = writeln!(o, "Outstanding: {}", server.outstanding());
            let _ = writeln!(o, "Zxid: {:#x}", server.committed_zxid());
            let _ = writeln!(o, "Mode: standalone");
            let _ = writeln!(o, "Node count: {}", zookeeper_node_count(server));
        }
        "conf" => {
            let _ = writeln!(o, "clientPort={}", cfg.client_port);
            let _ = writeln!(o, "secureClientPort=-1");
            let _ = writeln!(o, "dataDir={}", cfg.data_dir);
            let _ = writeln!(o, "dataDirSize={}", st.data_dir_bytes);
            let _ = writeln!(o, "dataLogDir={}", cfg.data_log_dir);
            let _ = writeln!(o, "dataLogSize={}", st.log_dir_bytes);
            let _ = writeln!(o, "tickTime={}", cfg.tick_time.as_millis());
            let _ = writeln!(o, "maxClientCnxns={}", cfg.max_client_cnxns);
            let _ = writeln!(o, "minSessionTimeout={}", cfg.min_timeout().as_millis());
            let _ = writeln!(o, "maxSessionTimeout={}", cfg.max_timeout().as_millis());
            let _ = writeln!(o, "clientPortListenBacklog=-1");
            let _ = writeln!(o, "serverId={}", cfg.server_id);
        }
        "cons" => {
            for l in server.connection_lines(false) {
                let _ = writeln!(o, "{l}");
            }
            o.push('\n');
        }
        "crst" => o.push_str("Connection stats reset.\n"),
        "srst" => o.push_str("Server stats reset.\n"),
        "dump" => {
            let (sessions, ephemerals) = server.session_dump();
            o.push_str("SessionTracker dump:\n");
            let _ = writeln!(o, "Global Sessions({}):", sessions.len());
            for (id, to) in sessions {
                let _ = writeln!(o, "{id:#x}\t{}ms", to.as_millis());
            }
            o.push_str("ephemeral nodes dump:\n");
            let _ = writeln!(o, "Sessions with Ephemerals ({}):", ephemerals.len());
            for (id, paths) in ephemerals {
                let _ = writeln!(o, "{id:#x}:");
                for p in paths {
                    let _ = writeln!(o, "\t{p}");
                }
            }
            // ZooKeeper ends the dump with an empty line.
            o.push('\n');
            o.push_str("Connections dump:\n");
        }
        "envi" => {
            o.push_str("Environment:\n");
            let _ = writeln!(o, "zookeeper.version={VERSION}");
            let _ = writeln!(o, "host.name=localhost");
            let _ = writeln!(o, "java.version=none (pookeeper is written in Rust)");
            let _ = writeln!(o, "os.name={}", std::env::consts::OS);
            let _ = writeln!(o, "os.arch={}", std::env::consts::ARCH);
        }
        "mntr" => {
            let wcount = server.watch_count();
            let avg = if st.latency_count == 0 {
                0.0
            } else {
                st.latency_total_ms as f64 / st.latency_count as f64
            };
            // Apache ZooKeeper 3.8's standalone keys, in its order. Counters
            // of machinery we do not have (throttling, TLS, learners) are 0.
            let known: Vec<(&str, String)> = vec![
                ("zk_version", VERSION.to_string()),
                ("zk_server_state", "standalone".into()),
                ("zk_ephemerals_count", server.ephemeral_count().to_string()),
                (
                    "zk_num_alive_connections",
                    server.connection_count().to_string(),
                ),
                ("zk_avg_latency", java_avg(avg)),
                ("zk_outstanding_requests", server.outstanding().to_string()),
                ("zk_znode_count", zookeeper_node_count(server).to_string()),
                ("zk_global_sessions", server.session_count().to_string()),
                ("zk_non_mtls_remote_conn_count", "0".into()),
                ("zk_last_client_response_size", "-1".into()),
                ("zk_packets_sent", st.packets_sent.to_string()),
                ("zk_packets_received", st.packets_received.to_string()),
                ("zk_max_client_response_size", "-1".into()),
                ("zk_connection_drop_probability", "0.0".into()),
                ("zk_watch_count", wcount.to_string()),
                ("zk_auth_failed_count", st.auth_failed.to_string()),
                ("zk_min_latency", st.latency_min_ms.to_string()),
                ("zk_approximate_data_size", server.data_size().to_string()),
                ("zk_local_sessions", "0".into()),
                ("zk_uptime", server.uptime_ms().to_string()),
                ("zk_max_latency", st.latency_max_ms.to_string()),
                ("zk_outstanding_tls_handshake", "0".into()),
                ("zk_min_client_response_size", "-1".into()),
                ("zk_non_mtls_local_conn_count", "0".into()),
                ("zk_proposal_count", "0".into()),
                (
                    "zk_connection_request_count",
                    st.connections_accepted.to_string(),
                ),
                (
                    "zk_connection_rejected",
                    st.connections_rejected.to_string(),
                ),
            ];
            for (k, v) in known {
                let _ = writeln!(o, "{k}\t{v}");
            }
            for k in ZERO_COUNTERS {
                let _ = writeln!(o, "zk_{k}\t0");
            }
            if let (Some(open), Some(max)) = (st.open_fds, st.max_fds) {
                let _ = writeln!(o, "zk_open_file_descriptor_count\t{open}");
                let _ = writeln!(o, "zk_max_file_descriptor_count\t{max}");
            }
            for (name, s) in [
                ("updatelatency", &st.update_latency),
                ("readlatency", &st.read_latency),
            ] {
                let _ = writeln!(o, "zk_avg_{name}\t{}", java_avg(s.avg()));
                let _ = writeln!(o, "zk_min_{name}\t{}", s.min);
                let _ = writeln!(o, "zk_max_{name}\t{}", s.max);
                let _ = writeln!(o, "zk_cnt_{name}\t{}", s.count);
                let _ = writeln!(o, "zk_sum_{name}\t{}", s.sum);
                for (p, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
                    let _ = writeln!(o, "zk_{p}_{name}\t{}", s.quantile(q));
                }
            }
        }
        "wchs" => {
            let (conns, paths, total) = server.watch_summary();
            let _ = writeln!(o, "{conns} connections watching {paths} paths");
            let _ = writeln!(o, "Total watches:{total}");
        }
        "wchc" => {
            for (sid, paths) in server.watches_by_session() {
                let _ = writeln!(o, "{sid:#x}");
                for p in paths {
                    let _ = writeln!(o, "\t{p}");
                }
            }
            // ZooKeeper ends the dump with an empty line.
            o.push('\n');
        }
        "wchp" => {
            for (p, sids) in server.watches_by_path() {
                let _ = writeln!(o, "{p}");
                for s in sids {
                    let _ = writeln!(o, "\t{s:#x}");
                }
            }
            o.push('\n');
        }
        "dirs" => {
            let _ = writeln!(o, "datadir_size: {}", st.data_dir_bytes);
            let _ = writeln!(o, "logdir_size: {}", st.log_dir_bytes);
        }
        "gtmk" => o.push_str("306"),
        // ClickHouse Keeper's word for "create snapshot": the runtime writes
        // one once the log is durable up to this zxid.
        "csnp" => {
            let _ = writeln!(
                o,
                "Snapshot requested at zxid {:#x}",
                server.committed_zxid()
            );
        }
        "hash" => o.push_str("Digest in log and actual tree is not enabled\n"),
        _ => {
            let _ = writeln!(o, "{cmd} is not executed because it is not supported.");
        }
    }
    o
}
