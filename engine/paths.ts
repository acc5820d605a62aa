/** Where the package's own files are, whether run from dist/ or elsewhere. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

/** The folder holding bucardo's package.json (walks up from this module). */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = path.join(dir, 'package.json');
    if (fs.existsSync(p) && JSON.parse(fs.readFileSync(p, 'utf8')).name === 'bucardo') {
      root = dir;
      return root;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`bucardo package.json not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** schemas/topology.schema.json */
export function topologySchemaPath(): string {
  return path.join(packageRoot(), 'schemas', 'topology.schema.json');
}
