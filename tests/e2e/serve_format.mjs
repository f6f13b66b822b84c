// tests/e2e/serve_format.mjs: structured output through the npm ollama and openai clients
// against `llem serve` (LLEM_E2E_URL; models from serve_tools.sh). Random-weight models, which
// emit garbage unconstrained, must answer JSON that parses and validates against the schema
// (Ollama `format`, OpenAI `response_format` json_schema / json_object), streamed or not, with a
// num_predict budget that forces completion; a thinking model gets the constraint after its
// thinking; unsupported schema features are a 400. Exits 1 if any check failed.
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import OpenAI from 'openai';

const base = process.env.LLEM_E2E_URL;
const ollama = new Ollama({ host: base });
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
const P = 'qplain'; // qwen2-tiny: no chat template (ChatML fallback), random weights
const K = 'qthink'; // Qwen3 template (thinking)

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

// A validator for the schema features used below (the test's own, independent of the server).
function validate(v, s, root = s, path = '$') {
  const fail = (msg) => { throw new Error(`${path}: ${msg} (value ${JSON.stringify(v)})`); };
  if (s.$ref) {
    const name = s.$ref.replace(/^#\/(\$defs|definitions)\//, '');
    return validate(v, (root.$defs ?? root.definitions)[name], root, path);
  }
  if (s.anyOf) {
    const errs = [];
    for (const alt of s.anyOf) {
      try { validate(v, alt, root, path); return; } catch (e) { errs.push(e.message); }
    }
    fail(`no anyOf branch matches: ${errs.join('; ')}`);
  }
  if ('const' in s && JSON.stringify(v) !== JSON.stringify(s.const)) fail('const');
  if (s.enum && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) fail('enum');
  const types = s.type ? [].concat(s.type) : null;
  const typeOf = (x) => x === null ? 'null' : Array.isArray(x) ? 'array'
    : typeof x === 'number' ? (Number.isInteger(x) ? 'integer' : 'number') : typeof x;
  if (types && !types.some((t) => t === typeOf(v) || (t === 'number' && typeOf(v) === 'integer'))) {
    fail(`type ${typeOf(v)}, want ${types}`);
  }
  if (typeof v === 'string') {
    const n = [...v].length;
    if (s.minLength !== undefined && n < s.minLength) fail('minLength');
    if (s.maxLength !== undefined && n > s.maxLength) fail('maxLength');
    if (s.pattern && !new RegExp(s.pattern, 'u').test(v)) fail(`pattern ${s.pattern}`);
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) fail('minimum');
    if (s.maximum !== undefined && v > s.maximum) fail('maximum');
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) fail('minItems');
    if (s.maxItems !== undefined && v.length > s.maxItems) fail('maxItems');
    if (s.items) v.forEach((x, i) => validate(x, s.items, root, `${path}[${i}]`));
  }
  if (typeOf(v) === 'object') {
    for (const k of s.required ?? []) if (!(k in v)) fail(`missing ${k}`);
    for (const [k, x] of Object.entries(v)) {
      if (s.properties && k in s.properties) validate(x, s.properties[k], root, `${path}.${k}`);
      else if (s.properties && s.additionalProperties !== true) fail(`extra key ${k}`);
    }
  }
}

const schemas = [
  { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
  { type: 'object', properties: { name: { type: 'string', maxLength: 12 },
    age: { type: 'integer', minimum: 0, maximum: 150 } }, required: ['name', 'age'] },
  { type: 'object', properties: { color: { enum: ['red', 'green', 'blue'] },
    kind: { const: 'paint' } }, required: ['color', 'kind'] },
  { type: 'object', properties: { tags: { type: 'array', items: { type: 'string', maxLength: 6 },
    minItems: 1, maxItems: 3 }, score: { type: 'number' } }, required: ['tags'] },
  { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Z]{2}-[0-9]{3}$' },
    note: { type: ['string', 'null'], maxLength: 20 } }, required: ['id', 'note'] },
  { $defs: { pt: { type: 'object', properties: { x: { type: 'integer' }, y: { type: 'integer' } },
    required: ['x', 'y'] } }, type: 'object',
    properties: { from: { $ref: '#/$defs/pt' }, to: { $ref: '#/$defs/pt' } },
    required: ['from', 'to'] },
  { type: 'object', properties: { shape: { anyOf: [
    { type: 'object', properties: { r: { type: 'integer' } }, required: ['r'] },
    { type: 'object', properties: { w: { type: 'integer' }, h: { type: 'integer' } },
      required: ['w', 'h'] }] } }, required: ['shape'] },
  { type: 'array', items: { type: 'object', properties: { k: { type: 'string', maxLength: 4 },
    v: { type: 'integer' } }, required: ['k', 'v'] }, minItems: 2, maxItems: 4 },
];
const msgs = [{ role: 'user', content: 'Answer in JSON.' }];
const NP = 120;

