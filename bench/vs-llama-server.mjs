// bench/vs-llama-server.mjs: the client half of bench/vs-llama-server.sh. Both servers are
// already running (LLEM_URL: `llem serve`, LLAMA_URL: llama-server, same GGUF); this runs the
// tests ROUNDS times, alternating which server goes first, and prints a markdown table.
// Node 20, fetch only. Requests are streaming and greedy: llem /api/generate (raw, options
// num_predict/temperature 0/seed), llama-server /completion (n_predict, temperature 0, seed,
// ignore_eos, cache_prompt). Generated tokens are counted from the final objects (eval_count,
// tokens_predicted); TTFT is the client's time to the first chunk carrying text.
const env = process.env;
const LLEM_URL = env.LLEM_URL;
const LLAMA_URL = env.LLAMA_URL;
const MODEL = env.LLEM_MODEL_NAME || 'bench';
const ROUNDS = Number(env.ROUNDS || 2);
const N_PREDICT = Number(env.N_PREDICT || 128);
const STREAMS = (env.STREAMS || '1 4 16').split(/\s+/).filter(Boolean).map(Number);
const PROMPT_TOKENS = Number(env.PROMPT_TOKENS || 1000);
const TTFT_PREDICT = 4; // tokens asked for in the TTFT requests: only the first one is timed
const SEED = 42;

// Distinct short prompts for the throughput streams: story openings, on which a greedy
// continuation rarely ends within N_PREDICT tokens (llem has no way to ignore EOS).
const NAMES = ['Lily', 'Tom', 'Anna', 'Ben', 'Mia', 'Sam', 'Zoe', 'Max', 'Ella', 'Leo', 'Ruby',
               'Jack', 'Nora', 'Finn', 'Ivy', 'Oscar', 'Lucy', 'Hugo', 'Rosa', 'Theo'];
const PLACES = ['a small village by the sea', 'a busy city', 'a quiet forest', 'the mountains',
                'an old castle', 'a farm near the river', 'a desert town', 'a snowy valley'];
function shortPrompt(i) {
    return `Chapter ${i + 1}. Once upon a time, in ${PLACES[i % PLACES.length]}, there lived a ` +
           `child named ${NAMES[i % NAMES.length]} who`;
}

// A deterministic pseudo-English text of about n tokens for the TTFT test; `salt` makes every
// round's text different from its first word on, so a "cold" prompt shares nothing with any
// earlier request.
function rng(seed) {
    let s = seed >>> 0 || 1;
    return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}
const SUBJ = ['The engineer', 'A farmer', 'The old librarian', 'My neighbour', 'The captain',
              'A young student', 'The committee', 'Our teacher', 'The baker', 'A traveller'];
const VERB = ['carefully examined', 'quickly repaired', 'wrote about', 'talked about',
              'painted', 'measured', 'described', 'forgot', 'ordered', 'remembered'];
const OBJ = ['the broken bridge', 'a letter from the city', 'the northern garden', 'the map',
             'an unusual machine', 'the river after the storm', 'the morning market',
             'a box of old photographs', 'the winter schedule', 'the last train'];
const TAIL = ['before sunrise.', 'in the afternoon.', 'with great patience.', 'for the third time.',
              'without saying a word.', 'while it was raining.', 'after a long journey.',
              'because nobody else would.'];
function longText(salt, sentences) {
    const r = rng(salt * 7919 + 17);
    const pick = (a) => a[Math.floor(r() * a.length)];
    let t = `Report ${salt}-${Math.floor(r() * 1e6)}.`;
    for (let i = 0; i < sentences; i++) {
        t += ` ${pick(SUBJ)} ${pick(VERB)} ${pick(OBJ)} ${pick(TAIL)}`;
    }
    return t;
}
async function countTokens(text) {
    const res = await fetch(`${LLAMA_URL}/tokenize`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ content: text }),
    });
    if (!res.ok) throw new Error(`llama-server /tokenize: ${res.status}`);
    return (await res.json()).tokens.length + 1; // + BOS
}
async function promptOfTokens(salt, n) {
    let lo = 1, hi = 2 * n; // sentences; ~10 tokens each, so hi is plenty
    while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((await countTokens(longText(salt, mid))) >= n) hi = mid; else lo = mid + 1;
    }
    return longText(salt, lo);
}

// One streaming request. Returns {ttft_ms, total_ms, tokens, prompt_n}.
async function generate(kind, prompt, nPredict) {
    const t0 = performance.now();
    let url, body;
    if (kind === 'llem') {
        url = `${LLEM_URL}/api/generate`;
        body = { model: MODEL, prompt, raw: true, stream: true, keep_alive: -1,
                 options: { num_predict: nPredict, temperature: 0, seed: SEED } };
    } else {
        url = `${LLAMA_URL}/completion`;
        body = { prompt, n_predict: nPredict, temperature: 0, seed: SEED, ignore_eos: true,
                 cache_prompt: true, stream: true };
    }
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                   body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`${kind}: status ${res.status}: ${await res.text()}`);
    const dec = new TextDecoder();
    let buf = '', ttft = -1, last = null;
    const onObj = (j) => {
        if (j.error) throw new Error(`${kind}: error in stream: ${JSON.stringify(j.error)}`);
        const text = kind === 'llem' ? j.response : j.content;
        if (ttft < 0 && typeof text === 'string' && text.length > 0) ttft = performance.now() - t0;
        last = j;
    };
    for await (const chunk of res.body) {
        buf += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
            let line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (kind !== 'llem') {
                if (!line.startsWith('data: ')) continue; // SSE blank separators
                line = line.slice(6);
            }
            if (line) onObj(JSON.parse(line));
        }
    }
    const total = performance.now() - t0;
    if (!last) throw new Error(`${kind}: empty stream`);
    if (kind === 'llem') {
        if (!last.done) throw new Error('llem: stream ended without done');
        return { ttft_ms: ttft, total_ms: total, tokens: last.eval_count,
                 prompt_n: last.prompt_eval_count, reason: last.done_reason };
    }
    if (!last.stop) throw new Error('llama-server: stream ended without stop');
    return { ttft_ms: ttft, total_ms: total, tokens: last.tokens_predicted,
             prompt_n: last.timings ? last.timings.prompt_n : last.tokens_evaluated,
             reason: last.stop_type };
}

