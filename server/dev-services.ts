// `npm run dev-services`: starts the embedded backing services once and prints
// `export` lines (stdout) that point nodes at them, so several nodes on one
// machine share them. It keeps running; Ctrl-C stops the services.
import { loadConfig } from './config.ts';
import { resolveServices, servicesEnv } from '../devservices/index.ts';

const config = loadConfig();
const services = await resolveServices(config, { log: (m) => process.stderr.write(`${m}\n`) });
for (const [name, using] of Object.entries(services.descriptions)) process.stderr.write(`${name}: ${using}\n`);
process.stderr.write('\nPoint nodes at these services with:\n\n');
for (const [key, value] of Object.entries(servicesEnv(services))) process.stdout.write(`export ${key}=${JSON.stringify(value)}\n`);
process.stderr.write('\nRunning; Ctrl-C stops the services.\n');

const stop = async () => {
  await services.stop();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
