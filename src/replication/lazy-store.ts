/**
 * Lazy blobs on a replica: the store the formats see fetches a missing blob from the replication sources on its
 * first read (stat or open), stores it verified, then answers from the local copy. Everything else is the local
 * store unchanged. Nodes serve `/api/v1/replication/blobs/…` from the *local* store, never through this wrapper,
 * so two lazy replicas listing each other cannot bounce a miss back and forth.
 */
import { BlobNotFoundError } from '../blobs/errors.ts';
import type { BlobStore } from '../blobs/types.ts';
import { BlobUnavailableError, type BlobSources } from './sources.ts';

export function lazyBlobStore(local: BlobStore, sources: BlobSources, onError: (digest: string, e: Error) => void): BlobStore {
  const fetchMissing = async (digest: string): Promise<boolean> => {
    try {
      await sources.fetchInto(local, digest);
      return true;
    } catch (e) {
      if (!(e instanceof BlobUnavailableError)) throw e;
      onError(digest, e);
      return false;
    }
  };
  /** `read` on the local store; on a miss, fetch the blob and read again. */
  const orFetch = async <T>(digest: string, read: () => Promise<T>): Promise<T> => {
    try {
      return await read();
    } catch (e) {
      if (!(e instanceof BlobNotFoundError) || !(await fetchMissing(digest))) throw e;
      return read();
    }
  };
  return {
    driver: local.driver,
    uploads: local.uploads,
    async stat(digest) {
      const s = await local.stat(digest);
      if (s || !(await fetchMissing(digest))) return s;
      return local.stat(digest);
    },
    open: (digest, opts) => orFetch(digest, () => local.open(digest, opts)),
    ...(local.openFile === undefined ? {} : { openFile: (digest: string) => orFetch(digest, () => local.openFile!(digest)) }),
    ...(local.adoptFile === undefined ? {} : { adoptFile: (path: string, blob: { digest: string; size: number }) => local.adoptFile!(path, blob) }),
    put: (data, opts) => local.put(data, opts),
    delete: (digest) => local.delete(digest),
    list: () => local.list(),
    sweep: (ms) => local.sweep(ms),
    close: () => local.close(),
  };
}
