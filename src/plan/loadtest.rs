//! The load test's shape, from the capacity estimate: the rates its
//! scenarios run at, the connections they hold and how many k6 processes
//! share them. The k6 script and the phase README only format it.

use super::capacity::{Estimate, Resource};
use crate::spec::Phase;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct LoadTest {
    /// Users the model says the phase carries, and the spike's peak
    /// (half as many again).
    pub capacity: u64,
    pub spike_peak: u64,
    pub bottleneck: &'static str,
    /// Requests a second in the smoke test.
    pub smoke_rate: u32,
    pub requests_per_sec: f64,
    pub requests_per_min: f64,
    pub read_share: f64,
    pub read_percent: u32,
    /// WebSocket connections the model counts on.
    pub ws_connections: u64,
    /// The most connections one k6 process opens: under one source
    /// address's ephemeral ports, with memory to spare.
    pub per_process: u64,
    /// k6 processes the spike needs.
    pub shards: u64,
    pub p95_ms: u32,
    pub spike_p95_ms: u32,
    /// Users in one Socket.IO room, and how often each broadcasts to it:
    /// every broadcast fans out to the room's members on every replica.
    pub room_size: u32,
    pub broadcast_every_s: u32,
}

pub fn plan(spec: &Phase, e: &Estimate) -> LoadTest {
    let w = &spec.workload;
    let ws_connections = e
        .line(Resource::Websocket)
        .map_or(0, |l| l.supply.amount as u64);
    let spike_peak = e.capacity + e.capacity / 2;
    let requests_per_sec = w.requests_per_user_per_min / 60.0;
    let per_process: u64 = 20_000;
    // The spike's connections (1.5 x the modelled ones) and its
    // requests' virtual users (two seconds' worth at the spike's rate).
    let peak_vus = ws_connections * 3 / 2 + (spike_peak as f64 * requests_per_sec * 2.0) as u64;
    LoadTest {
        capacity: e.capacity,
        spike_peak,
        bottleneck: e.bottleneck.label(),
        smoke_rate: 5,
        requests_per_sec,
        requests_per_min: w.requests_per_user_per_min,
        read_share: w.read_ratio,
        read_percent: (w.read_ratio * 100.0).round() as u32,
        ws_connections,
        per_process,
        shards: peak_vus.div_ceil(per_process).max(1),
        p95_ms: 500,
        spike_p95_ms: 2000,
        room_size: 10,
        broadcast_every_s: 30,
    }
}