await check(`ollama chat format: ${schemas.length} schemas x 2 seeds validate`, async () => {
  for (const [i, schema] of schemas.entries()) {
    for (const seed of [1, 2]) {
      const r = await ollama.chat({ model: P, messages: msgs, format: schema, stream: false,
                                    options: { temperature: 1, seed, num_predict: NP } });
      let v;
      try { v = JSON.parse(r.message.content); } catch (e) {
        throw new Error(`schema ${i} seed ${seed}: not JSON: ${r.message.content}`);
      }
      validate(v, schema);
    }
  }
});

await check('ollama generate format (stream): merged chunks validate', async () => {
  const schema = schemas[1];
  let text = '';
  for await (const part of await ollama.generate({ model: P, prompt: 'JSON please', format: schema,
    stream: true, options: { temperature: 1, seed: 3, num_predict: NP } })) {
    text += part.response;
  }
  validate(JSON.parse(text), schema);
});

await check('ollama format "json": an object, even with a tiny num_predict', async () => {
  for (const np of [12, 60]) {
    const r = await ollama.chat({ model: P, messages: msgs, format: 'json', stream: false,
                                  options: { temperature: 1, seed: 5, num_predict: np } });
    const v = JSON.parse(r.message.content);
    assert.equal(typeof v, 'object');
    assert.ok(r.eval_count <= np, `eval_count ${r.eval_count} > num_predict ${np}`);
  }
});

await check(`openai response_format json_schema: ${schemas.length} schemas validate`, async () => {
  for (const [i, schema] of schemas.entries()) {
    const r = await openai.chat.completions.create({ model: P, messages: msgs, seed: 10 + i,
      max_tokens: NP, response_format: { type: 'json_schema',
        json_schema: { name: `s${i}`, schema, strict: true } } });
    validate(JSON.parse(r.choices[0].message.content), schema);
  }
});

await check('openai json_object (stream) parses', async () => {
  const s = await openai.chat.completions.create({ model: P, messages: msgs, seed: 4,
    max_tokens: NP, response_format: { type: 'json_object' }, stream: true });
  let text = '';
  for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(typeof JSON.parse(text), 'object');
});

await check('unconstrained output of the same model is not JSON (the constraint matters)',
            async () => {
  const r = await ollama.chat({ model: P, messages: msgs, stream: false,
                                options: { temperature: 1, seed: 1, num_predict: 40 } });
  assert.throws(() => JSON.parse(r.message.content));
});

await check('thinking model: format applies after the thinking (think true and false)',
            async () => {
  const schema = schemas[1];
  const on = await ollama.chat({ model: K, messages: msgs, format: schema, think: true,
    stream: false, options: { temperature: 1, seed: 1, num_predict: 160 } });
  assert.ok(on.message.thinking && on.message.thinking.length > 0, 'thinking present');
  validate(JSON.parse(on.message.content), schema);
  const off = await ollama.chat({ model: K, messages: msgs, format: schema, think: false,
    stream: false, options: { temperature: 1, seed: 1, num_predict: 160 } });
  assert.equal(off.message.thinking, undefined);
  validate(JSON.parse(off.message.content), schema);
  const oa = await openai.chat.completions.create({ model: K, messages: msgs, seed: 2,
    max_tokens: 160, reasoning_effort: 'medium',
    response_format: { type: 'json_schema', json_schema: { name: 'p', schema } } });
  assert.ok(oa.choices[0].message.reasoning_content.length > 0);
  validate(JSON.parse(oa.choices[0].message.content), schema);
});

await check('unsupported schema features -> 400 naming them, through both clients', async () => {
  const bad = { type: 'object', properties: { a: { type: 'integer', multipleOf: 3 } } };
  await assert.rejects(ollama.chat({ model: P, messages: msgs, format: bad, stream: false }),
                       (e) => e.status_code === 400 && /multipleOf/.test(e.error));
  await assert.rejects(openai.chat.completions.create({ model: P, messages: msgs,
    response_format: { type: 'json_schema', json_schema: { name: 'b', schema: { not: {} } } } }),
                       (e) => e.status === 400 && /not/.test(e.message));
  await assert.rejects(ollama.chat({ model: P, messages: msgs, format: 'yaml', stream: false }),
                       (e) => e.status_code === 400);
});

console.log(failed ? `${failed} check(s) failed` : 'all checks passed');
process.exit(failed ? 1 : 0);
