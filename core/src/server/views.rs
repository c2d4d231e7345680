//! Four-letter words and the read-only views of the server they print.

use super::*;

impl Server {
    pub(super) fn four_letter_word(&mut self, conn: ConnId, cmd: &'static str) {
        let text = if self.config.four_letter_word_allowed(cmd) {
            match cmd {
                "srst" => {
                    let s = &mut self.stats;
                    (s.packets_received, s.packets_sent) = (0, 0);
                    (s.latency_min_ms, s.latency_max_ms) = (0, 0);
                    (s.latency_total_ms, s.latency_count) = (0, 0);
                    s.read_latency = Default::default();
                    s.update_latency = Default::default();
                }
                "csnp" => self.snapshot_requested = true,
                "crst" => {
                    // ServerCnxn.resetStats (the connection time stays).
                    for c in self.conns.values_mut() {
                        (c.packets_received, c.packets_sent) = (0, 0);
                        let st = &mut c.stats;
                        st.last_op = "NA";
                        (st.last_cxid, st.last_zxid) = (-1, -1);
                        (st.last_response, st.last_latency) = (0, 0);
                        (st.min_latency, st.max_latency) = (u64::MAX, 0);
                        (st.total_latency, st.count) = (0, 0);
                    }
                }
                _ => {}
            }
            crate::fourlw::answer(self, cmd)
        } else {
            format!("{cmd} is not executed because it is not in the whitelist.\n")
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.four_letter = true;
        }
        // Not a reply: no latency, and not counted as a sent packet.
        self.send_event(conn, Bytes::from(text));
        self.close_conn(conn, CloseReason::CommandDone);
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn uptime_ms(&self) -> u128 {
        (self.now - self.start).as_millis()
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.pending.len()
            + self
                .conns
                .values()
                .map(|c| {
                    c.queue
                        .iter()
                        .filter(|w| matches!(w, Waiting::Read { .. } | Waiting::Text { .. }))
                        .count()
                })
                .sum::<usize>()
    }

    /// `wchs`: (connections, paths, watches) of the data watches.
    pub(crate) fn watch_summary(&self) -> (usize, usize, usize) {
        self.watches.data_summary()
    }

    /// `zk_watch_count`: data and child watches together.
    pub(crate) fn watch_count(&self) -> usize {
        self.watches.count()
    }

    pub(crate) fn ephemeral_count(&self) -> usize {
        self.db.tree.ephemeral_count()
    }

    pub(crate) fn data_size(&self) -> u64 {
        self.db.tree.data_size()
    }

    /// `cons` lines (`brief`: `stat`'s, up to the sent count).
    pub(crate) fn connection_lines(&self, brief: bool) -> Vec<String> {
        self.conns
            .values()
            .map(|c| {
                let peer = c.peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
                let session = c.session.and_then(|s| self.sessions.get(&s).map(|x| (s, x)));
                match session.filter(|_| !brief) {
                    Some((sid, s)) => {
                        let st = &c.stats;
                        let lcxid = if st.last_cxid >= 0 {
                            format!(",lcxid={:#x}", st.last_cxid)
                        } else {
                            String::new()
                        };
                        let min = if st.count == 0 { 0 } else { st.min_latency };
                        let avg = st.total_latency.checked_div(st.count).unwrap_or(0);
                        format!(
                            " /{peer}[1](queued=0,recved={},sent={},sid={sid:#x},lop={},est={},to={}{lcxid},lzxid={:#x},lresp={},llat={},minlat={min},avglat={avg},maxlat={})",
                            c.packets_received,
                            c.packets_sent,
                            st.last_op,
                            st.established,
                            s.timeout.as_millis(),
                            st.last_zxid,
                            st.last_response,
                            st.last_latency,
                            st.max_latency,
                        )
                    }
                    None => format!(
                        " /{peer}[{}](queued=0,recved={},sent={})",
                        u8::from(session.is_some()),
                        c.packets_received,
                        c.packets_sent
                    ),
                }
            })
            .collect()
    }

    #[allow(clippy::type_complexity)]
    pub(crate) fn session_dump(&self) -> (Vec<(i64, Duration)>, Vec<(i64, Vec<String>)>) {
        let mut s: Vec<(i64, Duration)> = self
            .sessions
            .iter()
            .map(|(&id, s)| (id, s.timeout))
            .collect();
        s.sort_unstable();
        (s, self.db.tree.all_ephemerals())
    }

    pub(crate) fn watches_by_session(&self) -> Vec<(i64, Vec<String>)> {
        let mut out = Vec::new();
        for (id, c) in &self.conns {
            let paths = self.watches.data_paths_of(*id);
            if let (Some(sid), false) = (c.session, paths.is_empty()) {
                out.push((sid, paths));
            }
        }
        out
    }

    pub(crate) fn watches_by_path(&self) -> Vec<(String, Vec<i64>)> {
        self.watches
            .data_by_path()
            .into_iter()
            .map(|(p, conns)| {
                let sids = conns
                    .iter()
                    .filter_map(|c| self.conns.get(c).and_then(|c| c.session))
                    .collect();
                (p, sids)
            })
            .collect()
    }
}
