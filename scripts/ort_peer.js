#!/usr/bin/env node
// ort_peer.js - the ONNX Runtime row of `mixrt bench --peer ort`: a long-lived child of
// mixrt that loads one model once and runs it on request, so that ORT is measured in the
// same interleaved rounds as mixrt's engines. Only session.run is timed (process.hrtime
// inside node), never the pipe round trip.
// Usage: node ort_peer.js --ort-dir DIR --threads N MODEL.onnx OUTDIR NAME=FILE.npy[:bfloat16] ...
// Protocol (one JSON object per line on stdout; requests one word per line on stdin):
//   start:   {"ready": true, "version": V, "outputs": [names]} or {"error": "..."} and exit 1
//   "first": runs once, writes output k as OUTDIR/out_<k>.npy, answers {"ms": T, "files": [...]}
//   "run":   {"ms": T}
//   "quit" or end of stdin: {"peak_rss_bytes": B} and exit 0
//   a failing run answers {"error": "..."} and exits 1.
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

// .npy descr -> [ORT type, typed array]
const NPY_IN = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<f2': ['float16', Uint16Array],
  '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array], '<i2': ['int16', Int16Array],
  '|i1': ['int8', Int8Array], '|u1': ['uint8', Uint8Array], '<u2': ['uint16', Uint16Array],
  '<u4': ['uint32', Uint32Array], '<u8': ['uint64', BigUint64Array], '|b1': ['bool', Uint8Array],
};
const NPY_OUT = {};
for (const [d, [t]] of Object.entries(NPY_IN)) NPY_OUT[t] = d;

function say(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function loadNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file} is not a .npy file`);
  const v1 = buf[6] === 1;
  const hlen = v1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = v1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape || /'fortran_order':\s*True/.test(header)) throw new Error(`${file}: unexpected header ${header}`);
  const kind = NPY_IN[descr[1]];
  if (!kind) throw new Error(`${file}: dtype ${descr[1]} is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const begin = hstart + hlen, nbytes = count * kind[1].BYTES_PER_ELEMENT;
  if (buf.length < begin + nbytes) throw new Error(`${file}: truncated`);
  // A fresh ArrayBuffer: typed arrays need their elements aligned.
  const data = new kind[1](buf.buffer.slice(buf.byteOffset + begin, buf.byteOffset + begin + nbytes));
  return { type: kind[0], dims, data };
}

function saveNpy(file, tensor) {
  const descr = NPY_OUT[tensor.type];
  if (!descr) throw new Error(`output type ${tensor.type} has no .npy form`);
  const dims = tensor.dims.map(Number);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  let d = tensor.data;
  if (tensor.type === 'bool') d = Uint8Array.from(d, (x) => (x ? 1 : 0));
  const body = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

async function main() {
  const argv = process.argv.slice(2);
  let ortDir = null, threads = 1;
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--ort-dir') ortDir = argv[++i];
    else if (argv[i] === '--threads') threads = Number(argv[++i]);
    else rest.push(argv[i]);
  }
  if (!ortDir || rest.length < 2 || !(threads >= 1)) throw new Error('usage: ort_peer.js --ort-dir DIR --threads N MODEL OUTDIR NAME=FILE.npy ...');
  let ort;
  try {
    ort = require(path.resolve(ortDir, 'node_modules', 'onnxruntime-node'));
  } catch (e) {
    throw new Error(`cannot load onnxruntime-node from ${ortDir}: ${e.message}`);
  }
  const [model, outDir, ...feedArgs] = rest;
  // ORT's defaults (all graph optimizations), with mixrt's thread count. Its pool's
  // workers would spin for work after each run, taking the cores from the mixrt row that
  // runs next in the round (measured: a 0.2 ms model's next row went to 8-50 ms on two
  // cores), so they sleep instead, as mixrt's own (OpenMP) workers soon do.
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: process.env.MIXRT_ORT_SPIN === '1' ? '1' : '0' } } },
  });
  const feeds = {};
  for (const a of feedArgs) {
    const eq = a.lastIndexOf('=');
    if (eq <= 0) throw new Error(`feed '${a}' is not NAME=FILE.npy`);
    let file = a.slice(eq + 1), type = null;
    const m = /^(.*):(bfloat16)$/.exec(file);
    if (m) [file, type] = [m[1], m[2]];
    const x = loadNpy(file);
    feeds[a.slice(0, eq)] = new ort.Tensor(type || x.type, x.data, x.dims);
  }
  say({ ready: true, version: ort.env && ort.env.versions ? ort.env.versions.common : null, outputs: session.outputNames });

  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    const req = line.trim();
    if (req === 'quit') break;
    if (req !== 'run' && req !== 'first') throw new Error(`unknown request '${req}'`);
    const t0 = process.hrtime.bigint();
    const results = await session.run(feeds);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (req === 'first') {
      fs.mkdirSync(outDir, { recursive: true });
      const files = [];
      // out_<k>.npy in the model's output order (the order mixrt lists them in), so no
      // name has to survive a file system.
      session.outputNames.forEach((name, k) => {
        const f = path.join(outDir, `out_${k}.npy`);
        saveNpy(f, results[name]);
        files.push(f);
      });
      say({ ms, files });
    } else {
      say({ ms });
    }
  }
  say({ peak_rss_bytes: peakRss() });
}

// This process's peak resident set: /proc/self/status VmHWM (its own address space), not
// resourceUsage().maxRSS, which on Linux starts from the parent's resident set at fork (the
// mixrt process that spawned this one, its models loaded).
function peakRss() {
  try {
    const m = /VmHWM:\s*(\d+)\s*kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch (e) { /* not Linux: the rusage figure below */ }
  return process.resourceUsage().maxRSS * 1024; // kilobytes
}

main().catch((e) => {
  say({ error: String(e && e.message ? e.message : e).replace(/\s+/g, ' ').trim() });
  process.exit(1);
});
