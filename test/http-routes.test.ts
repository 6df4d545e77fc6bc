// Declared HTTP routes on a real uWebSockets.js app (test/helpers/http-routes-spec.ts);
// skipped, saying why, where no uWS binary loads (Node 24).
import { httpRoutesSpec } from './helpers/http-routes-spec.ts';

httpRoutesSpec('uws');
