/**
 * Resumable upload sessions of the s3 driver, kept entirely in the bucket so any node can continue any session:
 * `_uploads/<id>/_meta` marks the session, and each append is one part object `_uploads/<id>/<offset>` (16-digit
 * zero-padded, so key order is byte order). A part object appears only once its chunk fully arrived (a failed
 * append stores nothing), so the session size is the sum of the contiguous parts from offset 0 — one listing,
 * no separate size record to keep in sync.
 *
 * `commit` streams the parts in order through the driver's verified put (hash → temp object → copy to the content
 * key), then deletes the session. Appends, commits and aborts of one session are serialised in-process; concurrent
 * appends to one session from different nodes are not guarded here (a session belongs to one client, and the
 * metadata layer records its state); the digest check at commit refuses any content they could mix up.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Digest, PutResult, UploadStore } from './types.ts';
import { parseDigest, type DigestAlgorithm } from './digest.ts';
import { DigestMismatchError, SizeMismatchError, UploadExistsError, UploadNotFoundError, UploadOffsetError } from './errors.ts';
import { isUploadId } from './base.ts';
import { deleteKey, isNotFound, keyedLock, listObjects, type S3Context, type S3Object } from './s3-common.ts';
import { S3ObjectSink } from './s3-writer.ts';

/** The driver's verified put, shared with `commit`. */
export type WriteBlob = (
  data: Readable,
  opts: { algorithm: DigestAlgorithm; expectedDigest?: Digest; expectedSize?: number; maxBytes?: number; signal?: AbortSignal },
) => Promise<PutResult>;

interface Session {
  /** The meta object exists. */
  exists: boolean;
  /** Contiguous parts from offset 0, in order. */
  parts: { key: string; offset: number; size: number }[];
  size: number;
  modifiedAt: number;
  /** Every key under the session prefix (meta, parts, strays). */
  keys: string[];
}

/** Folds the objects under one session prefix (in key order) into its state. */
function toSession(ctx: S3Context, id: string, objects: S3Object[]): Session {
  const base = ctx.layout.session(id);
  const session: Session = { exists: false, parts: [], size: 0, modifiedAt: 0, keys: [] };
  for (const o of objects) {
    session.keys.push(o.key);
    session.modifiedAt = Math.max(session.modifiedAt, o.modifiedAt);
    const name = o.key.slice(base.length);
    if (o.key === ctx.layout.sessionMeta(id)) {
      session.exists = true;
      continue;
    }
    const offset = ctx.layout.partOffset(name);
    if (offset !== null && offset === session.size && o.size > 0) {
      session.parts.push({ key: o.key, offset, size: o.size });
      session.size += o.size;
    }
  }
  return session;
}

