// tests/e2e/serve_e2e.mjs: drives a running `llem serve` (address in LLEM_E2E_URL) with the
// official npm clients (ollama, openai) and raw fetch/sockets: generation and chat (streaming
// and not), list/show/ps, OpenAI chat/completions/models, options (seed + temperature 0
// reproducible, num_predict, stop), bad input (each followed by a request that must succeed),
// a slow client, 16 concurrent greedy streams against their solo answers, and a client that
// disconnects mid-stream. Prints one line per check; exits 1 if any failed.
import net from 'node:net';
import { Ollama } from 'ollama';
import OpenAI from 'openai';

const base = process.env.LLEM_E2E_URL;
const port = Number(new URL(base).port);
const ollama = new Ollama({ host: base });
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
const M = 'stories';      // stories260K (llama, SentencePiece, no chat template: plain fallback)
const Q = 'qwen';         // qwen2-tiny (byte-level BPE with ChatML tokens: ChatML fallback)
const greedy = { temperature: 0, seed: 42 };

let failed = 0;
let passed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function eq(a, b, msg) {
  if (a !== b) throw new Error(`${msg}: ${JSON.stringify(a)} !== ${JSON.stringify(b)}`);
}
async function alive() {
  const r = await fetch(`${base}/api/version`);
  eq(r.status, 200, 'server answers /api/version after the bad request');
  await r.json();
}
async function post(path, body, headers = {}) {
  const r = await fetch(`${base}${path}`, {
    method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...headers },
  });
  return { status: r.status, text: await r.text(), headers: r.headers };
}
async function genText(prompt, opts = {}, model = M) {
  const r = await ollama.generate({ model, prompt, stream: false, options: { ...greedy, ...opts } });
  return r;
}
async function streamText(prompt, opts = {}) {
  let text = '';
  let last = null;
  for await (const part of await ollama.generate({ model: M, prompt, stream: true,
                                                  options: { ...greedy, ...opts } })) {
    text += part.response;
    last = part;
  }
  return { text, last };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- Ollama client --------------------------------------------------------------------------
let soloText = '';
await check('generate (ollama, stream false): text, done, metrics', async () => {
  const r = await genText('Once upon a time', { num_predict: 16 });
  assert(r.response.length > 0, 'empty response');
  eq(r.done, true, 'done');
  eq(r.done_reason, 'length', 'done_reason');
  eq(r.eval_count, 16, 'eval_count = num_predict');
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration',
                   'eval_duration']) {
    assert(typeof r[k] === 'number', `missing ${k}`);
  }
  assert(Array.isArray(r.context) && r.context.length > r.prompt_eval_count, 'context tokens');
  soloText = r.response;
});
await check('seed + temperature 0 reproducible; the seed drives sampling', async () => {
  eq((await genText('Once upon a time', { num_predict: 16 })).response, soloText, 'greedy rerun');
  // Sampled runs are compared from the same cache state (keep_alive 0: each starts cold);
  // see docs/internals/server.md on sampled runs from different cache states.
  const opts = { num_predict: 16, temperature: 0.9, top_k: 1000, top_p: 1 };
  const run = async (seed) => (await ollama.generate({ model: M, prompt: 'Once upon a time',
    stream: false, keep_alive: 0, options: { ...opts, seed } })).response;
  const a = await run(7);
  eq(await run(7), a, 'same seed, same text');
  assert((await run(8)) !== a, 'another seed gives another text');
});
await check('generate streaming equals the merged answer', async () => {
  const { text, last } = await streamText('Once upon a time', { num_predict: 16 });
  eq(text, soloText, 'streamed text');
  eq(last.done, true, 'final chunk done');
  eq(last.eval_count, 16, 'final eval_count');
});
await check('num_predict honoured', async () => {
  const r = await genText('Once upon a time', { num_predict: 3 });
  eq(r.eval_count, 3, 'eval_count');
  eq(r.done_reason, 'length', 'done_reason');
});
await check('stop sequence honoured', async () => {
  const words = soloText.split(' ').filter((w) => w.length >= 3);
  assert(words.length >= 3, `need words in ${JSON.stringify(soloText)}`);
  const stop = words[2];
  const want = soloText.slice(0, soloText.indexOf(stop));
  const r = await genText('Once upon a time', { num_predict: 16, stop: [stop] });
  eq(r.response, want, `text before stop ${JSON.stringify(stop)}`);
  eq(r.done_reason, 'stop', 'done_reason');
});
await check('chat (ollama) streaming and not, plain and ChatML fallbacks', async () => {
  for (const model of [M, Q]) {
    const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }];
    const r = await ollama.chat({ model, messages, stream: false,
                                  options: { ...greedy, num_predict: 8 } });
    eq(r.message.role, 'assistant', 'role');
    eq(r.done, true, 'done');
    let text = '';
    for await (const p of await ollama.chat({ model, messages, stream: true,
                                              options: { ...greedy, num_predict: 8 } })) {
      text += p.message.content;
    }
    eq(text, r.message.content, `${model}: streamed chat equals merged chat`);
  }
});
await check('list, show, ps', async () => {
  const l = await ollama.list();
  assert(l.models.some((m) => m.name === 'stories:latest'), 'stories in /api/tags');
  const s = await ollama.show({ model: M });
  eq(s.details.family, 'llama', 'family');
  eq(s.details.format, 'gguf', 'format');
  assert(s.model_info['llama.block_count'] === 5, 'model_info block_count');
  const p = await ollama.ps();
  assert(p.models.some((m) => m.name === 'stories:latest'), 'stories loaded in /api/ps');
});
await check('embed returns one unit-norm vector per input', async () => {
  const r = await ollama.embed({ model: M, input: ['hi', 'there'] });
  eq(r.embeddings.length, 2, 'embeddings');
  const norm = Math.sqrt(r.embeddings[0].reduce((a, v) => a + v * v, 0));
  assert(Math.abs(norm - 1) < 1e-3, 'unit norm');
});
await check('keep_alive 0 with an empty prompt unloads; an empty prompt loads', async () => {
  const u = await ollama.generate({ model: M, prompt: '', keep_alive: 0 });
  eq(u.done_reason, 'unload', 'done_reason');
  assert(!(await ollama.ps()).models.some((m) => m.name === 'stories:latest'), 'still loaded');
  const l = await ollama.generate({ model: M, prompt: '', keep_alive: '10m' });
  eq(l.done_reason, 'load', 'done_reason');
  assert((await ollama.ps()).models.some((m) => m.name === 'stories:latest'), 'not loaded');
});

