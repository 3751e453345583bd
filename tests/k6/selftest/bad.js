// A k6 script with a mistake on each line that ends in an "error:" comment;
// the self-test requires tsc to report an error on every one of those lines.
import http from 'k6/http';
import { check } from 'k6';
import { Trend } from 'k6/metrics';

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    steady: {
      executor: 'constant-arival-rate', // error: no such executor
      rate: 10,
      timeUnit: '1s',
      duration: '1m',
      preAllocatedVUs: 5,
    },
  },
  thresholds: { http_req_failed: 'rate<0.01' }, // error: must be a list
};

const latency = new Trend('latency');

export default function () {
  http.gett('http://127.0.0.1:3000/'); // error: no http.gett
  http.get(123, 456, 789); // error: too many arguments
  http.get(123); // error: a URL is a string
  const res = http.get('http://127.0.0.1:3000/');
  check(res, { ok: (r) => r.status === '200' }); // error: number vs string
  res.json().items; // error: json() may be null or a non-object
  latency.add('fast'); // error: a Trend takes numbers
  document.title = 'k6'; // error: no DOM in k6
  undefinedHelper(); // error: not defined
}