export function createS3Uploads(ctx: S3Context, writeBlob: WriteBlob) {
  const { client, bucket, layout } = ctx;
  const withLock = keyedLock();

  async function read(id: string): Promise<Session> {
    const objects: S3Object[] = [];
    for await (const o of listObjects(ctx, layout.session(id))) objects.push(o);
    return toSession(ctx, id, objects);
  }

  /** Deletes a session: the meta object first, so it stops existing before its parts go. */
  async function remove(session: Session, id: string): Promise<void> {
    const meta = layout.sessionMeta(id);
    if (session.keys.includes(meta)) await deleteKey(ctx, meta);
    const rest = session.keys.filter((k) => k !== meta);
    for (let i = 0; i < rest.length; i += 8) await Promise.all(rest.slice(i, i + 8).map((k) => deleteKey(ctx, k)));
  }

  /** The session's bytes, part after part, fetched one part at a time. */
  function concatenate(id: string, session: Session): Readable {
    async function* chunks(): AsyncGenerator<Buffer> {
      for (const part of session.parts) {
        let body: Readable;
        try {
          body = (await client.send(new GetObjectCommand({ Bucket: bucket, Key: part.key }))).Body as Readable;
        } catch (err) {
          if (isNotFound(err)) throw new UploadNotFoundError(id); // aborted meanwhile by another node
          throw err;
        }
        for await (const chunk of body) yield chunk as Buffer;
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  const store: UploadStore = {
    create: (id) =>
      withLock(id, async () => {
        const session = await read(id);
        if (session.exists) throw new UploadExistsError(id);
        if (session.keys.length > 0) await remove(session, id); // strays of an interrupted abort
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: layout.sessionMeta(id), Body: Buffer.alloc(0) }));
      }),

    async size(id) {
      const session = await read(id);
      return session.exists ? session.size : null;
    },

    append: (id, data, opts) =>
      withLock(id, async () => {
        opts.signal?.throwIfAborted();
        const session = await read(id);
        if (!session.exists) throw new UploadNotFoundError(id);
        if (session.size !== opts.offset) throw new UploadOffsetError(session.size, opts.offset, { id });
        const key = layout.part(id, opts.offset);
        ctx.active.add(key);
        const sink = new S3ObjectSink({
          client,
          bucket,
          key,
          digester: null,
          ...(opts.maxBytes === undefined ? {} : { maxBytes: opts.maxBytes }),
          partSize: ctx.partSize,
          queueSize: ctx.queueSize,
          skipEmpty: true,
        });
        try {
          await pipeline(data, sink, opts.signal === undefined ? {} : { signal: opts.signal });
        } finally {
          await sink.settled();
          ctx.active.delete(key);
        }
        return opts.offset + sink.bytes;
      }),

    commit: (id, expectedDigest, opts = {}) =>
      withLock(id, async () => {
        const { algorithm } = parseDigest(expectedDigest);
        const session = await read(id);
        if (!session.exists) throw new UploadNotFoundError(id);
        if (opts.expectedSize !== undefined && session.size !== opts.expectedSize) {
          throw new SizeMismatchError(opts.expectedSize, session.size); // the session stays: more may come
        }
        let result: PutResult;
        try {
          result = await writeBlob(concatenate(id, session), { algorithm, expectedDigest, expectedSize: session.size });
        } catch (err) {
          // content that can never become valid goes; anything else (network…) keeps the session for a retry
          if (err instanceof DigestMismatchError) await remove(session, id);
          throw err;
        }
        await remove(session, id);
        return result;
      }),

    abort: (id) =>
      withLock(id, async () => {
        const session = await read(id);
        if (session.keys.length > 0) await remove(session, id);
      }),

    async *list() {
      let current: string | undefined;
      let objects: S3Object[] = [];
      const flush = (): { id: string; size: number; modifiedAt: number } | null => {
        if (current === undefined || !isUploadId(current)) return null;
        const s = toSession(ctx, current, objects);
        return s.exists ? { id: current, size: s.size, modifiedAt: s.modifiedAt } : null;
      };
      // keys of one session are contiguous in key order: group them as the listing goes
      for await (const o of listObjects(ctx, layout.uploadsPrefix)) {
        const id = o.key.slice(layout.uploadsPrefix.length).split('/')[0];
        if (id !== current) {
          const done = flush();
          if (done !== null) yield done;
          current = id;
          objects = [];
        }
        objects.push(o);
      }
      const done = flush();
      if (done !== null) yield done;
    },
  };

  /** Removes part objects of sessions that no longer exist (an abort interrupted), when stale. */
  async function sweepOrphans(stale: (t: number) => boolean): Promise<number> {
    const orphans: string[] = [];
    let current: string | undefined;
    let objects: S3Object[] = [];
    const flush = (): void => {
      if (current === undefined || !isUploadId(current)) return;
      const s = toSession(ctx, current, objects);
      if (!s.exists && stale(s.modifiedAt) && !s.keys.some((k) => ctx.active.has(k))) orphans.push(current);
    };
    for await (const o of listObjects(ctx, layout.uploadsPrefix)) {
      const id = o.key.slice(layout.uploadsPrefix.length).split('/')[0];
      if (id !== current) {
        flush();
        current = id;
        objects = [];
      }
      objects.push(o);
    }
    flush();
    let removed = 0;
    for (const id of orphans) {
      await withLock(id, async () => {
        const now = await read(id);
        if (now.exists) return;
        await remove(now, id);
        removed += now.keys.length;
      });
    }
    return removed;
  }

  return { store, sweepOrphans };
}
