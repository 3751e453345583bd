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
// - websocket: a held Socket.IO connection per user up to users.max, then,
//   with the spike, up to the modelled connections ({{ ws_connections }}) and half again past
//   them. Each speaks Engine.IO 4 over a WebSocket as socket.io-client
//   does: the server's open packet, the namespace connect, the answer to
//   every ping; it joins a room of {{ room_size }} users and broadcasts to it every
//   {{ broadcast_every_s }} s, so each message fans out to every member on every replica.
//   The workload's messages are the api scenario's requests, not counted
//   twice.
//
//   k6 run -e TARGET_URL=http://127.0.0.1:3000 k6.js
//
// WORK_PATH (GET, default /work) is one modelled request: the reference
// backend (examples/backend) runs the spec's queries and Redis operations
// there. WS_URLS (comma-separated, default TARGET_URL's) are the Socket.IO
// servers; virtual users take them in turn, so a room spans replicas.
// SCENARIOS (comma-separated) runs only the named scenarios, e.g.
// -e SCENARIOS=smoke,socket_smoke for a one-minute check. One k6 process
// reaches about {{ per_process }} connections: one source address has about 28,000
// ephemeral ports, and each connection holds a few MB in k6. This phase
// needs {{ shards }} process(es): run one on each machine with -e SHARDS={{ shards }} -e
// SHARD=1..{{ shards }}; each takes its share of every rate and connection (-e SHARDS=1
// runs a smaller trial in one).

import http from 'k6/http';
import ws from 'k6/ws';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate } from 'k6/metrics';

const TARGET_URL = __ENV.TARGET_URL;
if (!TARGET_URL) {
  throw new Error('set TARGET_URL, e.g. k6 run -e TARGET_URL=http://127.0.0.1:3000 k6.js');
}
const WS_URLS = (__ENV.WS_URLS || TARGET_URL.replace(/^http/, 'ws')).split(',').map((u) => u.trim());
const WORK_PATH = __ENV.WORK_PATH || '/work';

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
// A connection is held for its whole stage (each scenario's HOLD), not
// reopened.
const HOLD_SECONDS = 15 * 60;
// Users in one room, and how often each broadcasts to it.
const ROOM_SIZE = {{ room_size }};
const BROADCAST_SECONDS = {{ broadcast_every_s }};

// Socket.IO: handshakes completed (the server's namespace connect
// answered), broadcasts sent and received.
const handshakes = new Rate('socketio_handshake_ok');
const broadcastsSent = new Counter('socketio_broadcasts_sent');
const broadcastsReceived = new Counter('socketio_broadcasts_received');

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
    // A short check of the Socket.IO path: a few connections for 30 s,
    // broadcasting every 5 s.
    socket_smoke: {
      executor: 'constant-vus',
      exec: 'socket',
      vus: Math.max(2, Math.round(10 / SHARDS)),
      duration: '30s',
      env: { HOLD: '30', EVERY: '5' },
      gracefulStop: '10s',
      tags: { scenario: 'socket_smoke' },
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
      // Held to the stage's end, not past it into the spike.
      env: { HOLD: String(15 * 60) },
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
      env: { HOLD: String(6 * 60) },
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
    // Every Socket.IO handshake completes and broadcasts arrive.
    'socketio_handshake_ok{scenario:socket_smoke}': ['rate>0.99'],
    'socketio_broadcasts_received{scenario:socket_smoke}': ['count>0'],
    // Up to users.max the model says every connection holds.
    'socketio_handshake_ok{scenario:websocket}': ['rate>0.99'],
    'ws_connecting{scenario:websocket}': ['p(95)<1000'],
    'socketio_broadcasts_received{scenario:websocket}': ['count>0'],
    'socketio_handshake_ok{scenario:websocket_spike}': [{ threshold: 'rate>0.95', abortOnFail: false }],
    // The spike goes past the estimate on purpose: record where errors and
    // latency climb instead of stopping the run.
    'http_req_failed{scenario:spike}': [{ threshold: 'rate<0.05', abortOnFail: false }],
    'http_req_duration{scenario:spike}': [{ threshold: 'p(95)<{{ spike_p95_ms }}', abortOnFail: false }],
    'dropped_iterations{scenario:spike}': [{ threshold: 'count<1', abortOnFail: false }],
  },
  tags: { phase: PHASE, shard: `${SHARD}/${SHARDS}` },
};

