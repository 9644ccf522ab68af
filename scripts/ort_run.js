#!/usr/bin/env node
// ort_run.js - runs an ONNX model with ONNX Runtime (npm package onnxruntime-node) as the
// independent reference of the model-zoo check: inputs from .npy files, every output
// written as DIR/<safe output name>.npy, one JSON line of timings on stdout.
// Usage: node ort_run.js --ort-dir DIR MODEL.onnx OUTDIR NAME=FILE.npy ...
//   --ort-dir: the npm prefix where onnxruntime-node is installed (DIR/node_modules/...)
//   --threads N: intra-op threads (default 2, CI's core count)
//   --opt basic|all|disabled: graph optimization level (default basic: op-by-op semantics)
//   --profile N: then N more runs with ONNX Runtime's profiler on (threads not spinning, as
//     mixrt bench's peer), each node's median kernel time written to OUTDIR/ort_layers.json
//     ({"runs": N, "layers": [{"name", "op", "ms"}]} in the order of a run), for
//     scripts/ort_layers.py
'use strict';
const fs = require('fs');
const path = require('path');

const NPY_TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<f2': ['float16', Uint16Array],
  '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array], '<i2': ['int16', Int16Array],
  '|i1': ['int8', Int8Array], '|u1': ['uint8', Uint8Array], '<u2': ['uint16', Uint16Array],
  '<u4': ['uint32', Uint32Array], '<u8': ['uint64', BigUint64Array], '|b1': ['bool', Uint8Array],
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${file}: cannot parse the header ${header}`);
  if (fortran[1] === 'True') throw new Error(`${file}: Fortran-order arrays are not supported`);
  const t = NPY_TYPES[descr[1]];
  if (!t) throw new Error(`${file}: dtype ${descr[1]} is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const off = start + hlen;
  const bytes = n * t[1].BYTES_PER_ELEMENT;
  if (buf.length < off + bytes) throw new Error(`${file}: truncated (${buf.length - off} of ${bytes} data bytes)`);
  // Copy into a fresh, aligned buffer: typed arrays need element alignment.
  const ab = buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + bytes);
  let data = new t[1](ab);
  if (t[0] === 'bool') data = Uint8Array.from(data, (v) => (v ? 1 : 0));
  return { type: t[0], dims, data };
}

const OUT_DESCR = {
  float32: '<f4', float64: '<f8', float16: '<f2', int64: '<i8', int32: '<i4', int16: '<i2', int8: '|i1',
  uint8: '|u1', uint16: '<u2', uint32: '<u4', uint64: '<u8', bool: '|b1',
};

function writeNpy(file, type, dims, data) {
  const descr = OUT_DESCR[type];
  if (!descr) throw new Error(`output ${file}: ORT type ${type} cannot be written as .npy`);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  let body;
  if (type === 'float16' && !(data instanceof Uint16Array)) {
    // Some versions hand float16 out as Float16Array; keep the raw bits.
    body = Buffer.from(new Uint16Array(data.buffer, data.byteOffset, data.length).buffer.slice(0));
  } else {
    body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

function safeName(name) {
  const s = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  return s === '' || s === '.' || s === '..' ? '_' : s;
}

// N profiled runs after the first; the trace's node events of those runs reduced to each node's
// median kernel time, in the order the last run met them.
async function profileLayers(session, feeds, outDir, n) {
  for (let i = 0; i < n; i++) await session.run(feeds);
  await session.endProfiling();
  const traces = fs.readdirSync(outDir).filter((f) => f.startsWith('ort_trace') && f.endsWith('.json'))
    .map((f) => path.join(outDir, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (!traces.length) throw new Error(`no profile trace was written into ${outDir}`);
  const times = new Map(), ops = new Map();
  for (const e of JSON.parse(fs.readFileSync(traces[0], 'utf8'))) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    if (!times.has(name)) times.set(name, []);
    times.get(name).push(e.dur / 1000);
    ops.set(name, e.args && e.args.op_name);
  }
  const layers = [];
  for (const [name, t] of times) {
    const last = t.slice(-n).sort((a, b) => a - b); /* the first run's event dropped */
    layers.push({ name, op: ops.get(name), ms: last[last.length >> 1] });
  }
  fs.writeFileSync(path.join(outDir, 'ort_layers.json'), JSON.stringify({ runs: n, layers }, null, 1));
}

async function main() {
  const args = process.argv.slice(2);
  let ortDir = null, threads = 2, opt = 'basic', profileRuns = 0;
  const pos = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--ort-dir') ortDir = args[++i];
    else if (args[i] === '--threads') threads = Number(args[++i]);
    else if (args[i] === '--opt') opt = args[++i];
    else if (args[i] === '--profile') profileRuns = Number(args[++i]);
    else pos.push(args[i]);
  }
  if (pos.length < 2) {
    console.error('usage: node ort_run.js --ort-dir DIR MODEL.onnx OUTDIR NAME=FILE.npy ...');
    process.exit(2);
  }
  const modPath = ortDir ? path.resolve(ortDir, 'node_modules', 'onnxruntime-node') : 'onnxruntime-node';
  let ort;
  try {
    ort = require(modPath);
  } catch (e) {
    console.error(`ort_run: cannot load onnxruntime-node from ${modPath}: ${e.message}`);
    process.exit(3);
  }
  const [model, outDir, ...feedArgs] = pos;
  const feeds = {};
  for (const a of feedArgs) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new Error(`input '${a}' is not NAME=FILE.npy`);
    const x = readNpy(a.slice(eq + 1));
    feeds[a.slice(0, eq)] = new ort.Tensor(x.type, x.data, x.dims);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const options = {
    executionProviders: ['cpu'], graphOptimizationLevel: opt, intraOpNumThreads: threads, interOpNumThreads: 1,
  };
  if (profileRuns > 0) {
    options.enableProfiling = true;
    options.profileFilePrefix = path.join(outDir, 'ort_trace');
    options.extra = { session: { intra_op: { allow_spinning: '0' } } };
  }
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(model, options);
  const t1 = process.hrtime.bigint();
  const results = await session.run(feeds);
  const t2 = process.hrtime.bigint();
  if (profileRuns > 0) await profileLayers(session, feeds, outDir, profileRuns);
  for (const name of session.outputNames) {
    const t = results[name];
    writeNpy(path.join(outDir, safeName(name) + '.npy'), t.type, t.dims.map(Number), t.data);
  }
  console.log(JSON.stringify({
    ort_version: ort.env.versions ? ort.env.versions.common : null,
    load_s: Number(t1 - t0) / 1e9, run_s: Number(t2 - t1) / 1e9, outputs: session.outputNames,
  }));
}

main().catch((e) => {
  console.error(`ort_run: error: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
