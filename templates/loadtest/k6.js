{{ header("//") }}
//
// Four scenarios sized from the phase: a smoke test, steady load at
// users.min, a ramp to users.max, and a spike to the estimated capacity and
// beyond, to find where it breaks. Each virtual user is one concurrent user
// sending the workload's requests per minute.
//
//   k6 run -e TARGET_URL=http://127.0.0.1:3000 [-e TARGET_PATH=/health] k6.js

import http from 'k6/http';
import { check, sleep } from 'k6';

const TARGET_URL = __ENV.TARGET_URL;
if (!TARGET_URL) {
  throw new Error('set TARGET_URL, e.g. k6 run -e TARGET_URL=http://127.0.0.1:3000 k6.js');
}
const TARGET_PATH = __ENV.TARGET_PATH || '/';

const PHASE = {{ phase }};
const USERS_MIN = {{ users_min }};
const USERS_MAX = {{ users_max }};
// Estimated by `scaleplan capacity`; the bottleneck is {{ bottleneck|comment }}.
const CAPACITY = {{ capacity }};
const SPIKE_PEAK = {{ spike_peak }};
// Seconds between one user's requests: 60 / requests_per_user_per_min.
const THINK_SECONDS = {{ think_seconds }};

export const options = {
  scenarios: {
    smoke: {
      executor: 'constant-vus',
      vus: {{ smoke_vus }},
      duration: '1m',
      tags: { scenario: 'smoke' },
    },
    steady: {
      executor: 'constant-vus',
      vus: USERS_MIN,
      duration: '10m',
      startTime: '1m',
      tags: { scenario: 'steady' },
    },
    ramp: {
      executor: 'ramping-vus',
      startVUs: USERS_MIN,
      stages: [
        { duration: '10m', target: USERS_MAX },
        { duration: '5m', target: USERS_MAX },
        { duration: '1m', target: 0 },
      ],
      startTime: '11m',
      tags: { scenario: 'ramp' },
    },
    spike: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: '2m', target: CAPACITY },
        { duration: '3m', target: SPIKE_PEAK },
        { duration: '1m', target: 0 },
      ],
      startTime: '27m',
      tags: { scenario: 'spike' },
    },
  },
  thresholds: {
    'http_req_failed{scenario:smoke}': ['rate<0.01'],
    'http_req_failed{scenario:steady}': ['rate<0.01'],
    'http_req_duration{scenario:steady}': ['p(95)<{{ p95_ms }}'],
    'http_req_failed{scenario:ramp}': ['rate<0.01'],
    'http_req_duration{scenario:ramp}': ['p(95)<{{ p95_ms }}'],
    // The spike goes past the estimate on purpose: record where errors and
    // latency climb instead of stopping the run.
    'http_req_failed{scenario:spike}': [{ threshold: 'rate<0.05', abortOnFail: false }],
    'http_req_duration{scenario:spike}': [{ threshold: 'p(95)<{{ spike_p95_ms }}', abortOnFail: false }],
  },
  tags: { phase: PHASE },
};

export default function () {
  const res = http.get(`${TARGET_URL}${TARGET_PATH}`);
  check(res, { 'status is 2xx or 3xx': (r) => r.status >= 200 && r.status < 400 });
  sleep(THINK_SECONDS);
}