// MEASURE_USERS (with MEASURE_SECONDS) adds `measure`, the users of
// `scaleplan loadtest`: that many users for that long, each holding a
// Socket.IO connection and sending the workload's requests, so every
// resource sees a known number of users.
if (__ENV.MEASURE_USERS) {
  const users = Number(__ENV.MEASURE_USERS);
  const seconds = Number(__ENV.MEASURE_SECONDS || 60);
  if (!(Number.isInteger(users) && users >= 1 && Number.isInteger(seconds) && seconds >= 10)) {
    throw new Error(`MEASURE_USERS must be a whole number >= 1 and MEASURE_SECONDS >= 10, got ${users} and ${seconds}`);
  }
  const all = /** @type {Record<string, any>} */ (options.scenarios);
  const perMinute = Math.max(1, Math.round(users * REQUESTS_PER_USER_PER_SEC * 60));
  all.measure_api = {
    executor: 'constant-arrival-rate',
    exec: 'api',
    rate: perMinute,
    timeUnit: '1m',
    duration: `${seconds}s`,
    preAllocatedVUs: Math.max(2, Math.ceil(perMinute / 60)),
    maxVUs: Math.max(4, Math.ceil(perMinute / 30)),
    tags: { scenario: 'measure_api' },
  };
  all.measure_socket = {
    executor: 'constant-vus',
    exec: 'socket',
    vus: users,
    duration: `${seconds}s`,
    env: { HOLD: String(seconds) },
    gracefulStop: '15s',
    tags: { scenario: 'measure_socket' },
  };
  const thresholds = /** @type {Record<string, any>} */ (options.thresholds);
  thresholds['http_req_failed{scenario:measure_api}'] = ['rate<0.01'];
  thresholds['socketio_handshake_ok{scenario:measure_socket}'] = ['rate>0.99'];
}

// SCENARIOS: only the named scenarios, and only their thresholds.
if (__ENV.SCENARIOS) {
  const wanted = __ENV.SCENARIOS.split(',').map((n) => n.trim());
  const all = /** @type {Record<string, any>} */ (options.scenarios);
  for (const name of Object.keys(all)) {
    if (!wanted.includes(name)) delete all[name];
  }
  const missing = wanted.filter((n) => !(n in all));
  if (missing.length > 0) throw new Error(`no scenario named ${missing.join(', ')}`);
  const thresholds = /** @type {Record<string, any>} */ (options.thresholds);
  for (const key of Object.keys(thresholds)) {
    const m = /\{scenario:([a-z_]+)\}/.exec(key);
    if (m && !wanted.includes(m[1])) delete thresholds[key];
  }
  // Started at once: a selected scenario's start time was for the full run.
  for (const name of wanted) all[name].startTime = '0s';
}

export function setup() {
  if (SHARDS < NEEDED_SHARDS) {
    console.warn(
      `phase ${PHASE} needs ${NEEDED_SHARDS} k6 processes for ${WS_CONNECTIONS} connections; this run has ${SHARDS}: it will not reach the model`,
    );
  }
}

/** One modelled request: the app runs the workload's queries and Redis operations. */
export function api() {
  const user = Math.floor(Math.random() * 1000000);
  const res = http.get(`${TARGET_URL}${WORK_PATH}?user=${user}`, { tags: { kind: 'work' } });
  check(res, { 'status is 2xx or 3xx': (r) => r.status >= 200 && r.status < 400 });
}

/**
 * One user's Socket.IO connection, held for its stage: Engine.IO 4 over a
 * WebSocket (packet types: 0 open, 2 ping, 3 pong, 4 message; Socket.IO's
 * 0 connect and 2 event inside a message), a room joined, a broadcast to
 * it every BROADCAST_SECONDS.
 */
export function socket() {
  const hold = Number(__ENV.HOLD || HOLD_SECONDS);
  const every = Number(__ENV.EVERY || BROADCAST_SECONDS);
  // Numbered within the scenario (virtual user numbers are shared with
  // the HTTP scenarios, which would leave rooms part-filled).
  const slot = exec.scenario.iterationInTest;
  const base = WS_URLS[slot % WS_URLS.length];
  // Rooms of ROOM_SIZE within this process's share: SHARD keeps two
  // processes' rooms apart.
  const room = `room-${SHARD}-${Math.floor(slot / ROOM_SIZE)}`;
  // The handshake's outcome, recorded once: completed, refused, or the
  // socket gone before it.
  let settled = false;
  const handshake = (/** @type {boolean} */ ok) => {
    if (!settled) {
      settled = true;
      handshakes.add(ok);
    }
  };
  const res = ws.connect(`${base}/socket.io/?EIO=4&transport=websocket`, {}, (s) => {
    s.on('message', (packet) => {
      const text = String(packet);
      if (text.startsWith('0')) {
        // Engine.IO open: connect to the default namespace.
        s.send('40');
      } else if (text.startsWith('40')) {
        handshake(true);
        s.send(`42${JSON.stringify(['join', room])}`);
        s.setInterval(() => {
          s.send(`42${JSON.stringify(['broadcast', { room, data: { from: __VU, at: Date.now() } }])}`);
          broadcastsSent.add(1);
        }, every * 1000);
      } else if (text === '2') {
        s.send('3');
      } else if (text.startsWith('42')) {
        const event = JSON.parse(text.slice(2));
        if (Array.isArray(event) && event[0] === 'broadcast') broadcastsReceived.add(1);
      } else if (text.startsWith('44')) {
        console.error(`socket.io refused the connection: ${text}`);
        handshake(false);
        s.close();
      }
    });
    s.on('close', () => handshake(false));
    s.setTimeout(() => {
      if (!settled) {
        handshake(false);
        s.close();
      }
    }, 10000);
    s.setTimeout(() => s.close(), hold * 1000);
    s.on('error', (e) => console.error(`websocket: ${e.error()}`));
  });
  check(res, { 'websocket upgraded (101)': (r) => r && r.status === 101 });
  handshake(false);
  sleep(1);
}
