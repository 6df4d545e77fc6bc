// Declared HTTP routes on the node:http engine, the fallback where no uWS binary
// loads (test/helpers/http-routes-spec.ts): the same tests as on uWS.
import { httpRoutesSpec } from './helpers/http-routes-spec.ts';

httpRoutesSpec('ws');
