// Counts the type assertions (`x as T`, `<T>x`) in the product's source,
// `as const` excepted: `npm run casts` prints each and the total, and exits
// 1 when the total is over the budget (CAST_BUDGET below), so `npm test`
// keeps it there. Tests, benchmarks and their fixtures are not counted.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import layers from './layers.json' with { type: 'json' };

const CAST_BUDGET = 40;
/** The product's folders (scripts/layers.json). */
const PRODUCT = layers.layers.flat();

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const files = PRODUCT.flatMap((dir) =>
  fs.existsSync(path.join(root, dir)) ? fs.readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' }).map((f) => path.join(dir, f)) : [],
)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .sort();

const found: string[] = [];
for (const file of files) {
  const source = ts.createSourceFile(file, fs.readFileSync(path.join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const visit = (node: ts.Node): void => {
    if ((ts.isAsExpression(node) || ts.isTypeAssertionExpression(node)) && !(ts.isTypeReferenceNode(node.type) && node.type.getText() === 'const')) {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart());
      found.push(`${file}:${line + 1}  ${node.getText().replace(/\s+/g, ' ').slice(0, 110)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}
for (const line of found) console.log(line);
console.log(`${found.length} type assertions (as const excepted) in ${files.length} files; the budget is ${CAST_BUDGET}`);
if (found.length > CAST_BUDGET) process.exit(1);
