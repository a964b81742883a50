// Checks an ONNX model exported by knot against knot's own outputs, with ONNX Runtime (CPU).
//
//   node check.js MODEL.onnx REFERENCE.json [--rtol R] [--float64]
//       runs every case of REFERENCE.json (written by `knot export onnx --reference`) and compares
//       each output with knot's: max |onnx − knot| / max |knot| must be <= R (default 1e-4), and the
//       shapes must be equal.
//   node check.js --greedy ENCODER.onnx DECODER.onnx REFERENCE.json [--cached]
//       greedy-translates every sentence of REFERENCE.json's "greedy" section with the exported
//       encoder and decoder (argmax, ties to the lower id, stop at <eos>) and requires the same ids
//       as knot's greedy decoding. The decoder runs the whole prefix each step, or with --cached (a
//       decoder exported with --kv-cache) only the new token, its keys and values fed back.
//   node check.js --generate LM.onnx REFERENCE.json [--cached]
//       greedily continues every prompt of REFERENCE.json's "generate" section with an exported
//       language model (the whole prefix each step, or with --cached only the new token and the fed-back
//       keys and values), stopping where knot does (the stop id, max_new_tokens, a full context), and
//       requires knot's ids.
// Exits 1 on the first mismatch, after printing what differed; prints one line per check.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function fail(msg) {
  console.error(`check.js: FAIL: ${msg}`);
  process.exit(1);
}

function toTensor(j, float64) {
  const n = j.dims.reduce((a, b) => a * b, 1);
  if (j.data.length !== n) fail(`reference tensor has ${j.data.length} values for dims [${j.dims}]`);
  if (j.dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(j.data.map(BigInt)), j.dims);
  if (float64) return new ort.Tensor('float64', Float64Array.from(j.data), j.dims);
  return new ort.Tensor('float32', Float32Array.from(j.data), j.dims);
}

function ids(t) {
  return new ort.Tensor('int64', BigInt64Array.from(t.flat().map(BigInt)), [t.length, t[0].length]);
}

async function checkCases(modelPath, refPath, rtol, float64) {
  const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
  const session = await ort.InferenceSession.create(modelPath);
  if (!ref.cases || ref.cases.length === 0) fail(`${refPath} has no cases`);
  let worst = 0;
  for (const [i, c] of ref.cases.entries()) {
    const feeds = {};
    for (const [name, t] of Object.entries(c.inputs)) feeds[name] = toTensor(t, float64);
    const out = await session.run(feeds);
    for (const [name, want] of Object.entries(c.outputs)) {
      const got = out[name];
      if (!got) fail(`case ${i}: the model has no output '${name}'`);
      if (got.dims.join(',') !== want.dims.join(','))
        fail(`case ${i}: output '${name}' has shape [${got.dims}], knot's has [${want.dims}]`);
      let maxDiff = 0, maxRef = 0;
      for (let k = 0; k < want.data.length; ++k) {
        const d = Math.abs(Number(got.data[k]) - want.data[k]);
        if (!(d <= maxDiff)) maxDiff = d;  // NaN propagates as a failure
        maxRef = Math.max(maxRef, Math.abs(want.data[k]));
      }
      const rel = maxDiff / Math.max(maxRef, 1e-30);
      const shapes = Object.entries(c.inputs).map(([n, t]) => `${n}[${t.dims}]`).join(' ');
      console.log(`case ${i} (${shapes}): ${name}[${want.dims}] max|diff| ${maxDiff.toExponential(2)}, ` +
                  `relative ${rel.toExponential(2)} (limit ${rtol})`);
      if (!(rel <= rtol)) fail(`case ${i}: output '${name}' differs from knot's: relative ${rel} > ${rtol}`);
      worst = Math.max(worst, rel);
    }
  }
  console.log(`check.js: OK: ${ref.cases.length} cases of part '${ref.part}', worst relative difference ${worst.toExponential(2)}`);
}

