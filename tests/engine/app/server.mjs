// A stand-in for the team's backend in the engine tests: it answers the
// health path Compose checks and the metrics path Prometheus scrapes. The
// reference backend that does the work the spec models is its own issue.
import http from 'node:http';

const port = Number(process.env.PORT || 3000);
const started = Date.now();
http
  .createServer((req, res) => {
    if (req.url.startsWith('/health')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(`# TYPE standin_uptime_seconds gauge\nstandin_uptime_seconds ${(Date.now() - started) / 1000}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  })
  .listen(port, '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
