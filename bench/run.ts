/**
 * `npm run bench`: the OCI benchmark (Granary beside CNCF Distribution, see bench/oci.ts) — prints the table
 * and writes it to bench/results/oci-latest.md. A quick run: `BENCH_BYTES=128M npm run bench`.
 * (bench/blobs.ts, the blob store alone, runs by itself: `node bench/blobs.ts [MiB]`.)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hasRegistry, optionsFromEnv, resultsPath, runOciBench, toMarkdown } from './oci.ts';

const options = optionsFromEnv();
if (!hasRegistry(options)) {
  console.error(`${options.registryBin} is not on PATH: apt-get install -y docker-registry (or set DOCKER_REGISTRY)`);
  process.exit(2);
}
const report = await runOciBench(options);
const md = toMarkdown(report);
process.stdout.write('\n' + md);
const file = resultsPath();
await mkdir(dirname(file), { recursive: true });
await writeFile(file, md);
console.error(`\nwritten to ${file}`);
if (report.distribution.errors.length || report.granary.errors.length) process.exitCode = 1;