async function checkGreedy(encPath, decPath, refPath, cached) {
  const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
  const g = ref.greedy;
  if (!g || !g.sentences || g.sentences.length === 0) fail(`${refPath} has no greedy section (use --reference-sentences)`);
  const enc = await ort.InferenceSession.create(encPath);
  const dec = await ort.InferenceSession.create(decPath);
  for (const [i, s] of g.sentences.entries()) {
    const src = ids([s.src_ids.length ? s.src_ids : [g.eos]]);
    const memory = (await enc.run({src_ids: src})).memory;
    const out = [];
    const prefix = [g.bos];
    // --cached: every past_* input starts empty (batch 1, its heads, 0 positions, its head size).
    const past = {};
    if (cached)
      for (const name of dec.inputNames.filter((n) => n.startsWith('past_'))) {
        const meta = dec.inputMetadata.find ? dec.inputMetadata.find((m) => m.name === name) : null;
        const shape = meta && meta.shape ? meta.shape : null;
        if (!shape) fail(`cannot read the shape of decoder input ${name}`);
        past[name] = new ort.Tensor('float32', new Float32Array(0), [1, shape[1], 0, shape[3]]);
      }
    for (let t = 0; t < g.max_length; ++t) {
      const res = await dec.run({tgt_ids: ids([prefix]), memory, src_ids: src, ...past});
      const logits = res.logits;
      if (cached)
        for (const name of Object.keys(past)) past[name] = res[name.replace('past_', 'present_')];
      const V = logits.dims[2], off = (logits.dims[1] - 1) * V;
      let best = 0;
      for (let v = 1; v < V; ++v) if (logits.data[off + v] > logits.data[off + best]) best = v;
      if (best === g.eos) break;
      out.push(best);
      prefix.push(best);
    }
    const same = out.length === s.ids.length && out.every((v, k) => v === s.ids[k]);
    console.log(`greedy ${i}${cached ? ' (KV cache)' : ''}: ${out.length} tokens ${same ? 'equal to' : 'DIFFER from'} knot's (${s.ids.length})`);
    if (!same) fail(`sentence ${i}: ONNX Runtime gives [${out}], knot [${s.ids}]`);
  }
  console.log(`check.js: OK: ${g.sentences.length} greedy translations equal knot's`);
}

// Empty past_* tensors (batch 1, 0 positions) for every cache input of a session.
function emptyPast(session) {
  const past = {};
  for (const name of session.inputNames.filter((n) => n.startsWith('past_'))) {
    const meta = session.inputMetadata.find((m) => m.name === name);
    if (!meta || !meta.shape) fail(`cannot read the shape of input ${name}`);
    past[name] = new ort.Tensor('float32', new Float32Array(0), [1, meta.shape[1], 0, meta.shape[3]]);
  }
  return past;
}

function argmaxLastRow(logits) {
  const V = logits.dims[2], off = (logits.dims[1] - 1) * V;
  let best = 0;
  for (let v = 1; v < V; ++v) if (logits.data[off + v] > logits.data[off + best]) best = v;
  return best;
}

async function checkGenerate(modelPath, refPath, cached) {
  const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
  const g = ref.generate;
  if (!g || !g.prompts || g.prompts.length === 0) fail(`${refPath} has no generate section (use --reference-sentences)`);
  const session = await ort.InferenceSession.create(modelPath);
  for (const [i, p] of g.prompts.entries()) {
    const all = p.prompt_ids.slice(), out = [];
    const past = cached ? emptyPast(session) : {};
    let feed = all.slice();
    for (let t = 0; t < g.max_new_tokens; ++t) {
      const res = await session.run({input_ids: ids([feed]), ...past});
      for (const name of Object.keys(past)) past[name] = res[name.replace('past_', 'present_')];
      const tok = argmaxLastRow(res.logits);
      if (tok === g.stop_id) break;
      out.push(tok);
      all.push(tok);
      if (t + 1 === g.max_new_tokens || all.length >= g.max_length) break;
      feed = cached ? [tok] : all.slice();
    }
    const same = out.length === p.ids.length && out.every((v, k) => v === p.ids[k]);
    console.log(`generate ${i}${cached ? ' (KV cache)' : ''}: ${out.length} tokens ${same ? 'equal to' : 'DIFFER from'} knot's (${p.ids.length})`);
    if (!same) fail(`prompt ${i}: ONNX Runtime gives [${out}], knot [${p.ids}]`);
  }
  console.log(`check.js: OK: ${g.prompts.length} greedy continuations equal knot's`);
}

async function main() {
  const args = process.argv.slice(2);
  let rtol = 1e-4, float64 = false;
  const pos = [];
  let greedy = false, cached = false, generate = false;
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--rtol') rtol = Number(args[++i]);
    else if (args[i] === '--float64') float64 = true;
    else if (args[i] === '--greedy') greedy = true;
    else if (args[i] === '--cached') cached = true;
    else if (args[i] === '--generate') generate = true;
    else pos.push(args[i]);
  }
  if (generate) {
    if (pos.length !== 2) fail('usage: check.js --generate LM.onnx REFERENCE.json [--cached]');
    await checkGenerate(pos[0], pos[1], cached);
  } else if (greedy) {
    if (pos.length !== 3) fail('usage: check.js --greedy ENCODER.onnx DECODER.onnx REFERENCE.json [--cached]');
    await checkGreedy(pos[0], pos[1], pos[2], cached);
  } else {
    if (pos.length !== 2) fail('usage: check.js MODEL.onnx REFERENCE.json [--rtol R] [--float64]');
    await checkCases(pos[0], pos[1], rtol, float64);
  }
}

main().catch((e) => fail(e.stack || String(e)));
