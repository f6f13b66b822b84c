// bench/serve_load.mjs: load test for `llem serve` (address in LLEM_E2E_URL, server pid in
// LLEM_SERVE_PID): CONNS clients each stream /api/generate requests back to back for DURATION
// seconds; every response is validated (each NDJSON line parses, the last has done:true and
// eval_count > 0, no error line); the server's RSS is sampled every 5 s. Prints requests/s,
// TTFT p50/p99, tokens/s and the RSS series; exits 1 on any malformed or lost response.
import { readFileSync } from 'node:fs';

const base = process.env.LLEM_E2E_URL;
const conns = Number(process.env.CONNS || 64);
const duration = Number(process.env.DURATION || 120) * 1000;
const model = process.env.MODEL || 'stories';
const pid = process.env.LLEM_SERVE_PID;
const prompts = ['Once upon a time', 'The cat', 'Lily and Ben', 'One day', 'The sun',
                 'A little bird', 'Tom had a', 'The big dog'];

function rssKiB() {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : -1;
}

let ok = 0, bad = 0, tokens = 0;
const ttfts = [];
const errors = [];
async function one(i, n) {
  const t0 = performance.now();
  let ttft = -1;
  const res = await fetch(`${base}/api/generate`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, prompt: prompts[(i + n) % prompts.length],
                           options: { num_predict: 24, temperature: 0.8, seed: i * 1000 + n } }),
  });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = '', last = null;
  for await (const chunk of res.body) {
    if (ttft < 0) ttft = performance.now() - t0;
    buf += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const j = JSON.parse(line); // throws on a malformed line
      if (j.error) throw new Error(`error line: ${j.error}`);
      last = j;
    }
  }
  if (buf.trim() !== '') throw new Error(`trailing partial line: ${buf}`);
  if (!last || last.done !== true || !(last.eval_count > 0)) throw new Error('no final object');
  tokens += last.eval_count;
  ttfts.push(ttft);
}

const t0 = performance.now();
const rss = [rssKiB()];
const sampler = setInterval(() => rss.push(rssKiB()), 5000);
await Promise.all(Array.from({ length: conns }, async (_, i) => {
  for (let n = 0; performance.now() - t0 < duration; n++) {
    try {
      await one(i, n);
      ok++;
    } catch (e) {
      bad++;
      if (errors.length < 5) errors.push(String(e));
    }
  }
}));
clearInterval(sampler);
rss.push(rssKiB());
const secs = (performance.now() - t0) / 1000;
ttfts.sort((a, b) => a - b);
const pct = (p) => (ttfts.length ? ttfts[Math.min(ttfts.length - 1, Math.floor(p * ttfts.length))] : NaN);
console.log(`connections ${conns}, ${secs.toFixed(1)} s: ${ok} responses ok, ${bad} bad`);
console.log(`requests/s ${(ok / secs).toFixed(2)}, generated tokens/s ${(tokens / secs).toFixed(1)}`);
console.log(`TTFT p50 ${pct(0.5).toFixed(0)} ms, p99 ${pct(0.99).toFixed(0)} ms`);
console.log(`server RSS KiB every 5 s: ${rss.join(' ')}`);
for (const e of errors) console.log(`error: ${e}`);
process.exit(bad ? 1 : 0);
