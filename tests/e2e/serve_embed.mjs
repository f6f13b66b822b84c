// tests/e2e/serve_embed.mjs: embeddings through a running `llem serve` (address in
// LLEM_E2E_URL, started with a 256-token context) with the official npm clients: ollama
// `embed` (string, batch, dimensions, truncation, empty input) and legacy `embeddings`, openai
// `embeddings.create` (default base64, float, token arrays, usage), errors through the clients
// (unknown model, bad input, too long without truncate), and concurrent requests against their
// solo answers. Prints one line per check; exits 1 if any failed.
import { Ollama } from 'ollama';
import OpenAI from 'openai';

const base = process.env.LLEM_E2E_URL;
const ollama = new Ollama({ host: base });
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
const Q = 'qwen';     // qwen2-tiny-Q8_0, n_embd 256
const S = 'stories';  // stories260K (llama)

let failed = 0;
async function check(name, fn) {
  try {
    await fn();
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
function norm(v) {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}
function unit(v, msg) {
  assert(v.every(Number.isFinite), `${msg}: non-finite component`);
  assert(Math.abs(norm(v) - 1) < 1e-5, `${msg}: norm ${norm(v)}`);
}
function maxDiff(a, b) {
  eq(a.length, b.length, 'vector lengths');
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}
async function alive() {
  const r = await fetch(`${base}/api/version`);
  eq(r.status, 200, 'server answers after the bad request');
  await r.json();
}
async function status(promise) {
  try {
    await promise;
    return 200;
  } catch (e) {
    return e.status_code ?? e.status ?? -1;
  }
}

let hello; // /api/embed of "hello world" on Q

await check('ollama embed: one string', async () => {
  const r = await ollama.embed({ model: Q, input: 'hello world' });
  eq(r.model, Q, 'model echoed');
  eq(r.embeddings.length, 1, 'one vector');
  eq(r.embeddings[0].length, 256, 'n_embd components');
  unit(r.embeddings[0], 'embedding');
  assert(r.prompt_eval_count > 0, `prompt_eval_count ${r.prompt_eval_count}`);
  assert(r.total_duration > 0, 'total_duration');
  assert(typeof r.load_duration === 'number', 'load_duration');
  hello = r.embeddings[0];
});

await check('ollama embed: batch is order-preserving and batch-independent', async () => {
  const r = await ollama.embed({ model: Q, input: ['a quiet river', 'hello world', 'a quiet river'] });
  eq(r.embeddings.length, 3, 'three vectors');
  r.embeddings.forEach((v, i) => unit(v, `embedding ${i}`));
  eq(maxDiff(r.embeddings[0], r.embeddings[2]), 0, 'same text, same vector');
  eq(maxDiff(r.embeddings[1], hello), 0, 'same as embedded alone');
  assert(maxDiff(r.embeddings[0], r.embeddings[1]) > 1e-3, 'different texts differ');
  const one = await ollama.embed({ model: Q, input: 'a quiet river' });
  eq(maxDiff(one.embeddings[0], r.embeddings[0]), 0, 'alone vs in a batch');
});

await check('ollama embed: dimensions cut and renormalise', async () => {
  const r = await ollama.embed({ model: Q, input: 'hello world', dimensions: 8 });
  eq(r.embeddings[0].length, 8, 'eight components');
  unit(r.embeddings[0], 'cut embedding');
  const n = norm(hello.slice(0, 8));
  assert(maxDiff(r.embeddings[0], hello.slice(0, 8).map((x) => x / n)) < 1e-6, 'prefix renormalised');
});

await check('ollama embed: empty input loads and answers []', async () => {
  const r = await ollama.embed({ model: S, input: [] });
  eq(r.embeddings.length, 0, 'no vectors');
  const ps = await ollama.ps();
  assert(ps.models.some((m) => m.name.startsWith(S)), 'model loaded');
});

await check('ollama embed: truncation to the context (256)', async () => {
  const long = 'the river runs far '.repeat(200);
  const r = await ollama.embed({ model: Q, input: long });
  eq(r.prompt_eval_count, 256, 'cut to the context');
  unit(r.embeddings[0], 'truncated embedding');
  eq(await status(ollama.embed({ model: Q, input: long, truncate: false })), 400,
     'truncate false -> 400');
  await alive();
});

await check('ollama embeddings (legacy)', async () => {
  const r = await ollama.embeddings({ model: Q, prompt: 'hello world' });
  eq(r.embedding.length, 256, 'n_embd components');
  assert(maxDiff(r.embedding, hello) < 1e-6, 'same vector as /api/embed');
  const e = await ollama.embeddings({ model: Q, prompt: '' });
  eq(e.embedding.length, 0, 'empty prompt -> []');
});

await check('ollama embed on a llama model', async () => {
  const r = await ollama.embed({ model: S, input: ['once upon a time', 'the end'] });
  eq(r.embeddings.length, 2, 'two vectors');
  r.embeddings.forEach((v, i) => unit(v, `embedding ${i}`));
});

await check('openai embeddings.create: default (base64) and float', async () => {
  const r = await openai.embeddings.create({ model: Q, input: 'hello world' });
  eq(r.object, 'list', 'object');
  eq(r.model, Q, 'model');
  eq(r.data.length, 1, 'one item');
  eq(r.data[0].object, 'embedding', 'item object');
  eq(r.data[0].index, 0, 'index');
  assert(maxDiff(Array.from(r.data[0].embedding), hello) < 1e-6, 'same vector (base64 decoded)');
  assert(r.usage.prompt_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens, 'usage');
  const f = await openai.embeddings.create({ model: Q, input: ['x y z', 'hello world'],
                                             encoding_format: 'float' });
  eq(f.data.length, 2, 'two items');
  eq(f.data[1].index, 1, 'second index');
  assert(maxDiff(f.data[1].embedding, hello) < 1e-6, 'float vector');
});

await check('openai embeddings.create: token arrays and dimensions', async () => {
  const r = await openai.embeddings.create({ model: Q, input: [[100, 200], [300]],
                                             encoding_format: 'float', dimensions: 16 });
  eq(r.data.length, 2, 'two items');
  eq(r.data[0].embedding.length, 16, 'dimensions');
  unit(r.data[0].embedding, 'token-array embedding');
  eq(r.usage.prompt_tokens, 3, 'tokens counted');
});

await check('errors through the clients', async () => {
  eq(await status(ollama.embed({ model: 'no-such-model', input: 'x' })), 404, 'unknown model');
  await alive();
  eq(await status(ollama.embed({ model: Q, input: [1, 2] })), 400, 'numbers on /api/embed');
  await alive();
  eq(await status(openai.embeddings.create({ model: 'no-such-model', input: 'x' })), 404,
     'openai unknown model');
  eq(await status(openai.embeddings.create({ model: Q, input: 'x', encoding_format: 'hex' })), 400,
     'openai bad encoding_format');
  eq(await status(openai.embeddings.create({ model: Q, input: [[1, 2, 1e9]] })), 400,
     'openai token outside the vocabulary');
  await alive();
});

await check('8 concurrent embed requests equal their solo answers', async () => {
  const texts = Array.from({ length: 8 }, (_, i) => `text number ${i} about ${'x'.repeat(i)}`);
  const solo = [];
  for (const t of texts) solo.push((await ollama.embed({ model: Q, input: t })).embeddings[0]);
  const all = await Promise.all(texts.map((t) => ollama.embed({ model: Q, input: [t, 'hello world'] })));
  all.forEach((r, i) => {
    eq(maxDiff(r.embeddings[0], solo[i]), 0, `request ${i}`);
    eq(maxDiff(r.embeddings[1], hello), 0, `request ${i} second input`);
  });
});

if (failed) {
  console.log(`${failed} check(s) failed`);
  process.exit(1);
}
