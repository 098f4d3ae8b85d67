/**
 * `npm run bench`: the OCI benchmark (Granary beside CNCF Distribution, see bench/oci.ts) — prints the table
 * and writes it to bench/results/oci-latest.md — then the proxy benchmark (bench/proxy.ts, 1 GiB cold/warm
 * through a proxy vs the upstream directly; BENCH_PROXY_BYTES) into bench/results/proxy-latest.md. A quick run: `BENCH_BYTES=128M npm run bench`.
 * Then the scale-out benchmark (bench/scale.ts → bench/results/scale-latest.md).
 * `BENCH_ONLY=oci,proxy,scale` picks some of the three (default: all).
 * (bench/blobs.ts, the blob store alone, runs by itself: `node bench/blobs.ts [MiB]`.)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hasRegistry, optionsFromEnv, resultsPath, runOciBench, toMarkdown } from './oci.ts';
import { proxyMarkdown, proxyResultsPath, runProxyBench } from './proxy.ts';

const only = new Set((process.env.BENCH_ONLY || 'oci,proxy,scale').split(',').map((x) => x.trim()));
const options = optionsFromEnv();
if ((only.has('oci') || only.has('proxy')) && !hasRegistry(options)) {
  console.error(`${options.registryBin} is not on PATH: apt-get install -y docker-registry (or set DOCKER_REGISTRY)`);
  process.exit(2);
}
if (only.has('oci')) {
  const report = await runOciBench(options);
  const md = toMarkdown(report);
  process.stdout.write('\n' + md);
  const file = resultsPath();
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, md);
  console.error(`\nwritten to ${file}`);
  if (report.distribution.errors.length || report.granary.errors.length) process.exitCode = 1;
}

// The proxy benchmark (bench/proxy.ts): cold and warm pulls through a Granary proxy vs the upstream directly.
if (only.has('proxy')) {
  const proxyMd = proxyMarkdown(await runProxyBench());
  process.stdout.write('\n' + proxyMd);
  await writeFile(proxyResultsPath(), proxyMd);
  console.error(`written to ${proxyResultsPath()}`);
}

// Scale-out (bench/scale.ts): 1 vs 2 nodes on PostgreSQL + S3, SQLite vs PostgreSQL → bench/results/scale-latest.md.
if (only.has('scale')) await (await import('./scale.ts')).main();
