// `npm run docs:asyncapi`: writes asyncapi.json from the channel schemas.
import fs from 'node:fs/promises';
import { channels } from '../channels/registry.ts';
import { buildAsyncApi } from './asyncapi.ts';
import { API_VERSION } from './node.ts';

const file = new URL('../asyncapi.json', import.meta.url);
await fs.writeFile(file, `${JSON.stringify(buildAsyncApi(channels, API_VERSION), null, 2)}\n`);
process.stdout.write(`wrote ${file.pathname}\n`);
