{{ header("//") }}
//
// Load for phase {{ phase|comment }}, sized from its capacity model (`scaleplan capacity
// {{ phase|comment }}`): it carries about {{ capacity }} concurrent users, and {{ bottleneck|comment }} runs out
// first. Each scenario loads what a resource of the model counts:
// - api: the HTTP mix of the workload ({{ requests_per_min }} requests a minute per user, {{ read_percent }}%
//   reads), at the arrival rate of users.min, users.max, the modelled
//   capacity and past it: arrival-rate executors keep the rate whatever the
//   latency, so an overloaded service shows as latency and errors, not as
//   a quietly lower rate;
// - websocket: a held connection per user up to users.max, then, with the
//   spike, up to the modelled connections ({{ ws_connections }}) and half again past them;
//   each sends a heartbeat every 25 s (Socket.IO's ping interval): the
//   workload's messages are the api scenario's requests, not counted twice.
//
//   k6 run -e TARGET_URL=http://127.0.0.1:3000 -e WS_URL=ws://127.0.0.1:3000/ws k6.js
//
// READ_PATH (GET, default /) and WRITE_PATH (POST with a JSON body, default
// /) name the app's endpoints. One k6 process reaches about {{ per_process }}
// connections: one source address has about 28,000 ephemeral ports, and each
// connection holds a few MB in k6. This phase needs {{ shards }} process(es): run one on
// each machine with -e SHARDS={{ shards }} -e SHARD=1..{{ shards }}; each takes its share of
// every rate and connection (-e SHARDS=1 runs a smaller trial in one).

import http from 'k6/http';
import ws from 'k6/ws';
import { check, sleep } from 'k6';

const TARGET_URL = __ENV.TARGET_URL;
if (!TARGET_URL) {
  throw new Error('set TARGET_URL, e.g. k6 run -e TARGET_URL=http://127.0.0.1:3000 k6.js');
}
const WS_URL = __ENV.WS_URL || `${TARGET_URL.replace(/^http/, 'ws')}/ws`;
const READ_PATH = __ENV.READ_PATH || '/';
const WRITE_PATH = __ENV.WRITE_PATH || '/';

const PHASE = {{ phase }};
const USERS_MIN = {{ users_min }};
const USERS_MAX = {{ users_max }};
// Estimated by `scaleplan capacity`; the bottleneck is {{ bottleneck|comment }}.
const CAPACITY = {{ capacity }};
const SPIKE_PEAK = {{ spike_peak }};
// The workload of one user.
const REQUESTS_PER_USER_PER_SEC = {{ requests_per_sec }};
const READ_SHARE = {{ read_share }};
// Connections the app's replicas hold in the model.
const WS_CONNECTIONS = {{ ws_connections }};
// A connection is held for its whole stage, not reopened.
const HOLD_SECONDS = 16 * 60;
const HEARTBEAT_SECONDS = 25;

const NEEDED_SHARDS = {{ shards }};
const SHARDS = Number(__ENV.SHARDS || {{ default_shards }});
if (SHARDS === 0) {
  throw new Error(
    `phase ${ {{ phase }} } needs ${NEEDED_SHARDS} k6 processes: run each with -e SHARDS=${NEEDED_SHARDS} -e SHARD=1..${NEEDED_SHARDS} (or -e SHARDS=1 for a smaller trial in one)`,
  );
}
const SHARD = Number(__ENV.SHARD || 1);
if (!(Number.isInteger(SHARDS) && SHARDS >= 1 && Number.isInteger(SHARD) && SHARD >= 1 && SHARD <= SHARDS)) {
  throw new Error(`SHARD must be 1..SHARDS, got SHARD=${SHARD} SHARDS=${SHARDS}`);
}

/**
 * This process's share of a number of users or connections.
 * @param {number} n
 */
function share(n) {
  return Math.max(1, Math.ceil(n / SHARDS));
}

/**
 * Requests a second for this process at `users` concurrent users.
 * @param {number} users
 */
function rate(users) {
  return Math.max(1, Math.round((users * REQUESTS_PER_USER_PER_SEC) / SHARDS));
}

/**
 * Virtual users an arrival rate needs: a second's worth of requests in
 * flight, and twice that when responses slow down.
 * @param {number} perSecond
 */