// ---- OpenAI client --------------------------------------------------------------------------
await check('openai chat.completions non-streaming and streaming with usage', async () => {
  const messages = [{ role: 'user', content: 'Hello' }];
  const r = await openai.chat.completions.create({ model: M, messages, temperature: 0,
                                                   max_tokens: 8, seed: 1 });
  eq(r.object, 'chat.completion', 'object');
  const full = r.choices[0].message.content;
  eq(r.usage.completion_tokens, 8, 'usage.completion_tokens');
  eq(r.choices[0].finish_reason, 'length', 'finish_reason');
  const stream = await openai.chat.completions.create({
    model: M, messages, temperature: 0, max_tokens: 8, seed: 1, stream: true,
    stream_options: { include_usage: true } });
  let text = '';
  let usage = null;
  let finish = null;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    if (c.choices.length) {
      text += c.choices[0].delta.content || '';
      finish = c.choices[0].finish_reason || finish;
    }
  }
  eq(text, full, 'streamed content');
  eq(finish, 'length', 'finish_reason in stream');
  assert(usage && usage.completion_tokens === 8, 'usage chunk');
});
await check('openai completions non-streaming and streaming', async () => {
  const r = await openai.completions.create({ model: M, prompt: 'Once upon a time',
                                             temperature: 0, max_tokens: 16 });
  eq(r.choices[0].text, soloText, 'completion text equals /api/generate');
  let text = '';
  for await (const c of await openai.completions.create({
    model: M, prompt: 'Once upon a time', temperature: 0, max_tokens: 16, stream: true })) {
    text += c.choices[0].text;
  }
  eq(text, soloText, 'streamed completion');
});
await check('openai models list and retrieve (and 404)', async () => {
  const l = await openai.models.list();
  assert(l.data.some((m) => m.id === 'stories:latest'), 'stories in /v1/models');
  eq((await openai.models.retrieve('stories')).id, 'stories', 'retrieve');
  try {
    await openai.models.retrieve('no-such-model');
    throw new Error('retrieve of an unknown model succeeded');
  } catch (e) {
    eq(e.status, 404, 'unknown model status');
  }
});

