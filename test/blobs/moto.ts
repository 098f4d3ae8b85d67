/**
 * A second S3-protocol server for tests: moto's `moto_server` (Python, `pip install moto[server]`), on
 * 127.0.0.1 with a port it picks, with one bucket. It implements what s3rver lacks — UploadPartCopy,
 * ListMultipartUploads — so the multipart-copy path runs against a real server. Tests skip with a visible
 * reason when `moto_server` is not on PATH.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { hasClient } from '../clients/oci-layout.ts';

export interface TestMoto {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  client(): S3Client;
  stop(): Promise<void>;
}

/** Starts moto_server with an empty bucket, or returns a skip reason. */
export async function startMoto(bucket = 'granary-moto'): Promise<TestMoto | string> {
  if (!hasClient('moto_server')) return 'moto_server not on PATH (pip install "moto[server]")';
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const endpoint = await new Promise<string | null>((resolve) => {
    let seen = '';
    const onData = (d: Buffer): void => {
      seen += d.toString('utf8');
      const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
      if (m) resolve(m[1]);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => resolve(null));
    setTimeout(() => resolve(null), 30_000).unref();
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  if (endpoint === null) {
    await stop();
    return 'moto_server did not start on 127.0.0.1';
  }
  const server: TestMoto = {
    endpoint,
    bucket,
    region: 'us-east-1',
    accessKeyId: 'testing',
    secretAccessKey: 'testing',
    client: () =>
      new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
    stop,
  };
  const c = server.client();
  await c.send(new CreateBucketCommand({ Bucket: bucket }));
  c.destroy();
  return server;
}
