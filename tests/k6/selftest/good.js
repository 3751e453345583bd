// A k6 script that must type-check clean: http with check, ws.connect,
// websockets, arrival-rate scenarios, thresholds, custom metrics, execution,
// __ENV and the runtime globals.
import http from 'k6/http';
import ws from 'k6/ws';
import { WebSocket } from 'k6/websockets';
import { check, group, sleep, fail } from 'k6';
import { Counter, Trend, Rate } from 'k6/metrics';
import exec from 'k6/execution';

const BASE_URL = __ENV.TARGET_URL || 'http://127.0.0.1:3000';
const WS_URL = __ENV.WS_URL || 'ws://127.0.0.1:3000/ws';

const messages = new Counter('ws_messages');
const wsLatency = new Trend('ws_latency', true);
const okRate = new Rate('ok_rate');

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    steady: {
      executor: 'constant-arrival-rate',
      rate: 50,
      timeUnit: '1s',
      duration: '1m',
      preAllocatedVUs: 20,
      maxVUs: 100,
      exec: 'api',
      tags: { scenario: 'steady' },
    },
    ramp: {
      executor: 'ramping-arrival-rate',
      startRate: 10,
      timeUnit: '1s',
      preAllocatedVUs: 20,
      maxVUs: 200,
      stages: [
        { duration: '30s', target: 100 },
        { duration: '30s', target: 0 },
      ],
      startTime: '1m',
      exec: 'api',
    },
    sockets: {
      executor: 'constant-vus',
      vus: 2,
      duration: '30s',
      exec: 'sockets',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{scenario:steady}': ['p(95)<500'],
    ws_latency: [{ threshold: 'p(99)<1000', abortOnFail: false }],
    checks: ['rate>0.99'],
  },
};

export function setup() {
  const res = http.get(`${BASE_URL}/health`, { tags: { name: 'health' } });
  if (res.status !== 200) fail(`target not healthy: ${res.status}`);
  return { startedAt: Date.now() };
}

/** @param {ReturnType<typeof setup>} data */
export function api(data) {
  group('api', () => {
    const res = http.post(`${BASE_URL}/items`, JSON.stringify({ vu: exec.vu.idInTest }), {
      headers: { 'Content-Type': 'application/json' },
      timeout: '10s',
    });
    const ok = check(res, {
      'status is 2xx': (r) => r.status >= 200 && r.status < 300,
      'body has id': (r) => typeof r.body === 'string' && r.body.includes('id'),
    });
    okRate.add(ok);
    if (!ok) console.warn(`iteration ${exec.scenario.iterationInTest} failed after ${Date.now() - data.startedAt} ms`);
  });
}

export function sockets() {
  const res = ws.connect(WS_URL, { tags: { proto: 'ws' } }, (socket) => {
    let sentAt = 0;
    socket.on('open', () => {
      sentAt = Date.now();
      socket.send(JSON.stringify({ type: 'ping' }));
      socket.setTimeout(() => socket.close(), 5000);
    });
    socket.on('message', (msg) => {
      messages.add(1);
      wsLatency.add(Date.now() - sentAt);
      if (msg.length > 0) socket.close();
    });
    socket.on('error', (e) => console.error(e.error()));
  });
  check(res, { 'ws status is 101': (r) => r && r.status === 101 });

  const socket = new WebSocket(WS_URL);
  socket.onopen = () => socket.send('hello');
  socket.onmessage = (event) => {
    messages.add(1, { kind: 'websockets' });
    // @types/k6 types the event as optional.
    if (event && String(event.data).length > 0) socket.close();
  };
  const timer = setTimeout(() => socket.close(), 2000);
  socket.onclose = () => clearTimeout(timer);
  sleep(1);
}

export default function () {
  api({ startedAt: 0 });
}

/** @param {any} data */
export function handleSummary(data) {
  return { stdout: JSON.stringify(data.metrics.checks) };
}
