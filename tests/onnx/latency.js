// ONNX Runtime (CPU) latency on the cases of a `knot export onnx --reference` file, beside knot's
// own forward time for the same inputs when the file has it (--reference-timing N).
//
//   node latency.js MODEL.onnx REFERENCE.json [--runs N] [--threads T]
// Prints one line per case: the input shapes, ONNX Runtime's median of N runs (after one warm-up)
// with T intra-op threads (default 1), knot's median and the ratio knot / ONNX Runtime.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function toTensor(j) {
  if (j.dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(j.data.map(BigInt)), j.dims);
  return new ort.Tensor('float32', Float32Array.from(j.data), j.dims);
}

async function main() {
  const args = process.argv.slice(2);
  let runs = 10, threads = 1;
  const pos = [];
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--runs') runs = Number(args[++i]);
    else if (args[i] === '--threads') threads = Number(args[++i]);
    else pos.push(args[i]);
  }
  if (pos.length !== 2 || !(runs >= 1) || !(threads >= 1)) {
    console.error('usage: latency.js MODEL.onnx REFERENCE.json [--runs N] [--threads T]');
    process.exit(1);
  }
  const ref = JSON.parse(fs.readFileSync(pos[1], 'utf8'));
  const session = await ort.InferenceSession.create(pos[0], {intraOpNumThreads: threads, interOpNumThreads: 1});
  for (const [i, c] of ref.cases.entries()) {
    const feeds = {};
    for (const [name, t] of Object.entries(c.inputs)) feeds[name] = toTensor(t);
    await session.run(feeds);  // warm-up
    const ms = [];
    for (let r = 0; r < runs; ++r) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    ms.sort((a, b) => a - b);
    const med = ms[Math.floor(ms.length / 2)];
    const shapes = Object.entries(c.inputs).map(([n, t]) => `${n}[${t.dims}]`).join(' ');
    const knot = c.knot_ms !== undefined ? `, knot ${c.knot_ms.toFixed(2)} ms, knot/ORT ${(c.knot_ms / med).toFixed(2)}` : '';
    console.log(`latency: ${ref.part} case ${i} (${shapes}): ONNX Runtime ${med.toFixed(2)} ms (${threads} threads)${knot}`);
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
