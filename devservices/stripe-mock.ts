// stripe-mock, Stripe's own API mock, for nodes without STRIPE_API_BASE in
// development and for the tests. Built with `go install` at a pinned version.
import { ensureGoBinary } from './go-binary.ts';
import { startProcess } from './child-process.ts';
import type { RunningService } from './service.ts';

export const STRIPE_MOCK_VERSION = 'v0.203.0';

export async function startStripeMock(options: { cacheDir: string; onBuild?: (message: string) => void }): Promise<RunningService & { url: string }> {
  const binary = await ensureGoBinary({ kind: 'install', name: 'stripe-mock', module: 'github.com/stripe/stripe-mock', version: STRIPE_MOCK_VERSION }, options);
  const proc = await startProcess({
    name: 'stripe-mock',
    command: binary,
    // Both listeners on loopback with free ports, so several can run at once.
    args: ['-http-addr', '127.0.0.1:', '-https-addr', '127.0.0.1:'],
    ready: /Listening for HTTP at address: (\S+)/,
  });
  return {
    url: `http://${proc.match[1]!}`,
    description: `embedded stripe-mock ${STRIPE_MOCK_VERSION}`,
    stop: () => proc.stop(),
  };
}
