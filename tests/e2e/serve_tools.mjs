// tests/e2e/serve_tools.mjs: tool calls and thinking through the npm ollama and openai clients
// against `llem serve` (address in LLEM_E2E_URL; models from serve_tools.sh). The models have
// random weights, so each answer is scripted with llem's `grammar` field (GBNF forcing the exact
// text, as llama.cpp's server takes it); everything after sampling (runner pieces with special
// tokens, the template-detected parsers, the API shapes, streaming hold-back) is the real path.
// Prints one line per check; exits 1 if any failed.
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import OpenAI from 'openai';

const base = process.env.LLEM_E2E_URL;
const ollama = new Ollama({ host: base });
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
const T = 'qtools'; // Qwen2.5 template: Hermes <tool_call> tags
const K = 'qthink'; // Qwen3 template: <think> tags, enable_thinking, <tool_call> tags

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
const gbnf = (text) => `root ::= ${JSON.stringify(text)}\n`; // JSON escapes are GBNF escapes
const opts = { temperature: 1, seed: 7, num_predict: 400 };

const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', description: 'Time in a zone',
    parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } } },
];
const call1 = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';
const call2 = '<tool_call>\n{"name": "get_time", "arguments": {"tz": "CET"}}\n</tool_call>';
const twoCalls = gbnf(`Let me check. ${call1}\n${call2}`);
const user = [{ role: 'user', content: 'Weather and time in Paris?' }];
const leaky = /<|>|tool_call|\{|\}|get_weather/;

function checkCalls(calls, objArgs) {
  assert.equal(calls.length, 2, 'two tool calls');
  assert.equal(calls[0].function.name, 'get_weather');
  assert.equal(calls[1].function.name, 'get_time');
  const a0 = objArgs ? calls[0].function.arguments : JSON.parse(calls[0].function.arguments);
  const a1 = objArgs ? calls[1].function.arguments : JSON.parse(calls[1].function.arguments);
  assert.deepEqual(a0, { city: 'Paris' });
  assert.deepEqual(a1, { tz: 'CET' });
}

// ---- tool calls, Ollama ---------------------------------------------------------------------
let ollamaCalls = null;
await check('ollama chat: two <tool_call>s -> message.tool_calls (object arguments)', async () => {
  const r = await ollama.chat({ model: T, messages: user, tools, stream: false, options: opts,
                                grammar: twoCalls });
  checkCalls(r.message.tool_calls, true);
  assert.equal(r.message.content.trim(), 'Let me check.');
  assert.equal(r.done_reason, 'stop');
  ollamaCalls = r.message.tool_calls;
});

await check('ollama chat stream: tool calls parsed, no tag or JSON leaked into content', async () => {
  let content = '';
  const calls = [];
  let chunks = 0;
  for await (const part of await ollama.chat({ model: T, messages: user, tools, stream: true,
                                               options: opts, grammar: twoCalls })) {
    chunks++;
    assert.ok(!leaky.test(part.message.content), `leak in chunk: ${JSON.stringify(part.message)}`);
    content += part.message.content;
    calls.push(...(part.message.tool_calls ?? []));
  }
  // Text produced while the reader is busy reaches it as one piece (runner_task_next merges a
  // burst), so the count depends on timing: a streamed answer is at least one piece and the
  // final object. (Requiring > 5 failed about 1 run in 5 once decode got faster.)
  assert.ok(chunks >= 2, `streamed in ${chunks} chunks`);
  assert.equal(content.trim(), 'Let me check.');
  checkCalls(calls, true);
});

await check('ollama chat: tool results fed back through `tool` messages', async () => {
  assert.ok(ollamaCalls, 'needs the calls of the first check');
  const answer = 'It is sunny in Paris.';
  const turn = (weather) => [
    ...user,
    { role: 'assistant', content: '', tool_calls: ollamaCalls },
    { role: 'tool', tool_name: 'get_weather', content: weather },
    { role: 'tool', tool_name: 'get_time', content: '{"time": "12:00"}' },
  ];
  const short = await ollama.chat({ model: T, messages: turn('{"sky": "sun"}'), tools,
                                    stream: false, options: opts, grammar: gbnf(answer) });
  assert.equal(short.message.content, answer);
  assert.equal(short.message.tool_calls, undefined);
  const long = await ollama.chat({ model: T, stream: false, options: opts, grammar: gbnf(answer),
    messages: turn(`{"sky": "${'sunny and warm, '.repeat(20)}"}`), tools });
  // the tool result is in the prompt: 20 more phrases make it longer by at least 40 tokens
  assert.ok(long.prompt_eval_count >= short.prompt_eval_count + 40,
            `prompt ${short.prompt_eval_count} -> ${long.prompt_eval_count} tokens`);
});

