/**
 * The management API under /api/v1: repositories, users, tokens, role bindings, assets and events, each
 * route with a JSON schema; the OpenAPI 3.1 document is generated from those schemas.
 */
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { Services } from '../server/services.ts';
import { SHARED_SCHEMAS } from './schemas.ts';
import { parseJsonBodies } from '../server/app.ts';
import { repositoryRoutes } from './repositories.ts';
import { accountRoutes } from './accounts.ts';
import { contentRoutes } from './content.ts';
import { artifactRoutes } from './artifacts.ts';
import { replicationRoutes } from './replication.ts';

export async function registerApi(api: FastifyInstance, s: Services): Promise<void> {
  parseJsonBodies(api);
  for (const schema of SHARED_SCHEMAS) api.addSchema(schema);
  await api.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Granary management API', version: '1' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'API token (gra_…)' },
          basic: { type: 'http', scheme: 'basic', description: 'user + password or user + API token' },
        },
      },
      security: [{ bearer: [] }, { basic: [] }],
    },
  });
  await api.register(repositoryRoutes(s));
  await api.register(accountRoutes(s));
  await api.register(contentRoutes(s));
  await api.register(artifactRoutes(s));
  await api.register(replicationRoutes(s));
  api.get('/openapi.json', { schema: { hide: true }, config: { action: 'none' } }, async () => api.swagger());
}
