// The README documents every configuration variable the code reads.
import test from 'ava';
import fs from 'node:fs/promises';
import { configVariables } from '../server/config.ts';
import { errorCatalogue } from '../kernel/errors.ts';

test('README has a configuration row for every variable in server/config.ts', async (t) => {
  const readme = await fs.readFile(new URL('../README.md', import.meta.url), 'utf8');
  for (const name of Object.keys(configVariables)) t.true(readme.includes(`| \`${name}\` |`), name);
});

test('README names the setup and test commands', async (t) => {
  const readme = await fs.readFile(new URL('../README.md', import.meta.url), 'utf8');
  t.true(readme.includes('npm install\nnpm start'));
  t.true(readme.includes('npm test'));
});

test('README lists every error code of the catalogue', async (t) => {
  const readme = await fs.readFile(new URL('../README.md', import.meta.url), 'utf8');
  for (const code of Object.keys(errorCatalogue)) t.true(readme.includes(`| \`${code}\` |`), code);
});
