// Flock's layer rules, checked by `npm run check:layers` (part of `npm test`).
//
// Folders are layered; a folder may import only folders of lower layers (and
// itself), so no two folders import each other. Type-only imports count.
//
//   0  kernel                         errors, logger, ids, cursors, Redis/Mongo glue: imports nothing of Flock
//   1  models, devservices            documents; local backing services
//   2  auth, events, presence         accounts and sessions, domain events, presence
//   3  social                         the social stores and read paths
//   4  messaging, notifications, feeds, media, payments
//   5  streams                        the personal stream and its event catalogue
//   6  actors                         the runtime and the actor types
//   7  consumers, jobs                domain-event handlers, background jobs
//   8  channels, routes               the socket API and the HTTP API, as declarations
//   9  server, client                 the composition root, gateway, delivery, uWS; the typed client
//
// Besides the layers: callers outside actors/ reach actors only through their
// interfaces (actors/contracts/) and the ActorSystem reference type; tests,
// benchmarks and the shared fixtures (testkit/) stay out of the product and
// out of each other.
// The layers themselves are data in scripts/layers.json (the cast budget and the seams test read them too).
/** @type {string[][]} */
const LAYERS = require('./scripts/layers.json').layers;
const PRODUCT = LAYERS.flat();
/** @param {string[]} folders */
const any = (folders) => `^(${folders.join('|')})/`;

const layerRules = LAYERS.flatMap((layer, i) => {
  const above = LAYERS.slice(i + 1).flat();
  return layer.flatMap((folder) => {
    const forbidden = [...above, ...layer.filter((other) => other !== folder)];
    return forbidden.length === 0
      ? []
      : [
          {
            name: `layer-${folder}`,
            comment: `${folder}/ (layer ${i}) may import only lower layers: not ${forbidden.join(', ')}`,
            severity: 'error',
            from: { path: `^${folder}/` },
            to: { path: any(forbidden) },
          },
        ];
  });
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Modules of the product import each other in a cycle.',
      severity: 'error',
      from: { path: any(PRODUCT) },
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'kernel-imports-nothing',
      comment: 'The kernel imports no other folder of Flock.',
      severity: 'error',
      from: { path: '^kernel/' },
      to: { path: any(PRODUCT.filter((f) => f !== 'kernel')) },
    },
    {
      name: 'actors-through-interfaces',
      comment: 'Outside actors/, actors are reached through their interfaces (actors/contracts/) and references (actors/ref.ts).',
      severity: 'error',
      from: { path: any(PRODUCT.filter((f) => f !== 'actors' && f !== 'server')) },
      to: { path: '^actors/', pathNot: '^actors/(contracts/|ref\\.ts$)' },
    },
    {
      name: 'product-not-tests',
      comment: 'The product does not import tests, benchmarks or their fixtures.',
      severity: 'error',
      from: { path: any(PRODUCT) },
      to: { path: '^(test|bench|testkit)/' },
    },
    {
      name: 'tests-and-benches-apart',
      comment: 'Tests and benchmarks share only testkit/: neither imports the other.',
      severity: 'error',
      from: { path: '^test/' },
      to: { path: '^bench/' },
    },
    {
      name: 'benches-and-tests-apart',
      comment: 'Tests and benchmarks share only testkit/: neither imports the other.',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/' },
    },
    {
      name: 'benches-share-lib',
      comment: 'A benchmark shares code with others only through bench/lib/.',
      severity: 'error',
      from: { path: '^bench/([^/]+)/', pathNot: '^bench/lib/' },
      to: { path: '^bench/', pathNot: ['^bench/lib/', '^bench/$1/'] },
    },
    {
      name: 'benches-share-lib-top',
      comment: "A benchmark entry point reaches its own folder and bench/lib/, not another benchmark's folder.",
      severity: 'error',
      from: { path: '^bench/([^/.]+)\\.ts$' },
      to: { path: '^bench/[^/]+/', pathNot: ['^bench/lib/', '^bench/$1/'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|\\.flock-data)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