// n concurrent streams of N_PREDICT tokens: aggregate tokens/s over the whole wall time.
async function throughput(kind, n) {
    const t0 = performance.now();
    const rs = await Promise.all(Array.from({ length: n }, (_, i) =>
        generate(kind, shortPrompt(i), N_PREDICT)));
    const secs = (performance.now() - t0) / 1000;
    const tokens = rs.reduce((a, r) => a + r.tokens, 0);
    return { tps: tokens / secs, tokens, min_tokens: Math.min(...rs.map((r) => r.tokens)),
             secs };
}

// The same ~PROMPT_TOKENS prompt twice: the first TTFT is cold, the second has it cached.
async function ttft(kind, prompt) {
    const cold = await generate(kind, prompt, TTFT_PREDICT);
    const cached = await generate(kind, prompt, TTFT_PREDICT);
    return { cold: cold.ttft_ms, cached: cached.ttft_ms, prompt_n: cold.prompt_n,
             cached_prompt_n: cached.prompt_n };
}

const stats = (v) => {
    if (!v || !v.length) return { min: NaN, med: NaN, max: NaN };
    const s = [...v].sort((a, b) => a - b);
    const m = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    return { min: s[0], med: m, max: s[s.length - 1] };
};
const fmt = (x, d) => (Number.isFinite(x) ? x.toFixed(d) : 'nan');
const fmtS = (s, d) => `${fmt(s.min, d)} / ${fmt(s.med, d)} / ${fmt(s.max, d)}`;

const kinds = ['llem', 'llama'];
const res = { llem: {}, llama: {} };
const add = (k, key, v) => { (res[k][key] ||= []).push(v); };
const log = (s) => process.stderr.write(`${s}\n`);

// Interrupted (SIGINT/SIGTERM): print the table of the rounds done so far.
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => { console.log(`(interrupted by ${sig}: partial results)`); report(); process.exit(1); });
}
for (const k of kinds) await generate(k, 'Hello', 2); // load (llem loads on first use), warm up
for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? ['llama', 'llem'] : ['llem', 'llama'];
    for (const n of STREAMS) {
        for (const k of order) {
            const t = await throughput(k, n);
            add(k, `tput${n}`, t.tps);
            add(k, `mintok${n}`, t.min_tokens);
            log(`round ${r + 1} ${k} x${n}: ${t.tokens} tokens in ${t.secs.toFixed(1)} s = ` +
                `${t.tps.toFixed(2)} tok/s (fewest tokens in a stream: ${t.min_tokens})`);
        }
    }
    const prompt = await promptOfTokens(1000 + r, PROMPT_TOKENS);
    for (const k of order) {
        const t = await ttft(k, prompt);
        add(k, 'cold', t.cold);
        add(k, 'cached', t.cached);
        add(k, 'speedup', t.cold / t.cached);
        add(k, 'prompt_n', t.prompt_n);
        log(`round ${r + 1} ${k} TTFT: cold ${t.cold.toFixed(0)} ms, cached ${t.cached.toFixed(0)} ms ` +
            `(prompt ${t.prompt_n} tokens; reported for the cached request: ${t.cached_prompt_n})`);
    }
}

function report() {
    console.log(`| test | llem min / median / max | llama-server min / median / max | llem / llama-server (medians) |`);
    console.log(`| --- | --- | --- | ---: |`);
    for (const n of STREAMS) {
        const a = stats(res.llem[`tput${n}`]), b = stats(res.llama[`tput${n}`]);
        console.log(`| aggregate decode tok/s, ${n} stream${n > 1 ? 's' : ''} x ${N_PREDICT} | ${fmtS(a, 2)} | ` +
                    `${fmtS(b, 2)} | ${fmt(a.med / b.med, 2)}x |`);
    }
    const pn = (k) => Math.min(...(res[k].prompt_n || [NaN]));
    for (const [key, label] of [['cold', 'cold'], ['cached', 'prefix cached']]) {
        const a = stats(res.llem[key]), b = stats(res.llama[key]);
        console.log(`| TTFT ms, ${PROMPT_TOKENS}-token prompt, ${label} | ${fmtS(a, 0)} | ${fmtS(b, 0)} | ` +
                    `${fmt(a.med / b.med, 2)}x (time: lower is better) |`);
    }
    {
        const a = stats(res.llem.speedup), b = stats(res.llama.speedup);
        console.log(`| TTFT cold / cached | ${fmtS(a, 1)} | ${fmtS(b, 1)} | |`);
    }
    console.log('');
    const mt = (k) => STREAMS.map((n) => `x${n}: ${Math.min(...(res[k][`mintok${n}`] || [NaN]))}`).join(', ');
    console.log(`Fewest tokens generated by one stream (asked ${N_PREDICT}): llem ${mt('llem')}; ` +
                `llama-server ${mt('llama')}.`);
    console.log(`TTFT prompt length as counted by the servers: llem ${pn('llem')}, llama-server ${pn('llama')} tokens.`);
}

report();