await check('ollama chat: unknown tool name stays content (never dropped)', async () => {
  const text = '<tool_call>\n{"name": "launch_rocket", "arguments": {}}\n</tool_call>';
  const r = await ollama.chat({ model: T, messages: user, tools, stream: false, options: opts,
                                grammar: gbnf(text) });
  assert.equal(r.message.tool_calls, undefined);
  assert.ok(r.message.content.includes('launch_rocket'), JSON.stringify(r.message));
});

// ---- tool calls, OpenAI ---------------------------------------------------------------------
let oaiCalls = null;
await check('openai chat: tool_calls with ids and string arguments, finish_reason tool_calls',
            async () => {
  const r = await openai.chat.completions.create({ model: T, messages: user, tools, seed: 7,
    max_tokens: 400, grammar: twoCalls });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  checkCalls(c.message.tool_calls, false);
  for (const tc of c.message.tool_calls) {
    assert.equal(tc.type, 'function');
    assert.match(tc.id, /^call_[a-z0-9]{8}$/);
  }
  assert.notEqual(c.message.tool_calls[0].id, c.message.tool_calls[1].id);
  assert.equal(c.message.content.trim(), 'Let me check.');
  oaiCalls = c.message.tool_calls;
});

await check('openai chat stream: tool_call deltas, no leak, finish_reason tool_calls', async () => {
  const stream = await openai.chat.completions.create({ model: T, messages: user, tools, seed: 7,
    max_tokens: 400, grammar: twoCalls, stream: true });
  let content = '';
  let finish = null;
  const calls = [];
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (!ch) continue;
    const d = ch.delta ?? {};
    if (d.content) {
      assert.ok(!leaky.test(d.content), `leak in delta: ${JSON.stringify(d)}`);
      content += d.content;
    }
    for (const tc of d.tool_calls ?? []) {
      if (!calls[tc.index]) calls[tc.index] = { id: tc.id, function: { name: '', arguments: '' } };
      calls[tc.index].function.name += tc.function?.name ?? '';
      calls[tc.index].function.arguments += tc.function?.arguments ?? '';
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(content.trim(), 'Let me check.');
  assert.equal(finish, 'tool_calls');
  checkCalls(calls, false);
});

await check('openai chat: tool results round trip (tool_call_id, string arguments)', async () => {
  assert.ok(oaiCalls, 'needs the calls of the first openai check');
  const answer = 'Sunny, and it is noon.';
  const turn = (weather) => [
    ...user,
    { role: 'assistant', content: null, tool_calls: oaiCalls },
    { role: 'tool', tool_call_id: oaiCalls[0].id, content: weather },
    { role: 'tool', tool_call_id: oaiCalls[1].id, content: '{"time": "12:00"}' },
  ];
  const short = await openai.chat.completions.create({ model: T, messages: turn('{"sky": "sun"}'),
    tools, seed: 7, max_tokens: 100, grammar: gbnf(answer) });
  assert.equal(short.choices[0].message.content, answer);
  assert.equal(short.choices[0].finish_reason, 'stop');
  const long = await openai.chat.completions.create({ model: T, tools, seed: 7, max_tokens: 100,
    messages: turn(`{"sky": "${'sunny and warm, '.repeat(20)}"}`), grammar: gbnf(answer) });
  assert.ok(long.usage.prompt_tokens >= short.usage.prompt_tokens + 40,
            `prompt ${short.usage.prompt_tokens} -> ${long.usage.prompt_tokens} tokens`);
});

// ---- thinking -------------------------------------------------------------------------------
const thought = '<think>\nThe user greets me.\n</think>\n\nHello there!';
const hi = [{ role: 'user', content: 'hi' }];

await check('ollama chat think:true: thinking in message.thinking, never in content', async () => {
  const r = await ollama.chat({ model: K, messages: hi, think: true, stream: false, options: opts,
                                grammar: gbnf(thought) });
  assert.equal(r.message.thinking.trim(), 'The user greets me.');
  assert.equal(r.message.content, 'Hello there!');
});

await check('ollama chat stream think: no tag or thinking leaked into content', async () => {
  let content = '';
  let thinking = '';
  for await (const part of await ollama.chat({ model: K, messages: hi, think: true, stream: true,
                                               options: opts, grammar: gbnf(thought) })) {
    assert.ok(!/<|>|greets/.test(part.message.content), JSON.stringify(part.message));
    assert.ok(!/<|>/.test(part.message.thinking ?? ''), JSON.stringify(part.message));
    content += part.message.content;
    thinking += part.message.thinking ?? '';
  }
  assert.equal(content, 'Hello there!');
  assert.equal(thinking.trim(), 'The user greets me.');
});

await check('ollama chat think:false: the template switch is used, thinking dropped', async () => {
  const off = await ollama.chat({ model: K, messages: hi, think: false, stream: false,
                                  options: opts, grammar: gbnf(thought) });
  assert.equal(off.message.content, 'Hello there!');
  assert.equal(off.message.thinking, undefined);
  // enable_thinking=false makes Qwen3's template write an empty think block into the prompt
  const on = await ollama.chat({ model: K, messages: hi, think: true, stream: false,
                                 options: opts, grammar: gbnf(thought) });
  assert.ok(off.prompt_eval_count > on.prompt_eval_count,
            `prompt ${on.prompt_eval_count} (think) vs ${off.prompt_eval_count} (no think)`);
});

await check('ollama generate think: response and thinking separated', async () => {
  const r = await ollama.generate({ model: K, prompt: 'hi', think: true, stream: false,
                                    options: opts, grammar: gbnf(thought) });
  assert.equal(r.response, 'Hello there!');
  assert.equal(r.thinking.trim(), 'The user greets me.');
});

await check('ollama: think levels only for harmony models, think on a non-thinker -> 400',
            async () => {
  await assert.rejects(ollama.chat({ model: K, messages: hi, think: 'low', stream: false }),
                       (e) => e.status_code === 400);
  await assert.rejects(ollama.chat({ model: T, messages: hi, think: true, stream: false }),
                       (e) => e.status_code === 400 && /thinking/.test(e.error));
});

await check('openai chat reasoning_effort: reasoning_content, content clean', async () => {
  const r = await openai.chat.completions.create({ model: K, messages: hi, seed: 7,
    max_tokens: 200, reasoning_effort: 'high', grammar: gbnf(thought) });
  const m = r.choices[0].message;
  assert.equal(m.content, 'Hello there!');
  assert.equal(m.reasoning_content.trim(), 'The user greets me.');
  const s = await openai.chat.completions.create({ model: K, messages: hi, seed: 7,
    max_tokens: 200, reasoning_effort: 'high', grammar: gbnf(thought), stream: true });
  let content = '';
  let reasoning = '';
  for await (const chunk of s) {
    const d = chunk.choices[0]?.delta ?? {};
    assert.ok(!/<|>|greets/.test(d.content ?? ''), JSON.stringify(d));
    content += d.content ?? '';
    reasoning += d.reasoning_content ?? '';
  }
  assert.equal(content, 'Hello there!');
  assert.equal(reasoning.trim(), 'The user greets me.');
});

await check('thinking + tool call in one turn (Qwen3 template)', async () => {
  const text = `<think>\nI need the weather.\n</think>\n\n${call1}`;
  const r = await ollama.chat({ model: K, messages: user, tools, think: true, stream: false,
                                options: opts, grammar: gbnf(text) });
  assert.equal(r.message.thinking.trim(), 'I need the weather.');
  assert.equal(r.message.tool_calls.length, 1);
  assert.deepEqual(r.message.tool_calls[0].function.arguments, { city: 'Paris' });
  assert.equal(r.message.content.trim(), '');
});

await check('bad grammar -> 400 through both clients', async () => {
  await assert.rejects(ollama.chat({ model: T, messages: hi, stream: false, grammar: 'root ::= (' }),
                       (e) => e.status_code === 400);
  await assert.rejects(openai.chat.completions.create({ model: T, messages: hi,
                                                        grammar: 'root ::= undefined-rule' }),
                       (e) => e.status === 400);
});

console.log(failed ? `${failed} check(s) failed` : 'all checks passed');
process.exit(failed ? 1 : 0);
