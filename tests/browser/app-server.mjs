// The demo app's origin for the browser tests: the page (app/index.html) at `/`, and everything under
// `/api/` passed to the api as is, as a reverse proxy in front of both would. `onAnswer(req, answer)` sees
// each proxied request with the api's answer.
import http from 'node:http';
import { readFileSync } from 'node:fs';

const page = readFileSync(new URL('./app/index.html', import.meta.url));

export function appServer(api, onAnswer = () => {}) {
  return http.createServer((req, res) => {
    if (!req.url.startsWith('/api/')) {
      res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
      res.end(req.url === '/' ? page : 'not found');
      return;
    }
    const upstream = http.request({
      host: api.hostname, port: api.port, method: req.method, path: req.url, headers: req.headers,
    }, (answer) => {
      onAnswer(req, answer);
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (error) => { res.writeHead(502); res.end(String(error)); });
    req.pipe(upstream);
  });
}