// ---- bad input ------------------------------------------------------------------------------
const bad = [
  ['malformed JSON', '/api/generate', '{"model": "stories", "prompt": ', 400],
  ['trailing garbage', '/api/chat', '{"model":"stories","messages":[]} x', 400],
  ['not an object', '/api/generate', '[1,2,3]', 400],
  ['invalid UTF-8', '/api/generate', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 400],
  ['prompt is a number', '/api/generate', { model: M, prompt: 5 }, 400],
  ['stream is a string', '/api/generate', { model: M, prompt: 'x', stream: 'yes' }, 400],
  ['temperature is a string', '/api/generate', { model: M, prompt: 'x', options: { temperature: 'hot' } }, 400],
  ['num_predict is fractional', '/api/generate', { model: M, prompt: 'x', options: { num_predict: 1.5 } }, 400],
  ['stop is a number', '/api/generate', { model: M, prompt: 'x', options: { stop: 3 } }, 400],
  ['messages not an array', '/api/chat', { model: M, messages: 'hi' }, 400],
  ['message content is an object', '/api/chat', { model: M, messages: [{ role: 'user', content: {} }] }, 400],
  ['bad keep_alive', '/api/generate', { model: M, prompt: 'x', keep_alive: '5 parsecs' }, 400],
  ['unknown model', '/api/generate', { model: 'no-such-model', prompt: 'x' }, 404],
  ['unknown model (chat)', '/api/chat', { model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }, 404],
  ['openai unknown model', '/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] }, 404],
  ['openai bad max_tokens', '/v1/completions', { model: M, prompt: 'x', max_tokens: 'many' }, 400],
  ['missing model', '/api/generate', { prompt: 'x' }, 400],
  ['empty body', '/api/generate', '', 400],
  ['pull of an invalid name', '/api/pull', { model: '../x' }, 400],
];
for (const [name, path, body, want] of bad) {
  await check(`bad input: ${name} -> ${want}`, async () => {
    const r = await post(path, body);
    eq(r.status, want, 'status');
    const j = JSON.parse(r.text);
    assert(j.error, `no error field in ${r.text}`);
    if (path.startsWith('/v1/')) assert(typeof j.error.message === 'string', 'OpenAI error shape');
    else assert(typeof j.error === 'string', 'Ollama error shape');
    await alive();
  });
}
await check('CORS: allowed origin echoed, other origin 403', async () => {
  const ok = await fetch(`${base}/api/version`, { headers: { Origin: 'http://localhost:3000' } });
  eq(ok.headers.get('access-control-allow-origin'), 'http://localhost:3000', 'ACAO');
  const no = await fetch(`${base}/api/version`, { headers: { Origin: 'http://evil.example' } });
  eq(no.status, 403, 'foreign origin');
  await alive();
});
await check('slow client (one byte a second) is cut off; server keeps serving', async () => {
  const closed = await new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const req = 'POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
                'Content-Length: 200\r\n\r\n{"model":"stories","prompt":"';
    let i = 0;
    const t0 = Date.now();
    const timer = setInterval(() => {
      if (i < req.length) sock.write(req[i++]);
    }, 1000);
    sock.on('data', () => {});
    sock.on('error', () => {});
    sock.on('close', () => { clearInterval(timer); resolve(Date.now() - t0); });
    setTimeout(() => { clearInterval(timer); sock.destroy(); resolve(-1); }, 30000);
  });
  assert(closed > 0, 'the server never closed the drip-feeding connection');
  await alive();
});

// ---- concurrency ------------------------------------------------------------------------------
const prompts = Array.from({ length: 16 }, (_, i) =>
  ['Once upon a time', 'The cat', 'Lily and Ben', 'One day', 'The sun', 'A little bird',
   'Tom had a', 'The big dog', 'Mom said', 'In the park', 'She wanted', 'The boy',
   'There was a', 'The girl saw', 'Sam liked', 'They went'][i]);
await check('16 concurrent greedy streams each get their solo text', async () => {
  const solo = [];
  for (const p of prompts) solo.push((await genText(p, { num_predict: 12 })).response);
  const together = await Promise.all(prompts.map(async (p) => {
    let text = '';
    for await (const part of await new Ollama({ host: base }).generate({
      model: M, prompt: p, stream: true, options: { ...greedy, num_predict: 12 } })) {
      text += part.response;
    }
    return text;
  }));
  for (let i = 0; i < prompts.length; i++) eq(together[i], solo[i], `client ${i}`);
});
await check('a client that disconnects mid-stream frees its slot; others unaffected', async () => {
  const other = (await genText('The cat', { num_predict: 12 })).response;
  const ctl = new AbortController();
  const res = await fetch(`${base}/api/generate`, {
    method: 'POST', signal: ctl.signal, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: M, prompt: 'Once upon a time', options: { num_predict: 100000, temperature: 0 } }) });
  const reader = res.body.getReader();
  const otherRun = genText('The cat', { num_predict: 12 });
  let got = 0;
  while (got < 3) {
    const { done } = await reader.read();
    assert(!done, 'stream ended early');
    got++;
  }
  let busy = (await ollama.ps()).models.find((m) => m.name === 'stories:latest').slots_busy;
  assert(busy >= 1, 'a slot is busy while streaming');
  ctl.abort();
  eq((await otherRun).response, other, 'concurrent request unaffected');
  for (let i = 0; i < 100; i++) {
    busy = (await ollama.ps()).models.find((m) => m.name === 'stories:latest').slots_busy;
    if (busy === 0) break;
    await sleep(100);
  }
  eq(busy, 0, 'slots busy after the client left');
  const m = await (await fetch(`${base}/metrics`)).text();
  assert(/llem_slots_busy\{model="stories"\} 0/.test(m), 'metrics show the slot free');
});
await check('/metrics: requests, TTFT histogram, KV cells, per-op time', async () => {
  const m = await (await fetch(`${base}/metrics`)).text();
  for (const re of [/llem_http_requests_total\{route="\/api\/generate",code="200"\} \d+/,
                    /llem_http_requests_total\{route="\/api\/generate",code="400"\} \d+/,
                    /llem_server_ttft_seconds_bucket\{le="[^"]+"\} \d+/,
                    /llem_server_token_latency_seconds_count \d+/,
                    /llem_kv_cells_total\{model="stories"\} \d+/, /llem_queue_depth \d+/,
                    /llem_model_memory_bytes\{model="stories"\} \d+/, /llem_op_seconds/]) {
    assert(re.test(m), `missing ${re}`);
  }
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