function vus(perSecond) {
  return { preAllocatedVUs: Math.max(1, perSecond), maxVUs: Math.max(2, perSecond * 2) };
}

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    smoke: {
      executor: 'constant-arrival-rate',
      exec: 'api',
      rate: Math.max(1, Math.round({{ smoke_rate }} / SHARDS)),
      timeUnit: '1s',
      duration: '1m',
      ...vus({{ smoke_rate }}),
      tags: { scenario: 'smoke' },
    },
    steady: {
      executor: 'constant-arrival-rate',
      exec: 'api',
      rate: rate(USERS_MIN),
      timeUnit: '1s',
      duration: '10m',
      startTime: '1m',
      ...vus(rate(USERS_MIN)),
      tags: { scenario: 'steady' },
    },
    ramp: {
      executor: 'ramping-arrival-rate',
      exec: 'api',
      startRate: rate(USERS_MIN),
      timeUnit: '1s',
      stages: [
        { duration: '10m', target: rate(USERS_MAX) },
        { duration: '5m', target: rate(USERS_MAX) },
      ],
      startTime: '11m',
      ...vus(rate(USERS_MAX)),
      tags: { scenario: 'ramp' },
    },
    // To the modelled capacity and half again past it, to see where it
    // breaks.
    spike: {
      executor: 'ramping-arrival-rate',
      exec: 'api',
      startRate: rate(USERS_MAX),
      timeUnit: '1s',
      stages: [
        { duration: '2m', target: rate(CAPACITY) },
        { duration: '3m', target: rate(SPIKE_PEAK) },
        { duration: '1m', target: rate(USERS_MIN) },
      ],
      startTime: '26m',
      ...vus(rate(SPIKE_PEAK)),
      tags: { scenario: 'spike' },
    },
    // A connection per user up to users.max, opened over 5 minutes and
    // held 10, beside the ramp.
    websocket: {
      executor: 'ramping-vus',
      exec: 'socket',
      startVUs: 0,
      stages: [
        { duration: '5m', target: share(USERS_MAX) },
        { duration: '10m', target: share(USERS_MAX) },
      ],
      startTime: '11m',
      gracefulRampDown: '30s',
      tags: { scenario: 'websocket' },
    },
    // With the api spike: to the modelled connections and half again past
    // them, to see where the WebSocket bottleneck gives.
    websocket_spike: {
      executor: 'ramping-vus',
      exec: 'socket',
      startVUs: 0,
      stages: [
        { duration: '2m', target: share(WS_CONNECTIONS) },
        { duration: '3m', target: share(Math.round(WS_CONNECTIONS * 1.5)) },
        { duration: '1m', target: 0 },
      ],
      startTime: '26m',
      gracefulRampDown: '30s',
      tags: { scenario: 'websocket_spike' },
    },
  },
  thresholds: {
    'http_req_failed{scenario:smoke}': ['rate<0.01'],
    'http_req_failed{scenario:steady}': ['rate<0.01'],
    'http_req_duration{scenario:steady}': ['p(95)<{{ p95_ms }}'],
    'http_req_failed{scenario:ramp}': ['rate<0.01'],
    'http_req_duration{scenario:ramp}': ['p(95)<{{ p95_ms }}'],
    // Up to users.max the model says every connection holds.
    'checks{scenario:websocket}': ['rate>0.99'],
    'ws_connecting{scenario:websocket}': ['p(95)<1000'],
    'checks{scenario:websocket_spike}': [{ threshold: 'rate>0.95', abortOnFail: false }],
    // The spike goes past the estimate on purpose: record where errors and
    // latency climb instead of stopping the run.
    'http_req_failed{scenario:spike}': [{ threshold: 'rate<0.05', abortOnFail: false }],
    'http_req_duration{scenario:spike}': [{ threshold: 'p(95)<{{ spike_p95_ms }}', abortOnFail: false }],
    'dropped_iterations{scenario:spike}': [{ threshold: 'count<1', abortOnFail: false }],
  },
  tags: { phase: PHASE, shard: `${SHARD}/${SHARDS}` },
};

export function setup() {
  if (SHARDS < NEEDED_SHARDS) {
    console.warn(
      `phase ${PHASE} needs ${NEEDED_SHARDS} k6 processes for ${WS_CONNECTIONS} connections; this run has ${SHARDS}: it will not reach the model`,
    );
  }
}

/** One request of the workload's mix: a read or a write. */
export function api() {
  const res =
    Math.random() < READ_SHARE
      ? http.get(`${TARGET_URL}${READ_PATH}`, { tags: { kind: 'read' } })
      : http.post(`${TARGET_URL}${WRITE_PATH}`, JSON.stringify({ phase: PHASE, at: Date.now() }), {
          headers: { 'Content-Type': 'application/json' },
          tags: { kind: 'write' },
        });
  check(res, { 'status is 2xx or 3xx': (r) => r.status >= 200 && r.status < 400 });
}

/** One user's connection, held with a heartbeat for its whole stage. */
export function socket() {
  const res = ws.connect(WS_URL, {}, (s) => {
    s.on('open', () => {
      s.setInterval(() => s.send(JSON.stringify({ type: 'ping', at: Date.now() })), HEARTBEAT_SECONDS * 1000);
      s.setTimeout(() => s.close(), HOLD_SECONDS * 1000);
    });
    s.on('error', (e) => console.error(`websocket: ${e.error()}`));
  });
  check(res, { 'websocket upgraded (101)': (r) => r && r.status === 101 });
  sleep(1);
}
