/**
 * The OCI benchmark's report: the Granary-vs-Distribution table with each goal and whether it was met, the
 * ceiling table, and any errors — the text `npm run bench` prints and writes to bench/results/oci-latest.md.
 */
import { MiB } from './http-client.ts';
import type { Ceiling } from './oci-ceiling.ts';
import type { ServerResult } from './oci-measure.ts';
import type { BenchOptions } from './oci-options.ts';

export interface BenchReport {
  options: BenchOptions;
  ceiling: Ceiling;
  distribution: ServerResult;
  granary: ServerResult;
  distributionVersion: string;
  startedAt: string;
  node: string;
  cpu: string;
}

const fmt = (v: number | undefined, digits = 0) => (v === undefined ? 'n/a' : v.toFixed(digits));

export function toMarkdown(r: BenchReport): string {
  type Row = [metric: string, key: keyof ServerResult, goal: number, higherIsBetter: boolean, unit: string];
  const rows: Row[] = [
    ['monolithic upload (POST + PUT)', 'monolithicMBps', 3, true, 'MB/s'],
    [`chunked upload (${r.options.chunkBytes / MiB} MiB PATCHes)`, 'chunkedMBps', 3, true, 'MB/s'],
    ['blob download', 'downloadMBps', 1, true, 'MB/s'],
    [`manifest GET, ${r.options.connections} connections`, 'manifestGetRps', 3, true, 'req/s'],
    [`blob HEAD, ${r.options.connections} connections`, 'blobHeadRps', 3, true, 'req/s'],
    [`tags list, ${r.options.connections} connections`, 'tagsListRps', 3, true, 'req/s'],
    [`peak RSS (VmHWM) after the ${r.options.bytes / MiB} MiB pushes`, 'peakRssMiB', 1, false, 'MiB'],
    ['RSS when idle, before the pushes (context)', 'idleRssMiB', 0, false, 'MiB'],
  ];
  const lines = [
    `# OCI benchmark — Granary vs CNCF Distribution ${r.distributionVersion}`,
    '',
    `${r.startedAt} · ${r.cpu} · Node ${r.node} · blob ${r.options.bytes / MiB} MiB · ` +
      `requests/s runs: ${r.options.connections} keep-alive connections, ≤ ${r.options.seconds} s or ${r.options.maxRequests} requests each · ` +
      `MB = 10^6 bytes. Data in ${r.options.dir}. Granary with auth (admin API token as Bearer), Distribution without. ` +
      'Clients, servers and the load generator share this machine.',
    '',
    '| metric | unit | Distribution | Granary | Granary / Distribution | goal | met |',
    '|---|---|---:|---:|---:|---|---|',
  ];
  for (const [metric, key, goal, higher, unit] of rows) {
    const dv = r.distribution[key] as number | undefined;
    const gv = r.granary[key] as number | undefined;
    const ratio = dv && gv !== undefined ? gv / dv : undefined;
    const met = goal === 0 || ratio === undefined ? '' : (higher ? ratio >= goal : ratio <= goal) ? 'yes' : 'no';
    const target = goal === 0 ? '' : `${higher ? '≥' : '≤'} ${goal}×`;
    lines.push(`| ${metric} | ${unit} | ${fmt(dv)} | ${fmt(gv)} | ${fmt(ratio, 2)}× | ${target} | ${met} |`);
  }
  lines.push(
    '',
    '## Ceiling (same run, same machine)',
    '',
    '| what | value |',
    '|---|---:|',
    `| sha256 of ${r.options.bytes / MiB} MiB, node:crypto | ${fmt(r.ceiling.sha256MBps)} MB/s |`,
    `| raw loopback HTTP upload, node:http → node:http sink | ${fmt(r.ceiling.httpUploadMBps)} MB/s |`,
    `| raw loopback HTTP download, node:http | ${fmt(r.ceiling.httpDownloadMBps)} MB/s |`,
    `| raw node:http small GETs, ${r.options.connections} connections (load generator's own limit) | ${fmt(r.ceiling.httpSmallGetRps)} req/s |`,
    `| streamed write + fdatasync of ${r.options.bytes / MiB} MiB in the data directory (the disk's durable-write limit) | ${fmt(r.ceiling.durableWriteMBps)} MB/s |`,
  );
  const errors = [...r.distribution.errors.map((e) => `Distribution — ${e}`), ...r.granary.errors.map((e) => `Granary — ${e}`)];
  if (errors.length) lines.push('', '## Errors', '', ...errors.map((e) => `- ${e}`));
  return lines.join('\n') + '\n';
}
